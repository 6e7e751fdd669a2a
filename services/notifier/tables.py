"""The notifier's state: the newest picture of each order, and every notification it owes."""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Column, DateTime, Index, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from services.notifier.domain.notification import NotificationStatus

_SCHEDULED, _SENDING, _RETRYING = (
    NotificationStatus.SCHEDULED,
    NotificationStatus.SENDING,
    NotificationStatus.RETRYING,
)
# Partial index conditions, spelled as the migrations created them.
SCHEDULED_ONLY = f"status = '{_SCHEDULED}'"
OPEN_ONLY = f"status in ('{_SCHEDULED}', '{_SENDING}', '{_RETRYING}')"


class NotifiedOrderRow(SQLModel, table=True):
    __tablename__ = "notified_order"

    order_id: str = Field(primary_key=True)
    version: int
    # The newest `orders.status-changed` value: what a notification describes when it leaves.
    picture: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))
    updated_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class NotificationRow(SQLModel, table=True):
    """One message on one channel. Its id is the Message-ID / webhook id receivers dedupe on."""

    __tablename__ = "notification"
    __table_args__ = (
        # The version a notification described is never described again on that channel.
        UniqueConstraint("order_id", "channel", "version"),
        # At most one notification per order and channel gathers changes at a time.
        Index(
            "ux_notification_scheduled",
            "order_id",
            "channel",
            unique=True,
            postgresql_where=text(SCHEDULED_ONLY),
        ),
        Index(
            "ix_notification_due",
            "next_attempt_at",
            postgresql_where=text(OPEN_ONLY),
        ),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    order_id: str = Field(index=True)
    channel: str
    # A `NotificationStatus` value, stored as its plain string.
    status: str
    version: int | None = None
    kind: str | None = None
    recipient: str | None = None
    subject: str | None = None
    body: str | None = None
    # The order as this notification described it: the next one tells what changed since.
    picture: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONB))
    attempts: int = 0
    last_error: str | None = None
    next_attempt_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    updated_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    sent_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))

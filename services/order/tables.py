"""The order service's state: orders, their lines, and cancels that arrived before their order."""

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, Column, DateTime, Identity, LargeBinary, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel


class CustomerOrderRow(SQLModel, table=True):
    __tablename__ = "customer_order"

    order_id: str = Field(primary_key=True)
    # Indexed: a new order asks whether its customer bought here before.
    customer_id: str = Field(index=True)
    customer_email: str
    customer_name: str | None = None
    # The shop's word on the customer being returning, as the order said it (None: not said).
    customer_returning: bool | None = None
    placed_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    # The priority tier the order asked for; None: the default tier.
    priority: str | None = None
    # No longer written (a redelivery is compared field by field). Dropped in a later release:
    # nullable meanwhile, so instances of the previous release keep inserting during a deploy.
    payload_hash: str | None = None
    version: int = 0
    status: str | None = None
    published: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONB))
    updated_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class OrderLineRow(SQLModel, table=True):
    __tablename__ = "order_line"

    order_id: str = Field(primary_key=True, foreign_key="customer_order.order_id")
    line_id: str = Field(primary_key=True)
    position: int
    sku: str
    quantity: int
    allocated: int = 0
    backordered: int = 0
    rejected: int = 0
    status: str | None = None
    queue_position: int | None = None
    reason: str | None = None
    revision: int = 0
    eta: str | None = None
    eta_change: str | None = None
    alternatives: list[str] = Field(
        default_factory=list,
        sa_column=Column(JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    )
    delay_incentive: str | None = None
    # While the line waits: its SKU policy's alternatives, which a substitution may take.
    substitutes: list[str] = Field(
        default_factory=list,
        sa_column=Column(JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    )
    # On a line taken instead of another's waiting part: that line's id.
    replaces: str | None = None
    # A cancel the customer asked for and the line's SKU book has not confirmed yet.
    cancel_requested: bool = Field(
        default=False, sa_column=Column(Boolean, nullable=False, server_default=text("false"))
    )
    cancel_reason: str | None = None


class PendingCancellationRow(SQLModel, table=True):
    """A cancel whose order has not arrived yet, with its original message for dead-lettering."""

    __tablename__ = "pending_cancellation"

    id: int | None = Field(
        default=None, sa_column=Column(BigInteger, Identity(always=True), primary_key=True)
    )
    # sha256 of key and value: a redelivery is recognised and stored once.
    fingerprint: str = Field(unique=True)
    # topic/partition/offset of the message, for its dead-letter headers.
    cause: str
    order_id: str = Field(index=True)
    line_ids: list[str] | None = Field(default=None, sa_column=Column(JSONB))
    reason: str | None = None
    received_at: datetime = Field(
        sa_column=Column(DateTime(timezone=True), nullable=False, index=True)
    )
    # The cancel record's timestamp: its order's wait is measured from here. None on rows
    # stored before it was kept: received_at stands in.
    requested_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    key: bytes | None = Field(default=None, sa_column=Column(LargeBinary))
    value: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    headers: list[Any] = Field(sa_column=Column(JSONB, nullable=False))

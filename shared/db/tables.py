"""Tables every service uses: the transactional outbox and the record of processed messages."""

import base64
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Column, DateTime, Identity, LargeBinary, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel


class OutboxMessage(SQLModel, table=True):
    """A message committed with the state change that caused it, published later by the relay."""

    __tablename__ = "outbox_message"

    id: int | None = Field(
        default=None, sa_column=Column(BigInteger, Identity(always=True), primary_key=True)
    )
    source: str = Field(index=True)
    topic: str
    key: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    value: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    # [[name, base64(value)], ...]: header values are bytes and must survive unchanged.
    headers: list[Any] = Field(sa_column=Column(JSONB, nullable=False))
    created_at: datetime | None = Field(
        default=None,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=func.now()),
    )


def encode_headers(headers: Sequence[tuple[str, bytes]]) -> list[list[str]]:
    return [[name, base64.b64encode(value).decode()] for name, value in headers]


def decode_headers(stored: list[Any]) -> list[tuple[str, bytes]]:
    return [(name, base64.b64decode(value)) for name, value in stored]


class ProcessedMessage(SQLModel, table=True):
    """Dedupe record: written in the same transaction as the effect of the message."""

    __tablename__ = "processed_message"

    consumer: str = Field(primary_key=True)
    message_id: str = Field(primary_key=True)
    processed_at: datetime | None = Field(
        default=None,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=func.now()),
    )

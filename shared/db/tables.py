"""Tables every service uses: the transactional outbox and the record of processed messages."""

import base64
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Column, DateTime, Identity, LargeBinary, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from shared.messaging.position import SourcePosition


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


class OutboxParked(SQLModel, table=True):
    """An outbox row the broker refused for good (too large, say): kept with the reason instead
    of blocking every row behind it. Operators see these with `backorder outbox parked`."""

    __tablename__ = "outbox_parked"

    # The row's id in the outbox: the order it was written in.
    id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    source: str = Field(index=True)
    topic: str
    key: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    value: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    headers: list[Any] = Field(sa_column=Column(JSONB, nullable=False))
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    parked_at: datetime | None = Field(
        default=None,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=func.now()),
    )
    reason: str


class ConsumerProgress(SQLModel, table=True):
    """How far a consumer has handled a partition, written with the effect of each message."""

    __tablename__ = "consumer_progress"

    consumer: str = Field(primary_key=True)
    topic: str = Field(primary_key=True)
    partition: int = Field(primary_key=True)
    # The timestamp of the newest record handled.
    timestamp_ms: int = Field(sa_type=BigInteger)


class SourcePositioned(SQLModel):
    """Where the word applied last on a thing sat in its topic: only a newer word replaces it.
    None on rows written before positions were kept."""

    source_partition: int | None = None
    source_offset: int | None = Field(default=None, sa_type=BigInteger)
    source_timestamp_ms: int | None = Field(default=None, sa_type=BigInteger)

    def applied_position(self) -> SourcePosition | None:
        if self.source_timestamp_ms is None:
            return None
        return SourcePosition(
            partition=self.source_partition or 0,
            offset=self.source_offset or 0,
            timestamp_ms=self.source_timestamp_ms,
        )

    @staticmethod
    def columns(position: SourcePosition) -> dict[str, int]:
        """The values that record `position` as the word applied last."""
        return {
            "source_partition": position.partition,
            "source_offset": position.offset,
            "source_timestamp_ms": position.timestamp_ms,
        }


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

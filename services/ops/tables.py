from datetime import datetime

from sqlalchemy import BigInteger, Column, DateTime, func
from sqlmodel import Field, SQLModel


class DeadLetterReplayRow(SQLModel, table=True):
    """A dead letter already sent back to its topic: replaying it again does nothing."""

    __tablename__ = "dead_letter_replay"

    dlq_topic: str = Field(primary_key=True)
    partition: int = Field(primary_key=True)
    offset: int = Field(primary_key=True, sa_type=BigInteger)
    replayed_at: datetime | None = Field(
        default=None,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=func.now()),
    )

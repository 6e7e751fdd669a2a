"""Outbox rows the broker refused for good, for operators to see (and fix at the source)."""

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.db.tables import OutboxParked


@dataclass(frozen=True)
class ParkedRow:
    id: int
    source: str
    topic: str
    key: str
    size: int
    parked_at: datetime | None
    reason: str


async def parked_rows(
    session: AsyncSession, *, source: str | None = None, limit: int = 100
) -> list[ParkedRow]:
    query = select(OutboxParked).order_by(col(OutboxParked.id)).limit(limit)
    if source:
        query = query.where(col(OutboxParked.source) == source)
    return [
        ParkedRow(
            id=row.id,
            source=row.source,
            topic=row.topic,
            key=row.key.decode(errors="replace") if row.key else "",
            size=len(row.value),
            parked_at=row.parked_at,
            reason=row.reason,
        )
        for row in (await session.exec(query)).all()
    ]

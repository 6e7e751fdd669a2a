"""How far a consumer has handled each partition of a topic, kept with each message's effect."""

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.db.tables import ConsumerProgress
from shared.messaging.position import SourcePosition


async def record_progress(
    session: AsyncSession, *, consumer: str, topic: str, position: SourcePosition
) -> None:
    """In the handler's transaction: a redelivered older message never moves it back."""
    row = {
        "consumer": consumer,
        "topic": topic,
        "partition": position.partition,
        "timestamp_ms": position.timestamp_ms,
    }
    stored = ConsumerProgress.__table__.c  # type: ignore[attr-defined]
    statement = insert(ConsumerProgress).values(row)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["consumer", "topic", "partition"],
            set_={
                "timestamp_ms": func.greatest(stored.timestamp_ms, statement.excluded.timestamp_ms)
            },
        )
    )


async def handled_timestamps(session: AsyncSession, *, consumer: str, topic: str) -> dict[int, int]:
    """Per partition, the timestamp of the newest record handled."""
    rows = (
        await session.execute(
            select(col(ConsumerProgress.partition), col(ConsumerProgress.timestamp_ms)).where(
                col(ConsumerProgress.consumer) == consumer, col(ConsumerProgress.topic) == topic
            )
        )
    ).all()
    return {row.partition: row.timestamp_ms for row in rows}

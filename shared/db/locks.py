from sqlalchemy import func, select
from sqlmodel.ext.asyncio.session import AsyncSession


async def lock_key(session: AsyncSession, key: str) -> None:
    """Serialises transactions on `key` across instances until this transaction ends, also
    for things that have no row to lock yet (an order not yet arrived, a new SKU policy)."""
    await session.execute(select(func.pg_advisory_xact_lock(func.hashtext(key))))


async def try_lock_key(session: AsyncSession, key: str) -> bool:
    """Like `lock_key`, but False at once when another transaction holds `key`."""
    taken = await session.scalar(select(func.pg_try_advisory_xact_lock(func.hashtext(key))))
    return bool(taken)

from sqlalchemy import func, select
from sqlmodel.ext.asyncio.session import AsyncSession


async def lock_key(session: AsyncSession, key: str) -> None:
    """Serialises transactions on `key` across instances until this transaction ends, also
    for things that have no row to lock yet (an order not yet arrived, a new SKU policy)."""
    await session.execute(select(func.pg_advisory_xact_lock(func.hashtext(key))))

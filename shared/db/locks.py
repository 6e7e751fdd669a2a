from collections.abc import Iterable

from sqlalchemy import func, select, text
from sqlmodel.ext.asyncio.session import AsyncSession


async def lock_key(session: AsyncSession, key: str) -> None:
    """Serialises transactions on `key` across instances until this transaction ends, also
    for things that have no row to lock yet (an order not yet arrived, a new SKU policy)."""
    await session.execute(select(func.pg_advisory_xact_lock(func.hashtext(key))))


async def try_lock_key(session: AsyncSession, key: str) -> bool:
    """Like `lock_key`, but False at once when another transaction holds `key`."""
    taken = await session.scalar(select(func.pg_try_advisory_xact_lock(func.hashtext(key))))
    return bool(taken)


_LOCK_IN_ORDER = text(
    "select count(pg_advisory_xact_lock(hashtext(key)))"
    " from (select key from unnest(cast(:keys as text[])) as key order by key) as ordered"
)


async def lock_keys(session: AsyncSession, keys: Iterable[str]) -> None:
    """`lock_key` for many keys in one round trip, always taken in the same order, so two
    transactions locking overlapping sets wait for each other instead of deadlocking."""
    await session.execute(_LOCK_IN_ORDER, {"keys": sorted(set(keys))})

"""The sweeps' probes: which SKUs have a line past its maximum wait, a line told a date that
has passed, or a line due to rise a rank. Each reads a queue's head, never the whole queue."""

from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Integer, func, literal, select
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from services.allocator.domain.book import LANE_BITS
from services.allocator.tables import AllocationLineRow, ScheduledRestockRow, SkuBookRow
from shared.contracts.common import MAX_DURATION

# A bound in seconds written before durations were bounded, or by hand, may be longer than any
# policy may set today: it is compared as the longest one may.
_LONGEST = MAX_DURATION.total_seconds()


class SweepProbes(Protocol):
    """Which SKUs a sweep has work on, at most `limit` of them, in no particular order."""

    async def skus_with_overdue_lines(
        self, *, now: datetime, default_max_wait: timedelta | None, limit: int
    ) -> list[str]: ...

    async def skus_with_past_dates(self, *, now: datetime, limit: int) -> list[str]: ...

    async def skus_with_lines_to_promote(
        self, *, now: datetime, default_aging: timedelta | None, top_rank: int, limit: int
    ) -> list[str]: ...


class SqlSweepProbes:
    """The probes below, on the unit of work's session."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def skus_with_overdue_lines(
        self, *, now: datetime, default_max_wait: timedelta | None, limit: int
    ) -> list[str]:
        return await skus_with_overdue_lines(
            self._session, now=now, default_max_wait=default_max_wait, limit=limit
        )

    async def skus_with_past_dates(self, *, now: datetime, limit: int) -> list[str]:
        return await skus_with_past_dates(self._session, now=now, limit=limit)

    async def skus_with_lines_to_promote(
        self, *, now: datetime, default_aging: timedelta | None, top_rank: int, limit: int
    ) -> list[str]:
        return await skus_with_lines_to_promote(
            self._session, now=now, default_aging=default_aging, top_rank=top_rank, limit=limit
        )


async def skus_with_overdue_lines(
    session: AsyncSession, *, now: datetime, default_max_wait: timedelta | None, limit: int
) -> list[str]:
    """SKUs whose head of the queue waited longer than the SKU's (or the default) maximum wait:
    lines join the default rank's lane in time order, so its head waited longest. One index
    probe per SKU, and a look at the lanes of higher ranks (few lines, not in time order since
    aging brings old lines into them) where a SKU has them.

    The wait is compared in seconds, never added to a timestamp: a maximum stored before
    durations were bounded cannot overflow the query for every SKU."""
    default = default_max_wait.total_seconds() if default_max_wait else None
    max_wait = func.coalesce(col(SkuBookRow.max_wait_seconds), default)
    waited = _head_waited(now)
    overdue_above = (
        select(literal(1))
        .where(*_waiting_in_higher_lanes(), _line_waited(now) > func.least(max_wait, _LONGEST))
        .exists()
    )
    overdue = (
        select(col(SkuBookRow.sku))
        # The same clock as the domain's expiry check, so a picked SKU has work to do.
        # (least() skips a NULL: a SKU that waits forever must not be picked.)
        .where(
            max_wait.is_not(None),
            (waited > func.least(max_wait, _LONGEST))
            | (func.jsonb_array_length(col(SkuBookRow.lanes)) > 0) & overdue_above,
        )
        .limit(limit)
    )
    return list((await session.scalars(overdue)).all())


async def skus_with_past_dates(session: AsyncSession, *, now: datetime, limit: int) -> list[str]:
    """SKUs with an overdue restock (its `expected_at` passed, neither received nor withdrawn)
    that a waiting line was told as its date: the retelling `handlers.expire_overdue_lines`
    does. Told dates run in queue order, so the earliest of a lane is its head's: one index
    probe for the default lane's head, and a look at the (few) lines of the higher lanes. The
    overdue restocks are few, and each is looked at only while a line still expects it."""
    head_eta = _default_lane_head(col(AllocationLineRow.eta), of=col(ScheduledRestockRow.sku))
    past_above = (
        select(literal(1))
        .where(
            col(AllocationLineRow.sku) == col(ScheduledRestockRow.sku),
            col(AllocationLineRow.waiting) > 0,
            col(AllocationLineRow.seq) >= 1 << LANE_BITS,
            col(AllocationLineRow.eta) < now,
        )
        .exists()
    )
    past = (
        select(col(ScheduledRestockRow.sku))
        .where(
            col(ScheduledRestockRow.expected_at) < now,
            col(ScheduledRestockRow.quantity) > 0,
            (head_eta < now) | past_above,
        )
        .distinct()
        .limit(limit)
    )
    return list((await session.scalars(past)).all())


def _head_waited(now: datetime) -> Any:
    """Seconds the head of the SKU's default lane has waited: lines join that lane in time
    order, so no line of it waited longer. One index probe."""
    head_requested_at = _default_lane_head(
        col(AllocationLineRow.requested_at), of=col(SkuBookRow.sku)
    )
    return func.extract("epoch", literal(now) - head_requested_at)


def _default_lane_head(column: Any, *, of: Any) -> Any:
    """`column` of the first waiting line of SKU `of`'s default lane: one index probe."""
    return (
        select(column)
        .where(
            col(AllocationLineRow.sku) == of,
            col(AllocationLineRow.waiting) > 0,
            col(AllocationLineRow.seq) < 1 << LANE_BITS,
        )
        .order_by(col(AllocationLineRow.seq))
        .limit(1)
        .scalar_subquery()
    )


def _line_waited(now: datetime) -> Any:
    return func.extract("epoch", literal(now) - col(AllocationLineRow.requested_at))


def _waiting_in_higher_lanes() -> tuple[Any, ...]:
    return (
        col(AllocationLineRow.sku) == col(SkuBookRow.sku),
        col(AllocationLineRow.waiting) > 0,
        col(AllocationLineRow.seq) >= 1 << LANE_BITS,
    )


async def skus_with_lines_to_promote(
    session: AsyncSession,
    *,
    now: datetime,
    default_aging: timedelta | None,
    top_rank: int,
    limit: int,
) -> list[str]:
    """SKUs with a line that waited past its aging bound (the SKU's, or the default, for each
    rank the line rose) below the top rank: the default lane's head, which waited longest
    there, and the lines of the higher lanes, as in `skus_with_overdue_lines`."""
    if top_rank == 0:
        return []
    default = default_aging.total_seconds() if default_aging else None
    configured = func.coalesce(col(SkuBookRow.aging_seconds), default)
    # (least() skips a NULL: `configured` says whether the SKU ages at all.)
    aging = func.least(configured, _LONGEST)
    head_waited = _head_waited(now)
    # bigint >> integer: PostgreSQL has no shift by a bigint.
    lane = col(AllocationLineRow.seq).op(">>")(literal(LANE_BITS, Integer))
    due_above = (
        select(literal(1))
        .where(
            *_waiting_in_higher_lanes(),
            col(AllocationLineRow.seq) < top_rank << LANE_BITS,
            _line_waited(now) > aging * (lane - col(AllocationLineRow.priority_rank) + 1),
        )
        .exists()
    )
    due = (
        select(col(SkuBookRow.sku))
        .where(
            configured.is_not(None),
            (head_waited > aging)
            | (func.jsonb_array_length(col(SkuBookRow.lanes)) > 0) & due_above,
        )
        .limit(limit)
    )
    return list((await session.scalars(due)).all())

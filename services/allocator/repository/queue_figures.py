"""The figures of the longest queues, for the queue gauges."""

from dataclasses import dataclass

from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from services.allocator.domain.book import LANE_BITS


@dataclass(frozen=True)
class QueueFigures:
    """A SKU's queue as the gauges show it."""

    sku: str
    units: int
    lines: int
    oldest_wait: float


# Units waiting per SKU come from the book's counters (every lane's units queued less those
# that left at its head, less the gaps left in its middle), so choosing the top SKUs reads no
# line. Then per lane of those SKUs one index probe finds the head: the lines waiting are the
# seqs from the head to the lane's tail less the gaps between, and the oldest wait is the
# longest a lane's head has waited (the default lane's head waited longest in it, as lines join
# that lane in time order). The cost grows with the SKUs and their gaps, never with the lines.
_TOP_QUEUES = text(
    "with book as ("
    "  select b.sku, b.next_seq, b.lanes,"
    "  b.queued_units - b.departed_units"
    "  + coalesce((select sum((l ->> 'queued')::bigint - (l ->> 'departed')::bigint)"
    "    from jsonb_array_elements(b.lanes) l), 0)"
    "  - coalesce((select sum(g.units) from allocation_queue_gap g where g.sku = b.sku), 0)"
    "  as units"
    "  from sku_book b),"
    " top as (select * from book where units > 0 order by units desc, sku limit :limit),"
    " lane as ("
    "  select sku, 0::bigint as origin, next_seq - 1 as tail from top"
    "  union all"
    f"  select top.sku, (l ->> 'lane')::bigint << {LANE_BITS}, (l ->> 'next_seq')::bigint - 1"
    "  from top cross join jsonb_array_elements(top.lanes) l),"
    " head as ("
    "  select lane.sku, lane.tail, h.seq, h.requested_at from lane cross join lateral ("
    "    select a.seq, a.requested_at from allocation_line a"
    "    where a.sku = lane.sku and a.waiting > 0 and a.seq > lane.origin"
    "    and a.seq <= lane.tail order by a.seq limit 1) h)"
    " select top.sku, top.units,"
    "  coalesce(sum(head.tail - head.seq + 1 - (select count(*) from allocation_queue_gap g"
    "    where g.sku = head.sku and g.seq > head.seq and g.seq <= head.tail)), 0) as lines,"
    "  coalesce(extract(epoch from now() - min(head.requested_at)), 0) as oldest_wait"
    " from top left join head on head.sku = top.sku"
    " group by top.sku, top.units order by top.units desc, top.sku"
)


async def top_queues(session: AsyncSession, *, limit: int) -> list[QueueFigures]:
    """The `limit` SKUs with the most units waiting: units, lines and the longest wait."""
    result = await session.execute(_TOP_QUEUES, {"limit": limit})
    return [
        QueueFigures(
            sku=row.sku, units=row.units, lines=row.lines, oldest_wait=float(row.oldest_wait)
        )
        for row in result
    ]

"""Read-only views for operators, straight from the services' tables."""

from datetime import UTC, datetime

from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from services.allocator.domain.book import LANE_BITS
from services.ops.views import (
    DemandRow,
    OrderLineView,
    OrderState,
    QueuedLineView,
    SkuBook,
)

_SKU_BOOK = text("select sku, available, received_total, policy from sku_book where sku = :sku")
# Served highest rank first (each rank's lane counts its seqs from rank << LANE_BITS), then in
# the order lines reached their rank.
_SKU_QUEUE = text(
    f"select row_number() over (order by l.seq >> {LANE_BITS} desc, l.seq) as position,"
    " l.order_id, l.line_id, l.quantity, l.allocated, l.waiting, o.placed_at, l.priority,"
    f" (l.seq >> {LANE_BITS})::int as rank"
    " from allocation_line l left join customer_order o using (order_id)"
    f" where l.sku = :sku and l.waiting > 0 order by l.seq >> {LANE_BITS} desc, l.seq"
)
_ORDER = text(
    "select order_id, customer_email, placed_at, status, version, priority"
    " from customer_order where order_id = :id"
)
_ORDER_LINES = text(
    "select line_id, sku, quantity, allocated, backordered, rejected, status,"
    " queue_position, eta, reason from order_line where order_id = :id"
    " order by position"
)


async def sku_queue(session: AsyncSession, *, sku: str) -> SkuBook | None:
    book = (await session.execute(_SKU_BOOK, {"sku": sku})).first()
    if book is None:
        return None
    waiting = (await session.execute(_SKU_QUEUE, {"sku": sku})).all()
    return SkuBook(
        sku=book.sku,
        available=book.available,
        received_total=book.received_total,
        policy=book.policy,
        queue=[QueuedLineView.model_validate(row) for row in waiting],
    )


async def order_state(session: AsyncSession, *, order_id: str) -> OrderState | None:
    order = (await session.execute(_ORDER, {"id": order_id})).first()
    if order is None:
        return None
    lines = (await session.execute(_ORDER_LINES, {"id": order_id})).all()
    return OrderState(
        order_id=order.order_id,
        customer_email=order.customer_email,
        placed_at=order.placed_at,
        status=order.status,
        version=order.version,
        priority=order.priority,
        lines=[OrderLineView.model_validate(row) for row in lines],
    )


def waited(since: datetime | None, now: datetime) -> str:
    if since is None:
        return ""
    seconds = int((now - since).total_seconds())
    days, rest = divmod(seconds, 86_400)
    return f"{days}d {rest // 3600}h" if days else f"{rest // 3600}h {rest % 3600 // 60}m"


_DEMAND = text(
    "with waiting as ("
    "  select sku, count(*) as waiting_lines, sum(waiting) as waiting_units,"
    "  min(requested_at) as oldest_since"
    "  from allocation_line where waiting > 0 group by sku),"
    " supply as ("
    "  select sku,"
    "  coalesce(sum(quantity) filter (where expected_at >= :now), 0) as scheduled,"
    "  min(expected_at) filter (where expected_at >= :now) as next_expected,"
    "  count(*) filter (where expected_at < :now) as overdue_orders,"
    "  coalesce(sum(quantity) filter (where expected_at < :now), 0) as overdue,"
    "  min(expected_at) filter (where expected_at < :now) as overdue_since"
    "  from scheduled_restock where quantity > 0 group by sku)"
    " select w.*, coalesce(s.scheduled, 0) as scheduled_supply, s.next_expected,"
    " greatest(w.waiting_units - coalesce(s.scheduled, 0), 0) as shortfall,"
    " coalesce(s.overdue_orders, 0) as overdue_pos, coalesce(s.overdue, 0) as overdue_units,"
    " s.overdue_since"
    " from waiting w left join supply s using (sku)"
    " order by shortfall desc, waiting_units desc, oldest_since limit :limit"
)


async def demand_report(
    session: AsyncSession, *, limit: int, now: datetime | None = None
) -> list[DemandRow]:
    """Per SKU with waiting lines: how much is wanted, for how long, what is on its way and
    what no purchase order covers yet (the shortfall), largest shortfall first. A purchase
    order whose expected date passed before `now` (default: the clock) without its receipt is
    overdue: it is shown apart (`overdue_pos`, `overdue_units`, `overdue_since`) and is not
    counted as scheduled supply, so its units stay in the shortfall until they arrive or the
    order gets a new date."""
    now = now or datetime.now(UTC)
    rows = (await session.execute(_DEMAND, {"limit": limit, "now": now})).all()
    return [DemandRow.model_validate(row) for row in rows]

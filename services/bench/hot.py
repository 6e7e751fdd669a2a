"""One hot SKU: a queue seeded straight into the real tables, then single decisions timed
through the public topics beside the same decisions on a 10-line queue."""

import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import asyncpg

from services.bench.drive import Order, Shop, Watcher, unique
from services.bench.stats import Figure

REPEATS = 3
# The queue's first lines waited this long when it is seeded; a maximum wait of half of it
# expires exactly them.
OVERDUE = timedelta(hours=2)


async def seed(db: asyncpg.Connection, *, sku: str, lines: int, overdue: int = 0) -> list[str]:
    """A SKU with `lines` one-unit lines waiting, in arrival order, as the services keep them;
    the first `overdue` of them have waited `OVERDUE`."""
    now = datetime.now(UTC)
    order_ids = [f"{sku}-{n:07}" for n in range(lines)]
    await db.copy_records_to_table(
        "customer_order",
        # payload_hash: unused now, but required before, so one seed serves both schemas
        columns=["order_id", "customer_id", "customer_email", "placed_at", "payload_hash",
                 "version", "status", "updated_at"],
        records=(
            (o, "c-" + o, f"{o}@b.example", now, "", 1, "backordered", now) for o in order_ids
        ),
    )  # fmt: skip
    await db.copy_records_to_table(
        "order_line",
        columns=["order_id", "line_id", "position", "sku", "quantity", "allocated",
                 "backordered", "rejected", "status", "revision"],
        records=((o, "1", 0, sku, 1, 0, 1, 0, "backordered", 1) for o in order_ids),
    )  # fmt: skip
    await db.copy_records_to_table(
        "allocation_line",
        columns=["order_id", "line_id", "sku", "seq", "through", "quantity", "allocated",
                 "rejected", "waiting", "cancelled", "revision", "requested_at", "updated_at"],
        records=(
            (o, "1", sku, n + 1, n + 1, 1, 0, 0, 1, False, 1,
             now - OVERDUE if n < overdue else now, now)
            for n, o in enumerate(order_ids)
        ),
    )  # fmt: skip
    await db.execute(
        "insert into sku_book (sku, available, received_total, next_seq, queued_units,"
        " newest_requested_at, updated_at) values ($1, 0, 0, $2, $3, $4, $4)",
        sku,
        lines + 1,
        lines,
        now,
    )
    await db.execute("analyze allocation_line")
    return order_ids


async def _timed(watcher: Watcher, what: str, done: Callable[[], bool], timeout: float) -> float:
    start = time.monotonic()
    await watcher.until(done, what=what, timeout=timeout, progress=lambda: "waiting")
    return time.monotonic() - start


async def decisions(
    db: asyncpg.Connection, shop: Shop, status: Watcher, *, lines: int, timeout: float
) -> dict[str, float]:
    """Median seconds from publish to the shop seeing the outcome, per kind of decision; each
    repeat on a SKU of its own, seeded with `lines` waiting lines."""
    seen = status.orders

    def told(order_id: str) -> Callable[[], bool]:
        return lambda: order_id in seen

    def all_filled(order_ids: list[str]) -> Callable[[], bool]:
        return lambda: all(o in seen and "1" in seen[o].allocated_at for o in order_ids)

    def all_in(status_: str, order_ids: list[str]) -> Callable[[], bool]:
        return lambda: all(o in seen and seen[o].status == status_ for o in order_ids)

    def cancelled(order_id: str) -> Callable[[], bool]:
        return all_in("cancelled", [order_id])

    timings: dict[str, list[float]] = defaultdict(list)
    for _ in range(REPEATS):
        sku = unique("HOT")
        print(f"hot SKU: seeding {lines} waiting lines and 10 overdue ones ahead", flush=True)
        overdue, queue = _split(await seed(db, sku=sku, lines=10 + lines, overdue=10), 10)
        await shop.policy(sku, max_wait_seconds=OVERDUE.total_seconds() / 2)
        await shop.flush()
        timings["expiry sweep expiring 10 lines"].append(
            await _timed(status, "expiry", all_in("expired", overdue), timeout)
        )
        order = Order(unique("bo"), [(sku, 1)])
        await shop.place([order])
        timings["one more order"].append(
            await _timed(status, "one more order", told(order.order_id), timeout)
        )
        victim = queue[lines // 2]
        await shop.cancel(victim)
        await shop.flush()
        timings["cancel in the middle"].append(
            await _timed(status, "cancel", cancelled(victim), timeout)
        )
        head = [o for o in [*queue, order.order_id] if o != victim][:10]
        await shop.receive(sku, 10)
        await shop.flush()
        timings["receipt filling 10 lines"].append(
            await _timed(status, "receipt", all_filled(head), timeout)
        )
    return {kind: statistics.median(values) for kind, values in timings.items()}


def _split(order_ids: list[str], at: int) -> tuple[list[str], list[str]]:
    return order_ids[:at], order_ids[at:]


async def hot_sku(
    db: asyncpg.Connection, shop: Shop, status: Watcher, *, lines: int, timeout: float
) -> list[Figure]:
    small = await decisions(db, shop, status, lines=10, timeout=timeout)
    large = await decisions(db, shop, status, lines=lines, timeout=timeout)
    return [
        Figure(f"hot SKU {kind}: {lines:,} lines vs 10", "ms", 1000 * large[kind],
               1000 * small[kind], False)
        for kind in large
    ]  # fmt: skip

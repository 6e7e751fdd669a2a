"""The benchmark's phases; each returns its figures, the project's beside the floor's."""

import asyncio
import operator
import time
from collections import defaultdict
from dataclasses import dataclass
from functools import partial
from typing import Any

from services.bench import floor
from services.bench.drive import Order, Shop, Watcher, orders, unique
from services.bench.stats import Figure, percentile


@dataclass
class Bench:
    kafka: dict[str, Any]
    shop: Shop
    status: Watcher
    floor_out: Watcher
    timeout: float


async def floor_burst(bench: Bench, messages: int, label: str) -> tuple[float, list[float]]:
    """`messages` published at once through the floor's three hops: msgs/s and latencies."""
    keys = [unique("bf") for _ in range(messages)]
    start = time.monotonic()
    for key in keys:
        await bench.shop.raw(floor.TOPICS[0], key)
    await bench.shop.flush()
    arrived = bench.floor_out.arrived
    await bench.floor_out.until(
        lambda: all(k in arrived for k in keys),
        what=f"floor {label}",
        timeout=bench.timeout,
        progress=lambda: f"{sum(k in arrived for k in keys)}/{messages} through",
    )
    elapsed = max(arrived[k] for k in keys) - start
    return messages / elapsed, [arrived[k] - bench.shop.published[k] for k in keys]


async def warm_up(bench: Bench) -> None:
    """A message through the floor: every hop has joined its group and holds its partitions.
    A new group starts at the end of its topic, so a message sent before a hop joined is never
    read: one is sent every second until one comes through."""
    sent: list[str] = []
    arrived = bench.floor_out.arrived
    deadline = time.monotonic() + bench.timeout
    while not any(key in arrived for key in sent):
        if time.monotonic() > deadline:
            raise TimeoutError(f"floor warm-up: nothing through within {bench.timeout:g}s")
        sent.append(unique("bw"))
        await bench.shop.raw(floor.TOPICS[0], sent[-1])
        await bench.shop.flush()
        await asyncio.sleep(1.0)
    # The services' consumers join their groups one subscriber at a time, each join a
    # rebalance of a few seconds: timing starts once two orders in a row came through fast.
    seen = bench.status.orders
    while True:
        order = Order(unique("bw"), [(unique("BW"), 1)])
        start = time.monotonic()
        await bench.shop.place([order])
        await bench.status.until(
            partial(operator.contains, seen, order.order_id),
            what="project warm-up",
            timeout=bench.timeout,
            progress=lambda: "waiting for the services to join their groups",
        )
        if time.monotonic() - start < 1.0:
            return


async def intake_and_fill(bench: Bench, *, order_count: int, sku_count: int) -> list[Figure]:
    skus = [unique("BS") for _ in range(sku_count)]
    placed = orders(order_count, skus, seed=8)
    lines = sum(len(o.lines) for o in placed)
    print(f"intake: {order_count} orders, {lines} lines over {sku_count} SKUs", flush=True)
    start = time.monotonic()
    await bench.shop.place(placed)
    seen = bench.status.orders
    await bench.status.until(
        lambda: all(o.order_id in seen for o in placed),
        what="intake",
        timeout=bench.timeout,
        progress=lambda: f"{sum(o.order_id in seen for o in placed)}/{order_count} told",
    )
    intake_elapsed = max(seen[o.order_id].first for o in placed) - start
    first_status = [seen[o.order_id].first - bench.shop.published[o.order_id] for o in placed]
    floor_rate, floor_latency = await floor_burst(bench, lines, "intake")

    demand: dict[str, int] = defaultdict(int)
    for order in placed:
        for sku, quantity in order.lines:
            demand[sku] += quantity
    print(f"fill: one receipt per SKU, {sum(demand.values())} units", flush=True)
    receipt_sent: dict[str, float] = {}
    start = time.monotonic()
    for sku in skus:
        if demand[sku]:
            await bench.shop.receive(sku, demand[sku])
            receipt_sent[sku] = time.monotonic()
    await bench.shop.flush()

    def filled(order: Order) -> bool:
        return len(seen[order.order_id].allocated_at) == len(order.lines)

    await bench.status.until(
        lambda: all(filled(o) for o in placed),
        what="fill",
        timeout=bench.timeout,
        progress=lambda: f"{sum(filled(o) for o in placed)}/{order_count} orders filled",
    )
    last_fill: dict[str, float] = defaultdict(float)
    for order in placed:
        for line_id, (sku, _) in enumerate(order.lines, start=1):
            at = seen[order.order_id].allocated_at[str(line_id)]
            last_fill[sku] = max(last_fill[sku], at)
    fill_elapsed = max(last_fill.values()) - start
    fill_latency = [last_fill[sku] - receipt_sent[sku] for sku in receipt_sent]
    floor_fill_rate, floor_fill_latency = await floor_burst(bench, lines, "fill")
    return [
        Figure("intake", "lines/s", lines / intake_elapsed, floor_rate, True),
        Figure("intake publish -> first status p50", "ms", 1000 * percentile(first_status, 0.5),
               1000 * percentile(floor_latency, 0.5), False),
        Figure("intake publish -> first status p99", "ms", 1000 * percentile(first_status, 0.99),
               1000 * percentile(floor_latency, 0.99), False),
        Figure("fill", "lines/s", lines / fill_elapsed, floor_fill_rate, True),
        Figure("fill receipt -> last fill of its SKU p50", "ms",
               1000 * percentile(fill_latency, 0.5), 1000 * percentile(floor_fill_latency, 0.5),
               False),
        Figure("fill receipt -> last fill of its SKU p99", "ms",
               1000 * percentile(fill_latency, 0.99), 1000 * percentile(floor_fill_latency, 0.99),
               False),
    ]  # fmt: skip


async def steady(bench: Bench, *, rate: float, seconds: float) -> list[Figure]:
    """A mixed stream at `rate` events/s: orders on fresh SKUs (each waits), and every tenth
    event a receipt that fills an order placed a little earlier."""
    print(f"steady: {rate:g} events/s for {seconds:g}s", flush=True)
    placed: list[Order] = []
    fills: dict[str, float] = {}  # order id -> when its receipt was published
    floor_keys: list[str] = []
    interval = 1.0 / rate
    start = time.monotonic()
    n = 0
    while (now := time.monotonic()) - start < seconds:
        due = start + n * interval
        if due > now:
            await asyncio.sleep(due - now)
        if n % 10 == 9 and len(placed) > 20:
            target = placed[-20]
            sku, quantity = target.lines[0]
            await bench.shop.receive(sku, quantity)
            fills[target.order_id] = time.monotonic()
        else:
            order = Order(unique("bo"), [(unique("BT"), 1)])
            placed.append(order)
            await bench.shop.place([order], flush=False)
        key = unique("bf")
        floor_keys.append(key)
        await bench.shop.raw(floor.TOPICS[0], key)
        n += 1
    await bench.shop.flush()
    seen, arrived = bench.status.orders, bench.floor_out.arrived

    def done() -> bool:
        return (
            all(o.order_id in seen for o in placed)
            and all("1" in seen[o].allocated_at for o in fills if o in seen)
            and all(k in arrived for k in floor_keys)
        )

    await bench.status.until(
        done, what="steady", timeout=bench.timeout,
        progress=lambda: f"{sum(o.order_id in seen for o in placed)}/{len(placed)} told",
    )  # fmt: skip
    first = [seen[o.order_id].first - bench.shop.published[o.order_id] for o in placed]
    filled = [seen[o].allocated_at["1"] - sent for o, sent in fills.items()]
    floor_latency = [arrived[k] - bench.shop.published[k] for k in floor_keys]
    achieved = n / seconds
    return [
        Figure("steady offered", "events/s", achieved, rate, True),
        Figure("steady publish -> first status p50", "ms", 1000 * percentile(first, 0.5),
               1000 * percentile(floor_latency, 0.5), False),
        Figure("steady publish -> first status p99", "ms", 1000 * percentile(first, 0.99),
               1000 * percentile(floor_latency, 0.99), False),
        Figure("steady receipt -> fill p99", "ms", 1000 * percentile(filled, 0.99),
               1000 * percentile(floor_latency, 0.99), False),
    ]  # fmt: skip

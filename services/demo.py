"""The demo scenario: three customers wait for mugs, stock arrives in two receipts, one
customer cancels and passes their unit on, and an order for a SKU that refuses backorders.
Where the shop has priority tiers (BACKORDER_PRIORITY_TIERS), a customer of the highest tier
orders last and is served before the one still waiting. Last, a customer waiting for a mug
takes the cup its policy offers instead (a substitution)."""

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.table import Table

from services.ops.queries import sku_queue
from services.ops.views import SkuBook
from shared.contracts.topics import (
    ORDERS_CANCEL_REQUESTED,
    ORDERS_PLACED,
    ORDERS_STATUS_CHANGED,
    ORDERS_SUBSTITUTION_REQUESTED,
    SKU_POLICY,
    STOCK_RECEIVED,
)
from shared.db.engine import make_engine, make_session_factory
from shared.messaging.client import EdgeClient, TopicTail
from shared.settings import Settings

console = Console()


def _order(
    order_id: str, who: str, sku: str, quantity: int, priority: str | None = None
) -> dict[str, Any]:
    return ({"priority": priority} if priority else {}) | {
        "order_id": order_id,
        "customer": {"id": who.lower(), "email": f"{who.lower()}@example.com", "name": who},
        "lines": [{"line_id": "1", "sku": sku, "quantity": quantity}],
        "placed_at": datetime.now(UTC).isoformat(),
    }


def _latest(tail: TopicTail, order_id: str) -> dict[str, Any] | None:
    versions = tail.values(key=order_id)
    return max(versions, key=lambda v: v["version"]) if versions else None


async def _settle(tail: TopicTail, expected: dict[str, str], step: str) -> None:
    console.print(f"[bold]>[/bold] {step}")

    def settled(_: list[Any]) -> bool:
        return all(
            (latest := _latest(tail, oid)) is not None and latest["status"] == status
            for oid, status in expected.items()
        )

    await tail.wait_for(settled, timeout=90)


async def play(settings: Settings) -> None:
    run = uuid.uuid4().hex[:6]
    mug, lamp, cup = f"MUG-{run}", f"LAMP-{run}", f"CUP-{run}"
    ada, bob, cyd, dan, eve, fay = (
        f"{name}-{run}" for name in ("ada", "bob", "cyd", "dan", "eve", "fay")
    )
    names = {ada: "Ada", bob: "Bob", cyd: "Cyd", dan: "Dan", eve: "Eve", fay: "Fay"}
    tiers = settings.tiers
    customers = [ada, bob, cyd, dan, *([eve] if tiers.top_rank else []), fay]
    async with EdgeClient.from_settings(settings) as shop:
        tail = await shop.tail(ORDERS_STATUS_CHANGED.name)
        try:
            await shop.publish(SKU_POLICY.name, key=lamp, value={"sku": lamp, "backorders": "deny"})
            for oid, qty in ((ada, 2), (bob, 1), (cyd, 3)):
                await shop.publish(
                    ORDERS_PLACED.name, key=oid, value=_order(oid, names[oid], mug, qty)
                )
                await _settle(tail, {oid: "backordered"}, f"{names[oid]} orders {qty} x {mug}")
            # The policy travels through inventory, the order through the order service: let
            # the policy reach the lamp's book first, as a shop sets policies before selling.
            await _policy_in_force(settings, lamp, "deny")
            await shop.publish(ORDERS_PLACED.name, key=dan, value=_order(dan, "Dan", lamp, 1))
            await _settle(
                tail, {dan: "rejected"}, f"Dan orders a {lamp}, which may not be backordered"
            )
            await shop.publish(STOCK_RECEIVED.name, key=mug, value=_receipt(f"r1-{run}", mug, 2))
            await _settle(tail, {ada: "allocated"}, f"2 x {mug} arrive")
            await shop.publish(STOCK_RECEIVED.name, key=mug, value=_receipt(f"r2-{run}", mug, 2))
            await _settle(
                tail, {bob: "allocated", cyd: "partially_allocated"}, f"2 more x {mug} arrive"
            )
            await shop.publish(
                ORDERS_CANCEL_REQUESTED.name,
                key=bob,
                value={"order_id": bob, "reason": "customer changed their mind"},
            )
            await _settle(tail, {bob: "cancelled"}, "Bob cancels: his unit passes to Cyd")
            if tiers.top_rank:
                top = tiers.names[0]
                await shop.publish(
                    ORDERS_PLACED.name, key=eve, value=_order(eve, "Eve", mug, 1, priority=top)
                )
                await _settle(
                    tail, {eve: "backordered"}, f"Eve, a {top} customer, orders 1 x {mug}"
                )
                await shop.publish(
                    STOCK_RECEIVED.name, key=mug, value=_receipt(f"r3-{run}", mug, 1)
                )
                await _settle(
                    tail, {eve: "allocated"}, f"1 more x {mug} arrives: Eve is served before Cyd"
                )
                await shop.publish(
                    STOCK_RECEIVED.name, key=mug, value=_receipt(f"r4-{run}", mug, 1)
                )
            else:
                await shop.publish(
                    STOCK_RECEIVED.name, key=mug, value=_receipt(f"r3-{run}", mug, 1)
                )
            await _settle(tail, {cyd: "allocated"}, f"1 more x {mug} arrives")
            await _substitution(settings, shop, tail, fay, mug, cup, run)
        finally:
            await tail.stop()
    for oid in customers:
        _print_timeline(names[oid], oid, tail.values(key=oid))


async def _substitution(
    settings: Settings, shop: EdgeClient, tail: TopicTail, fay: str, mug: str, cup: str, run: str
) -> None:
    """Fay waits for a mug, sees that a cup is in stock instead, and takes it."""
    policy = {"sku": mug, "backorders": "allow", "alternatives": [cup]}
    await shop.publish(SKU_POLICY.name, key=mug, value=policy)
    await shop.publish(STOCK_RECEIVED.name, key=cup, value=_receipt(f"r-cup-{run}", cup, 1))
    await _policy_in_force(settings, mug, "allow")
    await _until(settings, cup, lambda book: book.available == 1)
    await shop.publish(ORDERS_PLACED.name, key=fay, value=_order(fay, "Fay", mug, 1))
    await _settle(tail, {fay: "backordered"}, f"Fay orders 1 x {mug}; {cup} is offered instead")
    request = {"order_id": fay, "line_id": "1", "sku": cup, "reason": "would rather not wait"}
    await shop.publish(ORDERS_SUBSTITUTION_REQUESTED.name, key=fay, value=request)
    await _settle(tail, {fay: "allocated"}, f"Fay takes the {cup} instead of waiting")


async def _policy_in_force(settings: Settings, sku: str, backorders: str) -> None:
    await _until(
        settings, sku, lambda book: book.policy is not None and book.policy.backorders == backorders
    )


async def _until(settings: Settings, sku: str, holds: Callable[[SkuBook], bool]) -> None:
    """Waits until the SKU's book, as the allocator keeps it, shows what `holds` asks for."""
    engine = make_engine(settings, pool_size=1)
    try:
        async with asyncio.timeout(90):
            while True:
                async with make_session_factory(engine)() as session:
                    book = await sku_queue(session, sku=sku)
                if book is not None and holds(book):
                    return
                await asyncio.sleep(0.2)
    finally:
        await engine.dispose()


def _receipt(receipt_id: str, sku: str, quantity: int) -> dict[str, Any]:
    return {
        "receipt_id": receipt_id,
        "sku": sku,
        "quantity": quantity,
        "received_at": datetime.now(UTC).isoformat(),
    }


def _print_timeline(name: str, order_id: str, versions: list[dict[str, Any]]) -> None:
    """A row per line per version: a substitution shows the closed line beside the new one."""
    table = Table(title=f"{name}'s order {order_id}", title_justify="left")
    columns = ("version", "status", "sku", "allocated", "waiting", "rejected", "queue", "reason")
    for column in columns:
        table.add_column(column)
    for v in sorted(versions, key=lambda v: v["version"]):
        for line in v["lines"]:
            table.add_row(
                str(v["version"]),
                v["status"],
                line["sku"],
                str(line["allocated"]),
                str(line["backordered"]),
                str(line["rejected"]),
                str(line.get("queue_position") or ""),
                line.get("reason") or v.get("reason") or "",
            )
    console.print(table)


def main(settings: Settings) -> None:
    asyncio.run(play(settings))

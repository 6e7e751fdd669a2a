"""Priority tiers with aging (issue 9, part 1) against the real broker and database. The fleet
runs with BACKORDER_PRIORITY_TIERS="vip,standard" (tests/conftest.py); aging is set per SKU."""

from collections.abc import AsyncIterator

import asyncpg
import pytest
import pytest_asyncio

from services.allocator.domain.book import LANE_BITS
from shared.contracts.headers import DLQ_REASON
from shared.contracts.topics import ORDERS_PLACED, SKU_POLICY, STOCK_RECEIVED
from shared.messaging.client import EdgeClient, TopicTail
from tests.support.checks import (
    assert_books_consistent,
    latest_line,
    wait_for_statuses,
)
from tests.support.checks import wait_for_value as wait_for_row
from tests.support.shop import order_placed, stock_received, unique

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


async def place(shop: EdgeClient, order_id: str, sku: str, *, priority: str | None = None) -> None:
    await shop.publish(
        ORDERS_PLACED.name, key=order_id, value=order_placed(order_id, (sku, 1), priority=priority)
    )


async def receive(shop: EdgeClient, sku: str, quantity: int) -> None:
    await shop.publish(
        STOCK_RECEIVED.name, key=sku, value=stock_received(unique("r"), sku, quantity)
    )


@pytest_asyncio.fixture(loop_scope="session")
async def rejected_orders(shop: EdgeClient) -> AsyncIterator[TopicTail]:
    tail = await shop.tail(ORDERS_PLACED.dlq)
    try:
        yield tail
    finally:
        await tail.stop()


async def test_a_priority_order_placed_after_two_standard_ones_is_filled_first(
    shop: EdgeClient, status_changes: TopicTail, db: asyncpg.Connection
) -> None:
    sku, first, second, vip = unique("SKU"), unique("o"), unique("o"), unique("o")
    for order in (first, second):
        await place(shop, order, sku)
        await wait_for_statuses(status_changes, {order: "backordered"})
    await place(shop, vip, sku, priority="vip")
    await wait_for_statuses(status_changes, {vip: "backordered"})
    assert latest_line(status_changes, vip)["queue_position"] == 1

    await receive(shop, sku, 1)
    await wait_for_statuses(status_changes, {vip: "allocated"})
    assert latest_line(status_changes, first)["status"] == "backordered"
    await receive(shop, sku, 1)
    await wait_for_statuses(status_changes, {first: "allocated"})
    assert latest_line(status_changes, second)["status"] == "backordered"
    await assert_books_consistent(db, [sku])


async def test_a_standard_line_is_told_its_place_further_back_when_a_vip_joins_ahead(
    shop: EdgeClient, status_changes: TopicTail, db: asyncpg.Connection
) -> None:
    sku, standard, vip = unique("SKU"), unique("o"), unique("o")
    await place(shop, standard, sku)
    await wait_for_statuses(status_changes, {standard: "backordered"})
    assert latest_line(status_changes, standard)["queue_position"] == 1
    await place(shop, vip, sku, priority="vip")
    await wait_for_statuses(status_changes, {vip: "backordered"})
    # The tail gathers what the topic carries only while it is polled.
    await status_changes.wait_for(
        lambda _: latest_line(status_changes, standard)["queue_position"] == 2
    )
    # every version names the tier the order waits in, the default one when it named none
    assert {v["priority"] for v in status_changes.values(key=standard)} == {"standard"}
    assert {v["priority"] for v in status_changes.values(key=vip)} == {"vip"}
    await assert_books_consistent(db, [sku])


async def test_aging_lifts_a_waiting_standard_line_ahead_of_priority_orders_that_come_later(
    shop: EdgeClient, status_changes: TopicTail, db: asyncpg.Connection
) -> None:
    sku, patient, early_vip, late_vip = unique("SKU"), unique("o"), unique("o"), unique("o")
    await shop.publish(
        SKU_POLICY.name, key=sku, value={"sku": sku, "backorders": "allow", "aging": "PT3S"}
    )
    await wait_for_row(db, "select aging_seconds from sku_book where sku = $1", sku, expected=3.0)
    await place(shop, patient, sku)
    await wait_for_statuses(status_changes, {patient: "backordered"})
    await place(shop, early_vip, sku, priority="vip")
    await wait_for_statuses(status_changes, {early_vip: "backordered"})

    # Past the bound the sweep lifts the standard line to the vip rank, at its tail, and tells
    # it its place there.
    await wait_for_row(
        db,
        f"select seq >> {LANE_BITS} from allocation_line where order_id = $1",
        patient,
        expected=1,
    )
    position = await queue_position(db, sku, patient)
    # The tail gathers what the topic carries only while it is polled.
    await status_changes.wait_for(
        lambda _: latest_line(status_changes, patient)["queue_position"] == position
    )

    await place(shop, late_vip, sku, priority="vip")
    await wait_for_statuses(status_changes, {late_vip: "backordered"})
    assert latest_line(status_changes, late_vip)["queue_position"] == 3
    await receive(shop, sku, 2)
    await wait_for_statuses(status_changes, {early_vip: "allocated", patient: "allocated"})
    assert latest_line(status_changes, late_vip)["status"] == "backordered"
    await assert_books_consistent(db, [sku])


async def queue_position(db: asyncpg.Connection, sku: str, order_id: str) -> int:
    """The line's place in the order the SKU is served: highest rank's lane first."""
    position: int = await db.fetchval(
        "select position from (select order_id, row_number() over"
        f" (order by seq >> {LANE_BITS} desc, seq) as position from allocation_line"
        " where sku = $1 and waiting > 0) q where order_id = $2",
        sku,
        order_id,
    )
    return position


async def test_the_same_priority_order_twice_has_the_effect_of_once(
    shop: EdgeClient,
    status_changes: TopicTail,
    rejected_orders: TopicTail,
    db: asyncpg.Connection,
) -> None:
    sku, order = unique("SKU"), unique("o")
    body = order_placed(order, (sku, 1), priority="vip")
    for _ in range(2):
        await shop.publish(ORDERS_PLACED.name, key=order, value=body)
    await wait_for_statuses(status_changes, {order: "backordered"})
    await receive(shop, sku, 1)
    await wait_for_statuses(status_changes, {order: "allocated"})
    assert [v["version"] for v in status_changes.values(key=order)] == [1, 2]
    assert not [r for r in rejected_orders.records if r.key == order.encode()]
    assert await db.fetchval("select count(*) from allocation_line where order_id = $1", order) == 1
    await assert_books_consistent(db, [sku])


async def test_the_same_order_with_another_priority_is_a_conflict(
    shop: EdgeClient, status_changes: TopicTail, rejected_orders: TopicTail
) -> None:
    sku, order = unique("SKU"), unique("o")
    body = order_placed(order, (sku, 1), priority="vip")
    await shop.publish(ORDERS_PLACED.name, key=order, value=body)
    await wait_for_statuses(status_changes, {order: "backordered"})
    await shop.publish(ORDERS_PLACED.name, key=order, value=body | {"priority": "standard"})
    reason = await dead_letter_reason(rejected_orders, order)
    assert "conflict" in reason


@pytest.mark.parametrize(
    ("priority", "reason"),
    [
        ("gold", "unknown priority tier 'gold': this shop's tiers are vip, standard"),
        ("VIP", "priority"),
        (1, "priority"),
    ],
    ids=["unknown-tier", "not-a-tier-name", "not-text"],
)
async def test_an_unknown_priority_is_dead_lettered_with_the_reason(
    shop: EdgeClient,
    status_changes: TopicTail,
    rejected_orders: TopicTail,
    priority: object,
    reason: str,
) -> None:
    sku, bad, good = unique("SKU"), unique("o"), unique("o")
    await shop.publish(
        ORDERS_PLACED.name, key=bad, value=order_placed(bad, (sku, 1)) | {"priority": priority}
    )
    assert reason in await dead_letter_reason(rejected_orders, bad)
    await place(shop, good, sku, priority="vip")
    await wait_for_statuses(status_changes, {good: "backordered"})
    assert not status_changes.values(key=bad)


async def dead_letter_reason(tail: TopicTail, key: str) -> str:
    def arrived(_: list[object]) -> bool:
        return any(r.key == key.encode() for r in tail.records)

    await tail.wait_for(arrived, timeout=60.0)
    record = next(r for r in tail.records if r.key == key.encode())
    reason: bytes = dict(record.headers)[DLQ_REASON]
    return reason.decode()

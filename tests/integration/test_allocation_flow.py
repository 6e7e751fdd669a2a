"""Semantics 1-4 against the real broker and database, through the upstream topics only."""

import asyncpg
import pytest

from shared.contracts.topics import (
    ORDERS_CANCEL_REQUESTED,
    ORDERS_PLACED,
    SKU_POLICY,
    STOCK_RECEIVED,
)
from shared.messaging.client import EdgeClient, TopicTail
from tests.support.checks import (
    assert_books_consistent,
    latest_line,
    wait_for_available,
    wait_for_statuses,
    wait_for_value,
)
from tests.support.shop import order_placed, stock_received, unique

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


async def place(shop: EdgeClient, order_id: str, *lines: tuple[str, int]) -> None:
    await shop.publish(ORDERS_PLACED.name, key=order_id, value=order_placed(order_id, *lines))


async def receive(shop: EdgeClient, sku: str, quantity: int) -> None:
    await shop.publish(
        STOCK_RECEIVED.name, key=sku, value=stock_received(unique("r"), sku, quantity)
    )


async def test_in_stock_line_is_allocated_at_once(
    shop: EdgeClient, status_changes: TopicTail, db: asyncpg.Connection
) -> None:
    sku, order = unique("SKU"), unique("o")
    await receive(shop, sku, 5)
    await wait_for_available(db, sku, 5)
    await place(shop, order, (sku, 3))
    picture = (await wait_for_statuses(status_changes, {order: "allocated"}))[order]
    assert picture["version"] == 1
    assert picture["lines"][0] | {"reason": None} == {
        "line_id": "1",
        "sku": sku,
        "quantity": 3,
        "allocated": 3,
        "backordered": 0,
        "rejected": 0,
        "status": "allocated",
        "queue_position": None,
        "eta": None,
        "eta_change": None,
        "reason": None,
        "alternatives": [],
    }
    await assert_books_consistent(db, [sku])
    assert await db.fetchval("select available from sku_book where sku = $1", sku) == 2


async def test_waiting_lines_are_filled_in_arrival_order(
    shop: EdgeClient, status_changes: TopicTail, db: asyncpg.Connection
) -> None:
    sku = unique("SKU")
    first, second, third = unique("o"), unique("o"), unique("o")
    for order, quantity in ((first, 2), (second, 1), (third, 3)):
        await place(shop, order, (sku, quantity))
        await wait_for_statuses(status_changes, {order: "backordered"})
    positions = [latest_line(status_changes, o)["queue_position"] for o in (first, second, third)]
    assert positions == [1, 2, 3]

    await receive(shop, sku, 1)  # the head is filled partly and stays at the head
    await wait_for_statuses(status_changes, {first: "partially_allocated"})
    assert latest_line(status_changes, first)["queue_position"] == 1
    await receive(shop, sku, 3)
    await wait_for_statuses(
        status_changes, {first: "allocated", second: "allocated", third: "partially_allocated"}
    )
    third_line = latest_line(status_changes, third)
    assert (third_line["allocated"], third_line["backordered"]) == (1, 2)
    await assert_books_consistent(db, [sku])


async def test_cancel_passes_reserved_units_to_the_next_in_line(
    shop: EdgeClient, status_changes: TopicTail, db: asyncpg.Connection
) -> None:
    sku, keeper, leaver = unique("SKU"), unique("o"), unique("o")
    await place(shop, leaver, (sku, 2))
    await wait_for_statuses(status_changes, {leaver: "backordered"})
    await place(shop, keeper, (sku, 2))
    await wait_for_statuses(status_changes, {keeper: "backordered"})
    await receive(shop, sku, 2)
    await wait_for_statuses(status_changes, {leaver: "allocated"})

    await shop.publish(
        ORDERS_CANCEL_REQUESTED.name, key=leaver, value={"order_id": leaver, "reason": "too late"}
    )
    result = await wait_for_statuses(status_changes, {leaver: "cancelled", keeper: "allocated"})
    assert result[leaver]["reason"] == "too late"
    assert result[leaver]["lines"][0]["allocated"] == 0
    await assert_books_consistent(db, [sku])


async def test_cancelling_some_lines_keeps_the_others(
    shop: EdgeClient, status_changes: TopicTail, db: asyncpg.Connection
) -> None:
    mug, lamp, order = unique("SKU"), unique("SKU"), unique("o")
    await receive(shop, lamp, 1)
    await wait_for_available(db, lamp, 1)
    await place(shop, order, (mug, 1), (lamp, 1))
    await wait_for_statuses(status_changes, {order: "partially_allocated"})
    await shop.publish(
        ORDERS_CANCEL_REQUESTED.name, key=order, value={"order_id": order, "line_ids": ["1"]}
    )
    picture = (await wait_for_statuses(status_changes, {order: "allocated"}))[order]
    assert [line["status"] for line in picture["lines"]] == ["cancelled", "allocated"]


async def test_policy_denies_or_limits_backorders_with_a_reason(
    shop: EdgeClient, status_changes: TopicTail, db: asyncpg.Connection
) -> None:
    denied, limited = unique("SKU"), unique("SKU")
    await shop.publish(SKU_POLICY.name, key=denied, value={"sku": denied, "backorders": "deny"})
    await shop.publish(
        SKU_POLICY.name,
        key=limited,
        value={"sku": limited, "backorders": "allow", "max_backorder_quantity": 3},
    )
    await receive(shop, denied, 1)
    await wait_for_available(db, denied, 1)
    await wait_for_value(
        db, "select policy ->> 'backorders' from sku_book where sku = $1", denied, expected="deny"
    )
    await wait_for_value(
        db,
        "select (policy ->> 'max_backorder_quantity')::int from sku_book where sku = $1",
        limited,
        expected=3,
    )
    no_backorder, within, beyond = unique("o"), unique("o"), unique("o")
    await place(shop, no_backorder, (denied, 3))
    result = await wait_for_statuses(status_changes, {no_backorder: "allocated"})
    line = result[no_backorder]["lines"][0]
    assert (line["allocated"], line["rejected"]) == (1, 2)
    assert "not allowed" in line["reason"]

    await place(shop, within, (limited, 3))
    await wait_for_statuses(status_changes, {within: "backordered"})
    await place(shop, beyond, (limited, 1))
    result = await wait_for_statuses(status_changes, {beyond: "rejected"})
    assert "maximum backorder quantity 3" in result[beyond]["reason"]


async def test_cancel_that_arrives_before_its_order_cancels_it_on_arrival(
    shop: EdgeClient, status_changes: TopicTail, db: asyncpg.Connection
) -> None:
    sku, order = unique("SKU"), unique("o")
    await shop.publish(
        ORDERS_CANCEL_REQUESTED.name, key=order, value={"order_id": order, "reason": "oops"}
    )
    await receive(shop, sku, 1)
    await wait_for_available(db, sku, 1)
    await place(shop, order, (sku, 1))
    picture = (await wait_for_statuses(status_changes, {order: "cancelled"}))[order]
    assert picture["reason"] == "oops"
    assert picture["version"] == 1
    # the order never took the unit
    await assert_books_consistent(db, [sku])
    assert await db.fetchval("select available from sku_book where sku = $1", sku) == 1


async def test_a_deleted_policy_puts_the_sku_back_on_the_default(
    shop: EdgeClient, status_changes: TopicTail, db: asyncpg.Connection
) -> None:
    sku, order = unique("SKU"), unique("o")
    await shop.publish(SKU_POLICY.name, key=sku, value={"sku": sku, "backorders": "deny"})
    await wait_for_value(
        db, "select policy ->> 'backorders' from sku_book where sku = $1", sku, expected="deny"
    )
    await shop.publish(SKU_POLICY.name, key=sku, value=None)  # tombstone on a compacted topic
    await wait_for_value(
        db, "select policy ->> 'backorders' from sku_book where sku = $1", sku, expected=None
    )
    await place(shop, order, (sku, 1))
    await wait_for_statuses(status_changes, {order: "backordered"})

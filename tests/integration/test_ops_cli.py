"""The operator's command line shows a SKU's queue and an order's state as the system has them."""

import json

import asyncpg

from shared.contracts.topics import ORDERS_PLACED, STOCK_RECEIVED
from shared.messaging.client import EdgeClient, TopicTail
from tests.support.checks import wait_for_statuses
from tests.support.cli import backorder
from tests.support.shop import order_placed, stock_received, unique


async def test_queue_and_order_views(
    shop: EdgeClient, status_changes: TopicTail, db: asyncpg.Connection
) -> None:
    sku, first, second = unique("SKU"), unique("o"), unique("o")
    for order_id in (first, second):
        await shop.publish(ORDERS_PLACED.name, key=order_id, value=order_placed(order_id, (sku, 3)))
        await wait_for_statuses(status_changes, {order_id: "backordered"})
    await shop.publish(STOCK_RECEIVED.name, key=sku, value=stock_received(unique("r"), sku, 1))
    await wait_for_statuses(status_changes, {first: "partially_allocated"})

    shown = await backorder("queue", sku)
    assert "backorders default (allow)" in shown
    assert shown.index(first) < shown.index(second)
    first_row = next(line for line in shown.splitlines() if first in line)
    assert [cell.strip() for cell in first_row.split("│")[1:7]] == ["1", first, "1", "3", "1", "2"]

    state = await backorder("order", first)
    assert f"{first} partially_allocated (version 2)" in state
    assert sku in state

    # --json answers as the look-up API does: the policy in force, no customer's address
    as_json = json.loads(await backorder("queue", sku, "--json"))
    assert as_json["backorders"] == "allow"
    assert [(q["position"], q["order_id"], q["waiting"]) for q in as_json["queue"]] == [
        (1, first, 2),
        (2, second, 3),
    ]
    order_json = json.loads(await backorder("order", first, "--json"))
    assert (order_json["status"], order_json["version"]) == ("partially_allocated", 2)
    assert order_json["lines"][0]["allocated"] == 1
    assert "customer_email" not in order_json

    report = await backorder("demand", "--csv", "--limit", "100000")
    row = next(line for line in report.splitlines() if line.startswith(sku + ","))
    cells = row.split(",")
    assert cells[:3] == [sku, "2", "5"]  # two lines, 2 + 3 units waiting
    assert (cells[5], cells[7]) == ("0", "5")  # nothing scheduled: all of it is short
    assert report.splitlines()[0] == (
        "sku,waiting_lines,waiting_units,oldest_wait,oldest_since,"
        "scheduled_supply,next_expected,shortfall,overdue_pos,overdue_units,overdue_since"
    )
    assert "Backorder demand" in await backorder("demand")
    demand_json = json.loads(await backorder("demand", "--json", "--limit", "100000"))
    assert next(row for row in demand_json if row["sku"] == sku)["shortfall"] == 5

    await backorder("order", unique("nobody"), expect=1)
    await backorder("queue", unique("SKU"), expect=1)

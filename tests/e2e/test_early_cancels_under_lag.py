"""An early cancel is dead-lettered only when its order truly did not arrive, not when the order
service merely lags behind on `orders.placed`.

The order service reads orders and cancels with separate consumers: after a restart the few
cancels are read at once while the orders' backlog takes a while. The wait for the order is
measured from the messages' timestamps, and only once the orders' consumer has passed them.
"""

import asyncpg

from shared.contracts.topics import ORDERS_CANCEL_REQUESTED, ORDERS_PLACED
from shared.messaging.client import EdgeClient, TopicTail
from tests.support.checks import latest, wait_for_statuses
from tests.support.fleet import Fleet
from tests.support.shop import order_placed, unique

BACKLOG = 250
CANCELLED = 5


async def test_cancels_published_after_their_orders_survive_the_order_services_lag(
    fleet: Fleet, shop: EdgeClient, status_changes: TopicTail, db: asyncpg.Connection
) -> None:
    fleet.stop(fleet.first("order"))
    sku = unique("SKU")
    orders = [unique("o") for _ in range(BACKLOG)]
    dead = await shop.tail(ORDERS_CANCEL_REQUESTED.dlq)
    try:
        for order_id in orders:
            await shop.publish(
                ORDERS_PLACED.name, key=order_id, value=order_placed(order_id, (sku, 1))
            )
        cancelled = orders[-CANCELLED:]
        for order_id in cancelled:
            await shop.publish(
                ORDERS_CANCEL_REQUESTED.name, key=order_id, value={"order_id": order_id}
            )
        never_placed = unique("ghost")
        await shop.publish(
            ORDERS_CANCEL_REQUESTED.name, key=never_placed, value={"order_id": never_placed}
        )
        # A wait far shorter than the time the backlog of orders takes to drain.
        fleet.start("order", env={"BACKORDER_CANCEL_WAIT_SECONDS": "1"})
        await wait_for_statuses(status_changes, dict.fromkeys(cancelled, "cancelled"), timeout=240)
        await wait_for_statuses(
            status_changes, dict.fromkeys(orders[:-CANCELLED], "backordered"), timeout=240
        )
        # A cancel whose order never comes is still dead-lettered once the orders caught up.
        await dead.wait_for(
            lambda records: any(r.key == never_placed.encode() for r in records), timeout=60
        )
        wrongly = [r.key.decode() for r in dead.records if r.key.decode() in cancelled]
        assert wrongly == []
        assert all(
            (latest(status_changes, o) or {}).get("status") == "cancelled" for o in cancelled
        )
        waiting = await db.fetchval(
            "select count(*) from allocation_line where sku = $1 and waiting > 0", sku
        )
        assert waiting == BACKLOG - CANCELLED
    finally:
        await dead.stop()
        fleet.stop(fleet.first("order"))
        fleet.start("order")

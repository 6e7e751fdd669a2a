"""Semantic 5: every message delivered twice has the effect of once; and the event headers."""

import json

import asyncpg
import pytest

from shared.contracts.headers import CORRELATION_ID, EVENT_ID, EVENT_TYPE
from shared.contracts.topics import (
    ALLOCATION_COMMANDS,
    ORDERS_CANCEL_REQUESTED,
    ORDERS_PLACED,
    ORDERS_STATUS_CHANGED,
    SKU_POLICY,
    STOCK_RECEIVED,
)
from shared.messaging.client import EdgeClient, TopicTail
from tests.support.checks import (
    assert_books_consistent,
    eventually,
    wait_for_available,
    wait_for_statuses,
    wait_for_value,
)
from tests.support.receivers import Mailbox, WebhookReceiver
from tests.support.shop import customer_email, order_placed, stock_received, unique

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


async def twice(shop: EdgeClient, topic: str, key: str, value: dict[str, object]) -> None:
    for _ in range(2):
        await shop.publish(topic, key=key, value=value)


async def test_every_upstream_message_twice_has_the_effect_of_once(
    shop: EdgeClient, status_changes: TopicTail, db: asyncpg.Connection
) -> None:
    sku, first, second = unique("SKU"), unique("o"), unique("o")
    await twice(shop, SKU_POLICY.name, sku, {"sku": sku, "backorders": "allow"})
    await twice(shop, ORDERS_PLACED.name, first, order_placed(first, (sku, 2)))
    await wait_for_statuses(status_changes, {first: "backordered"})
    await twice(shop, ORDERS_PLACED.name, second, order_placed(second, (sku, 2)))
    await wait_for_statuses(status_changes, {second: "backordered"})

    receipt = stock_received(unique("r"), sku, 1)
    await twice(shop, STOCK_RECEIVED.name, sku, receipt)
    await wait_for_statuses(status_changes, {first: "partially_allocated"})
    await twice(shop, ORDERS_CANCEL_REQUESTED.name, first, {"order_id": first})
    await wait_for_statuses(status_changes, {first: "cancelled", second: "partially_allocated"})

    # a later, distinct receipt proves the duplicates ahead of it were all consumed
    await shop.publish(STOCK_RECEIVED.name, key=sku, value=stock_received(unique("r"), sku, 1))
    await wait_for_statuses(status_changes, {second: "allocated"})
    assert [
        v["status"] for v in sorted(status_changes.values(key=first), key=lambda v: v["version"])
    ] == [
        "backordered",
        "partially_allocated",
        "cancelled",
    ]
    assert [v["version"] for v in status_changes.values(key=second)] == [1, 2, 3]
    assert await db.fetchval("select received_total from sku_book where sku = $1", sku) == 2
    await assert_books_consistent(db, [sku])


async def test_a_redelivered_internal_command_is_applied_once(
    shop: EdgeClient, db: asyncpg.Connection
) -> None:
    sku = unique("SKU")
    command = {"type": "receive-stock", "receipt_id": unique("r"), "sku": sku, "quantity": 4}
    headers = [(EVENT_ID, unique("evt").encode()), (EVENT_TYPE, b"ReceiveStock")]
    for _ in range(3):
        await shop.publish(ALLOCATION_COMMANDS.name, key=sku, value=command, headers=headers)
    await wait_for_available(db, sku, 4)
    # a fresh command behind the copies on the same partition: once it lands, they all did
    fresh = command | {"receipt_id": unique("r"), "quantity": 1}
    await shop.publish(
        ALLOCATION_COMMANDS.name, key=sku, value=fresh, headers=[(EVENT_ID, unique("e").encode())]
    )
    await wait_for_available(db, sku, 5)


async def test_published_events_carry_ids_type_and_correlation(
    shop: EdgeClient, status_changes: TopicTail
) -> None:
    order = unique("o")
    await shop.publish(ORDERS_PLACED.name, key=order, value=order_placed(order, (unique("S"), 1)))
    await wait_for_statuses(status_changes, {order: "backordered"})
    record = next(r for r in status_changes.records if r.key == order.encode())
    headers = dict(record.headers)
    assert headers[EVENT_TYPE] == b"OrderStatusChanged"
    assert headers[CORRELATION_ID] == order.encode()
    assert len(headers[EVENT_ID]) == 36


async def test_notifier_tells_each_change_once_despite_redelivered_versions(
    shop: EdgeClient,
    status_changes: TopicTail,
    db: asyncpg.Connection,
    mailbox: Mailbox,
    webhooks: WebhookReceiver,
) -> None:
    sku, order = unique("SKU"), unique("o")
    address = customer_email(order)
    await shop.publish(ORDERS_PLACED.name, key=order, value=order_placed(order, (sku, 1)))
    await wait_for_statuses(status_changes, {order: "backordered"})
    # both channels told before the next change, or it would be merged into their first message
    await eventually(
        lambda: len(mailbox.to(address)) == 1 and len(webhooks.for_order(order)) == 1,
        what="the backordered mail and webhook",
    )
    await shop.publish(STOCK_RECEIVED.name, key=sku, value=stock_received(unique("r"), sku, 1))
    await wait_for_statuses(status_changes, {order: "allocated"})
    await eventually(
        lambda: len(mailbox.to(address)) == 2 and len(webhooks.for_order(order)) == 2,
        what="the ready mail and webhook",
    )

    # the broker delivers both versions again, then a version 3 with nothing new in it
    versions = [r for r in status_changes.records if r.key == order.encode()]
    for record in versions:
        await shop.publish(
            ORDERS_STATUS_CHANGED.name, key=order, value=record.value, headers=record.headers
        )
    latest = json.loads(versions[-1].value) | {"version": 3}
    await shop.publish(ORDERS_STATUS_CHANGED.name, key=order, value=latest)
    await wait_for_value(
        db,
        "select count(*) from notification where order_id = $1 and status = 'skipped'",
        order,
        expected=2,  # one per channel: version 3 told nobody anything new
    )
    await status_changes.poll(2.0)
    assert [m.subject for m in mailbox.to(address)] == [
        f"Your order {order} is backordered",
        f"Your order {order} is ready to ship",
    ]
    assert [h.kind for h in webhooks.for_order(order)] == ["backordered", "allocated"]

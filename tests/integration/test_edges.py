"""Correctness at the edges: each scenario a review found, against the real broker and database.

Each test plays the scenario as the shop, an operator or a rebalance would, and checks what the
customer or the shop then sees.
"""

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest_asyncio

from shared.contracts.headers import DLQ_REASON, EVENT_ID, EVENT_TYPE
from shared.contracts.topics import (
    ALLOCATION_COMMANDS,
    LINE_ALLOCATION_CHANGED,
    ORDERS_CANCEL_REQUESTED,
    ORDERS_PLACED,
    RESTOCK_SCHEDULED,
    SKU_POLICY,
    STOCK_RECEIVED,
)
from shared.messaging.client import EdgeClient, TopicTail
from tests.support.checks import (
    assert_books_consistent,
    eventually,
    latest,
    latest_line,
    wait_for_available,
    wait_for_statuses,
    wait_for_value,
)
from tests.support.receivers import Mailbox, WebhookReceiver
from tests.support.shop import customer_email, order_placed, stock_received, unique

DAY = datetime(2027, 2, 1, tzinfo=UTC)


def restock(po_id: str, sku: str, quantity: int, days: int) -> dict[str, object]:
    expected = DAY + timedelta(days=days)
    return {"po_id": po_id, "sku": sku, "quantity": quantity, "expected_at": expected.isoformat()}


def subjects(mailbox: Mailbox, order_id: str) -> list[str]:
    return [mail.subject for mail in mailbox.to(customer_email(order_id))]


async def dead_letter(tail: TopicTail, key: str, timeout: float = 30.0) -> str:
    """The reason the record with `key` was dead-lettered."""
    await tail.wait_for(lambda rs: any(r.key == key.encode() for r in rs), timeout=timeout)
    record = next(r for r in tail.records if r.key == key.encode())
    return str(dict(record.headers)[DLQ_REASON].decode())


@pytest_asyncio.fixture(loop_scope="session")
async def line_news(shop: EdgeClient) -> AsyncIterator[TopicTail]:
    tail = await shop.tail(LINE_ALLOCATION_CHANGED.name)
    try:
        yield tail
    finally:
        await tail.stop()


async def place(shop: EdgeClient, order_id: str, *lines: tuple[str, int]) -> None:
    await shop.publish(ORDERS_PLACED.name, key=order_id, value=order_placed(order_id, *lines))


async def receive(shop: EdgeClient, db: asyncpg.Connection, sku: str, quantity: int) -> None:
    await shop.publish(
        STOCK_RECEIVED.name, key=sku, value=stock_received(unique("r"), sku, quantity)
    )
    await wait_for_available(db, sku, quantity)


async def test_a_purchase_order_moved_to_another_sku_leaves_the_first_ones_schedule(
    shop: EdgeClient, status_changes: TopicTail, db: asyncpg.Connection, mailbox: Mailbox
) -> None:
    first_sku, second_sku, po = unique("A"), unique("B"), unique("po")
    waits_for_first, waits_for_second = unique("o"), unique("o")
    await place(shop, waits_for_first, (first_sku, 1))
    await place(shop, waits_for_second, (second_sku, 1))
    await wait_for_statuses(
        status_changes, {waits_for_first: "backordered", waits_for_second: "backordered"}
    )
    # told of the wait before the date comes (a change within the window would be merged)
    await eventually(lambda: len(subjects(mailbox, waits_for_first)) == 1, what="the first mail")
    await shop.publish(RESTOCK_SCHEDULED.name, key=first_sku, value=restock(po, first_sku, 1, 3))
    await status_changes.wait_for(lambda _: latest_line(status_changes, waits_for_first)["eta"])
    await eventually(lambda: len(subjects(mailbox, waits_for_first)) == 2, what="the date mail")

    await shop.publish(RESTOCK_SCHEDULED.name, key=second_sku, value=restock(po, second_sku, 1, 5))
    await status_changes.wait_for(
        lambda _: (
            latest_line(status_changes, waits_for_second)["eta"] is not None
            and latest_line(status_changes, waits_for_first)["eta"] is None
        )
    )
    assert latest_line(status_changes, waits_for_first)["eta_change"] == "cleared"
    assert latest_line(status_changes, waits_for_second)["eta"].startswith("2027-02-06")
    await eventually(
        lambda: (
            subjects(mailbox, waits_for_first)[-1:] == [f"Your order {waits_for_first} is delayed"]
        ),
        what=lambda: f"the delay mail: {subjects(mailbox, waits_for_first)}",
    )
    schedule = await db.fetch("select sku from scheduled_restock where po_id = $1", po)
    assert [row["sku"] for row in schedule] == [second_sku]


async def test_a_cancel_that_reaches_the_allocator_before_its_allocate_is_not_lost(
    shop: EdgeClient, db: asyncpg.Connection, line_news: TopicTail
) -> None:
    """As after a partition increase, or the replay of a dead-lettered allocate."""
    sku, order_id = unique("SKU"), unique("o")
    await receive(shop, db, sku, 5)

    async def command(body: dict[str, object]) -> None:
        await shop.publish(
            ALLOCATION_COMMANDS.name,
            key=sku,
            value=body | {"order_id": order_id, "line_id": "1", "sku": sku},
            headers=[(EVENT_ID, unique("e").encode()), (EVENT_TYPE, str(body["type"]).encode())],
        )

    await command({"type": "cancel-line", "reason": "changed my mind"})
    await command({"type": "allocate-line", "quantity": 2})
    await line_news.wait_for(lambda _: bool(line_news.values(key=order_id)))
    news = line_news.values(key=order_id)
    assert [(n["status"], n["allocated"], n["reason"]) for n in news] == [
        ("cancelled", 0, "changed my mind")
    ]
    assert await db.fetchval("select available from sku_book where sku = $1", sku) == 5
    await assert_books_consistent(db, [sku])


async def test_a_partly_refused_line_says_so_to_the_shop_and_the_customer(
    shop: EdgeClient, status_changes: TopicTail, db: asyncpg.Connection, mailbox: Mailbox
) -> None:
    sku, order_id = unique("MUG"), unique("o")
    await shop.publish(SKU_POLICY.name, key=sku, value={"sku": sku, "backorders": "deny"})
    await wait_for_value(
        db, "select policy ->> 'backorders' from sku_book where sku = $1", sku, expected="deny"
    )
    await receive(shop, db, sku, 3)
    await place(shop, order_id, (sku, 5))
    picture = (await wait_for_statuses(status_changes, {order_id: "allocated"}))[order_id]
    refused = f"backorders are not allowed for SKU {sku}"
    line = picture["lines"][0]
    assert (line["allocated"], line["rejected"], line["reason"]) == (3, 2, refused)
    assert picture["reason"] == refused
    await eventually(lambda: bool(mailbox.to(customer_email(order_id))), what="a mail")
    mail = mailbox.to(customer_email(order_id))[0]
    assert mail.subject == f"We could not accept your order {order_id}"
    assert f"3 reserved, ready to ship; 2 not accepted ({refused})" in mail.body
    assert "Everything in your order is reserved" not in mail.body


async def test_cancelling_one_line_of_a_ready_order_tells_the_customer_and_the_shop(
    shop: EdgeClient,
    status_changes: TopicTail,
    db: asyncpg.Connection,
    mailbox: Mailbox,
    webhooks: WebhookReceiver,
) -> None:
    sku, order_id = unique("MUG"), unique("o")
    await receive(shop, db, sku, 2)
    await place(shop, order_id, (sku, 1), (sku, 1))
    await wait_for_statuses(status_changes, {order_id: "allocated"})
    await eventually(
        lambda: len(subjects(mailbox, order_id)) == 1 and len(webhooks.for_order(order_id)) == 1,
        what="the ready-to-ship message on both channels",
    )
    await shop.publish(
        ORDERS_CANCEL_REQUESTED.name,
        key=order_id,
        value={"order_id": order_id, "line_ids": ["2"], "reason": "changed my mind"},
    )
    await status_changes.wait_for(
        lambda _: latest_line(status_changes, order_id, 1)["status"] == "cancelled"
    )
    assert (latest(status_changes, order_id) or {})["status"] == "allocated"
    await eventually(
        lambda: len(subjects(mailbox, order_id)) == 2 and len(webhooks.for_order(order_id)) == 2,
        what=lambda: f"the cancellation: {subjects(mailbox, order_id)}",
    )
    assert subjects(mailbox, order_id)[1] == f"Your order {order_id} was cancelled"
    assert [hook.kind for hook in webhooks.for_order(order_id)] == ["allocated", "cancelled"]
    assert await db.fetchval("select available from sku_book where sku = $1", sku) == 1


async def test_one_sku_with_an_absurd_maximum_wait_never_stops_expiry_for_the_others(
    shop: EdgeClient, status_changes: TopicTail, db: asyncpg.Connection
) -> None:
    absurd, normal = unique("ABSURD"), unique("NORMAL")
    tail = await shop.tail(SKU_POLICY.dlq)
    try:
        await shop.publish(
            SKU_POLICY.name,
            key=absurd,
            value={"sku": absurd, "backorders": "allow", "max_wait": "P9999999D"},
        )
        assert "at most" in await dead_letter(tail, absurd)
    finally:
        await tail.stop()
    # A row written before durations were bounded, or by hand: the sweep must survive it.
    stuck = unique("o")
    await place(shop, stuck, (absurd, 1))
    await wait_for_statuses(status_changes, {stuck: "backordered"})
    await db.execute("update sku_book set max_wait_seconds = 1e15 where sku = $1", absurd)
    expiring = unique("o")
    await shop.publish(
        SKU_POLICY.name,
        key=normal,
        value={"sku": normal, "backorders": "allow", "max_wait": "PT2S"},
    )
    await wait_for_value(
        db, "select max_wait_seconds from sku_book where sku = $1", normal, expected=2.0
    )
    await place(shop, expiring, (normal, 1))
    await wait_for_statuses(status_changes, {expiring: "expired"}, timeout=30)
    assert (latest(status_changes, stuck) or {})["status"] == "backordered"


async def test_text_postgresql_would_refuse_is_dead_lettered_on_the_input_topic(
    shop: EdgeClient, status_changes: TopicTail, db: asyncpg.Connection
) -> None:
    sku, order_id = unique("MUG"), unique("o")
    await receive(shop, db, sku, 1)
    await place(shop, order_id, (sku, 1))
    await wait_for_statuses(status_changes, {order_id: "allocated"})
    cancels = await shop.tail(ORDERS_CANCEL_REQUESTED.dlq)
    orders = await shop.tail(ORDERS_PLACED.dlq)
    try:
        await shop.publish(
            ORDERS_CANCEL_REQUESTED.name,
            key=order_id,
            value={"order_id": order_id, "reason": "changed\x00my mind"},
        )
        assert "control character" in await dead_letter(cancels, order_id)
        separated = unique("o") + "\x1f1"
        await place(shop, separated, (sku, 1))
        assert "control character" in await dead_letter(orders, separated)
    finally:
        await cancels.stop()
        await orders.stop()
    # the units stay with the order: nothing half-applied behind the shop's back
    assert (
        await db.fetchval("select allocated from allocation_line where order_id = $1", order_id)
        == 1
    )
    assert (latest(status_changes, order_id) or {})["status"] == "allocated"


async def test_the_same_order_redelivered_with_its_time_in_another_offset_is_no_conflict(
    shop: EdgeClient, status_changes: TopicTail, db: asyncpg.Connection
) -> None:
    sku, order_id = unique("MUG"), unique("o")
    body = order_placed(order_id, (sku, 1))
    body["placed_at"] = "2026-11-21T12:00:00+02:00"
    await shop.publish(ORDERS_PLACED.name, key=order_id, value=body)
    await wait_for_statuses(status_changes, {order_id: "backordered"})
    conflicts = await shop.tail(ORDERS_PLACED.dlq)
    try:
        body["placed_at"] = "2026-11-21T10:00:00Z"
        await shop.publish(ORDERS_PLACED.name, key=order_id, value=body)
        body["placed_at"] = "2026-11-21T10:00:01Z"
        changed = body | {"order_id": order_id}
        await shop.publish(ORDERS_PLACED.name, key=order_id, value=changed)
        # the third one differs by a second: that one, and only that one, is a conflict
        reason = await dead_letter(conflicts, order_id)
        assert reason.startswith(f"conflict: order {order_id}")
        await conflicts.poll(1.0)
        assert sum(r.key == order_id.encode() for r in conflicts.records) == 1
        dead = next(r for r in conflicts.records if r.key == order_id.encode())
        assert json.loads(dead.value)["placed_at"] == "2026-11-21T10:00:01Z"
    finally:
        await conflicts.stop()
    assert len(status_changes.values(key=order_id)) == 1


async def test_a_policy_tombstone_keyed_with_spaces_still_reaches_its_sku(
    shop: EdgeClient, db: asyncpg.Connection
) -> None:
    sku = unique("LAMP")
    await shop.publish(SKU_POLICY.name, key=sku, value={"sku": sku, "backorders": "deny"})
    await wait_for_value(
        db, "select policy ->> 'backorders' from sku_book where sku = $1", sku, expected="deny"
    )
    await shop.publish(SKU_POLICY.name, key=f" {sku} ", value=None)
    await wait_for_value(
        db, "select policy ->> 'backorders' from sku_book where sku = $1", sku, expected=None
    )
    assert (
        await db.fetchval("select policy ->> 'backorders' from sku_policy where sku = $1", sku)
        is None
    )
    tail = await shop.tail(SKU_POLICY.dlq)
    try:
        await shop.publish(SKU_POLICY.name, key="\x07" + sku, value=None)
        assert "control character" in await dead_letter(tail, "\x07" + sku)
    finally:
        await tail.stop()

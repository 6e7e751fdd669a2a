"""Customers and the shop are told, over real SMTP and real signed webhooks, exactly once."""

from datetime import UTC, datetime, timedelta

import asyncpg

from shared.contracts.topics import (
    ORDERS_CANCEL_REQUESTED,
    ORDERS_PLACED,
    RESTOCK_SCHEDULED,
    SKU_POLICY,
    STOCK_RECEIVED,
)
from shared.messaging.client import EdgeClient, TopicTail
from tests.support.checks import eventually, wait_for_available, wait_for_statuses, wait_for_value
from tests.support.receivers import Mailbox, WebhookReceiver
from tests.support.shop import customer_email, order_placed, stock_received, unique


def subjects(mailbox: Mailbox, order_id: str) -> list[str]:
    return [mail.subject for mail in mailbox.to(customer_email(order_id))]


def kinds(webhooks: WebhookReceiver, order_id: str) -> list[str]:
    return [hook.kind for hook in webhooks.for_order(order_id)]


async def told(
    mailbox: Mailbox, webhooks: WebhookReceiver, order_id: str, count: int, timeout: float = 30
) -> None:
    """Waits until both channels carried `count` notifications about the order."""
    await eventually(
        lambda: (
            len(subjects(mailbox, order_id)) >= count and len(kinds(webhooks, order_id)) >= count
        ),
        what=lambda: (
            f"{count} notification(s) about {order_id}: "
            f"{subjects(mailbox, order_id)} / {kinds(webhooks, order_id)}"
        ),
        timeout=timeout,
    )


def restock(po_id: str, sku: str, quantity: int, days: int) -> dict[str, object]:
    expected = datetime(2027, 3, 1, tzinfo=UTC) + timedelta(days=days)
    return {"po_id": po_id, "sku": sku, "quantity": quantity, "expected_at": expected.isoformat()}


def policy(sku: str, **rules: object) -> dict[str, object]:
    return {"sku": sku, "backorders": "allow"} | rules


async def test_every_kind_of_news_reaches_the_customer_and_the_shop_once(
    shop: EdgeClient,
    status_changes: TopicTail,
    db: asyncpg.Connection,
    mailbox: Mailbox,
    webhooks: WebhookReceiver,
) -> None:
    lamp, spare, alt = unique("LAMP"), unique("SPARE"), unique("ALT")
    # an alternative in stock is offered while the lamp is backordered
    await shop.publish(STOCK_RECEIVED.name, key=alt, value=stock_received(unique("r"), alt, 5))
    await wait_for_available(db, alt, 5)
    await shop.publish(SKU_POLICY.name, key=lamp, value=policy(lamp, alternatives=[alt]))
    await wait_for_value(
        db,
        "select policy -> 'alternatives' from sku_book where sku = $1",
        lamp,
        expected=f'["{alt}"]',
    )

    waiting = unique("o")
    await shop.publish(ORDERS_PLACED.name, key=waiting, value=order_placed(waiting, (lamp, 2)))
    await told(mailbox, webhooks, waiting, 1)
    first = mailbox.to(customer_email(waiting))[0]
    assert "no date yet" in first.body
    assert f"In stock right now instead of {lamp}: {alt}." in first.body

    po = unique("po")
    await shop.publish(RESTOCK_SCHEDULED.name, key=lamp, value=restock(po, lamp, 2, 0))
    await told(mailbox, webhooks, waiting, 2)
    await shop.publish(RESTOCK_SCHEDULED.name, key=lamp, value=restock(po, lamp, 2, 7))
    await told(mailbox, webhooks, waiting, 3)
    delay = mailbox.to(customer_email(waiting))[2]
    assert "expected 2027-03-08 (later than we said before)" in delay.body
    assert alt in delay.body

    await shop.publish(STOCK_RECEIVED.name, key=lamp, value=stock_received(unique("r"), lamp, 1))
    await told(mailbox, webhooks, waiting, 4)
    await shop.publish(STOCK_RECEIVED.name, key=lamp, value=stock_received(unique("r"), lamp, 1))
    await told(mailbox, webhooks, waiting, 5)

    cancelled, rejected = unique("o"), unique("o")
    await shop.publish(ORDERS_PLACED.name, key=cancelled, value=order_placed(cancelled, (spare, 1)))
    await told(mailbox, webhooks, cancelled, 1)
    await shop.publish(
        ORDERS_CANCEL_REQUESTED.name,
        key=cancelled,
        value={"order_id": cancelled, "reason": "found it elsewhere"},
    )
    denied = unique("DENIED")
    await shop.publish(SKU_POLICY.name, key=denied, value={"sku": denied, "backorders": "deny"})
    await wait_for_value(
        db, "select policy ->> 'backorders' from sku_book where sku = $1", denied, expected="deny"
    )
    await shop.publish(ORDERS_PLACED.name, key=rejected, value=order_placed(rejected, (denied, 1)))
    await told(mailbox, webhooks, cancelled, 2)
    await told(mailbox, webhooks, rejected, 1)

    await status_changes.poll(2.5)  # longer than the coalescing window: nothing else comes
    assert subjects(mailbox, waiting) == [
        f"Your order {waiting} is backordered",
        f"Your order {waiting} now has an expected date",
        f"Your order {waiting} is delayed",
        f"More of your order {waiting} is reserved",
        f"Your order {waiting} is ready to ship",
    ]
    assert kinds(webhooks, waiting) == [
        "backordered",
        "date_changed",
        "date_changed",
        "partly_filled",
        "allocated",
    ]
    assert subjects(mailbox, cancelled) == [
        f"Your order {cancelled} is backordered",
        f"Your order {cancelled} was cancelled",
    ]
    assert "found it elsewhere" in mailbox.to(customer_email(cancelled))[1].body
    assert subjects(mailbox, rejected) == [f"We could not accept your order {rejected}"]
    assert kinds(webhooks, rejected) == ["rejected"]
    # each webhook names the order's state it describes, and ids never repeat
    assert webhooks.for_order(waiting)[-1].order["status"] == "allocated"
    ours = {waiting, cancelled, rejected}
    ids = [hook.notification_id for hook in webhooks.hooks if hook.order["order_id"] in ours]
    assert len(ids) == len(set(ids)) == 5 + 2 + 1
    assert webhooks.refused_signatures == 0


async def test_a_line_waiting_too_long_expires_and_its_units_pass_on(
    shop: EdgeClient,
    status_changes: TopicTail,
    db: asyncpg.Connection,
    mailbox: Mailbox,
    webhooks: WebhookReceiver,
) -> None:
    sku, patient, later = unique("SKU"), unique("o"), unique("o")
    await shop.publish(ORDERS_PLACED.name, key=patient, value=order_placed(patient, (sku, 2)))
    await wait_for_statuses(status_changes, {patient: "backordered"})
    await shop.publish(STOCK_RECEIVED.name, key=sku, value=stock_received(unique("r"), sku, 1))
    await wait_for_statuses(status_changes, {patient: "partially_allocated"})
    await status_changes.poll(5.0)
    await shop.publish(ORDERS_PLACED.name, key=later, value=order_placed(later, (sku, 1)))
    await wait_for_statuses(status_changes, {later: "backordered"})

    # the SKU now allows 4 seconds: the first order has waited longer, the second has not
    await shop.publish(SKU_POLICY.name, key=sku, value=policy(sku, max_wait="PT4S"))
    pictures = await wait_for_statuses(status_changes, {patient: "expired", later: "allocated"})
    line = pictures[patient]["lines"][0]
    assert (line["allocated"], line["status"]) == (0, "expired")
    assert line["reason"] == "waited longer than the maximum of 4 seconds"
    await eventually(
        lambda: (
            subjects(mailbox, patient)[-1:]
            == [f"Your order {patient} was cancelled after waiting too long"]
        ),
        what=lambda: f"expiry mail for {patient}: {subjects(mailbox, patient)}",
    )
    await eventually(lambda: kinds(webhooks, patient)[-1:] == ["expired"], what="expiry hook")
    await eventually(
        lambda: subjects(mailbox, later)[-1:] == [f"Your order {later} is ready to ship"],
        what=lambda: f"ready mail for {later}: {subjects(mailbox, later)}",
    )


async def test_a_burst_of_changes_becomes_one_message_about_the_latest_state(
    shop: EdgeClient,
    status_changes: TopicTail,
    db: asyncpg.Connection,
    mailbox: Mailbox,
    webhooks: WebhookReceiver,
) -> None:
    sku, order = unique("SKU"), unique("o")
    await shop.publish(ORDERS_PLACED.name, key=order, value=order_placed(order, (sku, 3)))
    await told(mailbox, webhooks, order, 1)
    for _ in range(3):
        await shop.publish(STOCK_RECEIVED.name, key=sku, value=stock_received(unique("r"), sku, 1))
    await wait_for_statuses(status_changes, {order: "allocated"})
    assert len(status_changes.values(key=order)) == 4  # three versions within the window
    await told(mailbox, webhooks, order, 2)
    await status_changes.poll(2.5)
    assert subjects(mailbox, order) == [
        f"Your order {order} is backordered",
        f"Your order {order} is ready to ship",
    ]
    assert kinds(webhooks, order) == ["backordered", "allocated"]

"""Receivers that are down, slow to recover or refusing: retries, exactly one delivery, and a
dead letter (that an operator can replay) when a notification cannot be delivered."""

import asyncio
from collections.abc import Iterator

import asyncpg
import pytest

from shared.contracts.headers import DLQ_REASON, NOTIFICATION_CHANNEL, NOTIFICATION_ID
from shared.contracts.topics import ORDERS_PLACED, ORDERS_STATUS_CHANGED
from shared.messaging.client import EdgeClient
from tests.support.checks import eventually, wait_for_value
from tests.support.cli import backorder
from tests.support.receivers import Mailbox, WebhookReceiver
from tests.support.shop import customer_email, order_placed, unique


async def notification(db: asyncpg.Connection, order_id: str, channel: str) -> asyncpg.Record:
    row = await db.fetchrow(
        "select * from notification where order_id = $1 and channel = $2", order_id, channel
    )
    assert row is not None, f"no {channel} notification for {order_id}"
    return row


async def retried(db: asyncpg.Connection, order_id: str, channel: str, attempts: int) -> str:
    """Waits until the notification failed `attempts` times and is waiting to try again."""
    for _ in range(300):
        row = await db.fetchrow(
            "select status, attempts, last_error from notification "
            "where order_id = $1 and channel = $2",
            order_id,
            channel,
        )
        if row and row["status"] == "retrying" and row["attempts"] >= attempts:
            return str(row["last_error"])
        await asyncio.sleep(0.1)
    raise AssertionError(f"{channel} notification for {order_id} not retried: {row}")


@pytest.fixture
def receivers_restored(mailbox: Mailbox, webhooks: WebhookReceiver) -> Iterator[None]:
    yield
    webhooks.answer = 200
    webhooks.failing_orders.clear()
    mailbox.stop()
    mailbox.start()


async def test_mail_server_down_then_back_gives_retries_and_one_mail(
    shop: EdgeClient,
    db: asyncpg.Connection,
    mailbox: Mailbox,
    webhooks: WebhookReceiver,
    receivers_restored: None,
) -> None:
    order = unique("o")
    mailbox.stop()
    await shop.publish(ORDERS_PLACED.name, key=order, value=order_placed(order, (unique("S"), 1)))
    error = await retried(db, order, "email", attempts=2)
    assert "SMTP unreachable" in error
    # the webhook is not held up by the mail server
    await eventually(lambda: len(webhooks.for_order(order)) == 1, what="webhook meanwhile")

    mailbox.start()
    await eventually(lambda: len(mailbox.to(customer_email(order))) == 1, what="the mail")
    # The mail server holds the mail before the notifier hears its 250 and records the send.
    await wait_for_value(
        db,
        "select status from notification where order_id = $1 and channel = 'email'",
        order,
        expected="sent",
        timeout=10,
    )
    row = await notification(db, order, "email")
    assert row["status"] == "sent"
    assert row["attempts"] >= 3
    mail = mailbox.to(customer_email(order))[0]
    assert mail.message_id.startswith(f"<{row['id']}@")
    await asyncio.sleep(2.0)
    assert len(mailbox.to(customer_email(order))) == 1


async def test_webhook_endpoint_down_then_back_gives_retries_and_one_delivery(
    shop: EdgeClient,
    db: asyncpg.Connection,
    mailbox: Mailbox,
    webhooks: WebhookReceiver,
    receivers_restored: None,
) -> None:
    order = unique("o")
    webhooks.answer = 503
    await shop.publish(ORDERS_PLACED.name, key=order, value=order_placed(order, (unique("S"), 1)))
    error = await retried(db, order, "webhook", attempts=2)
    assert error == "webhook answered HTTP 503"
    await eventually(lambda: len(mailbox.to(customer_email(order))) == 1, what="mail meanwhile")

    webhooks.answer = 200
    await eventually(lambda: len(webhooks.for_order(order)) == 1, what="the webhook")
    # The receiver holds the webhook before the notifier hears its 200 and records the send.
    await wait_for_value(
        db,
        "select status from notification where order_id = $1 and channel = 'webhook'",
        order,
        expected="sent",
        timeout=10,
    )
    row = await notification(db, order, "webhook")
    assert (row["status"], row["attempts"] >= 3) == ("sent", True)
    assert webhooks.for_order(order)[0].notification_id == str(row["id"])
    await asyncio.sleep(2.0)
    assert len(webhooks.for_order(order)) == 1


async def test_undeliverable_notifications_fail_are_dead_lettered_and_can_be_replayed(
    shop: EdgeClient,
    db: asyncpg.Connection,
    mailbox: Mailbox,
    webhooks: WebhookReceiver,
    receivers_restored: None,
) -> None:
    failing, bounced, fine = unique("o"), unique("o"), unique("o")
    webhooks.failing_orders.add(failing)
    dead_letters = await shop.tail(ORDERS_STATUS_CHANGED.dlq)
    try:
        await shop.publish(
            ORDERS_PLACED.name, key=failing, value=order_placed(failing, (unique("S"), 1))
        )
        # the mail server refuses this address for good: no point in trying again
        await shop.publish(
            ORDERS_PLACED.name,
            key=bounced,
            value=order_placed(bounced, (unique("S"), 1), email=f"nobody-{bounced}@shop.example"),
        )
        await shop.publish(ORDERS_PLACED.name, key=fine, value=order_placed(fine, (unique("S"), 1)))
        await dead_letters.wait_for(lambda records: len(records) >= 2, timeout=60)
    finally:
        await dead_letters.stop()

    # others are not held up
    assert len(webhooks.for_order(fine)) == 1
    assert len(mailbox.to(customer_email(fine))) == 1
    hook_row = await notification(db, failing, "webhook")
    assert (hook_row["status"], hook_row["attempts"]) == ("failed", 8)
    mail_row = await notification(db, bounced, "email")
    assert (mail_row["status"], mail_row["attempts"]) == ("failed", 1)
    assert mail_row["last_error"].startswith("recipient refused")

    letters = {dict(r.headers)[NOTIFICATION_ID].decode(): r for r in dead_letters.records}
    assert set(letters) == {str(hook_row["id"]), str(mail_row["id"])}
    letter = letters[str(hook_row["id"])]
    headers = dict(letter.headers)
    assert headers[NOTIFICATION_CHANNEL] == b"webhook"
    assert b"failed after 8 attempt(s): webhook answered HTTP 500" in headers[DLQ_REASON]
    assert letter.key == failing.encode()

    # the shop fixes its endpoint; the operator replays the dead letter: delivered once
    webhooks.failing_orders.clear()
    address = f"{letter.topic}/{letter.partition}/{letter.offset}"
    await backorder("dlq", "replay", ORDERS_STATUS_CHANGED.name, "--address", address)
    await eventually(lambda: len(webhooks.for_order(failing)) == 1, what="replayed webhook")
    assert webhooks.for_order(failing)[0].notification_id == str(hook_row["id"])
    await backorder("dlq", "replay", ORDERS_STATUS_CHANGED.name, "--address", address)
    await asyncio.sleep(2.0)
    assert len(webhooks.for_order(failing)) == 1
    assert (await notification(db, failing, "webhook"))["status"] == "sent"

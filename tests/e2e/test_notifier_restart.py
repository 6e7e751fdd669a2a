"""The notifier stopped or killed while it delivers: nobody is told twice, nobody is forgotten."""

from collections import Counter
from collections.abc import Iterator

import pytest

from shared.contracts.topics import ORDERS_PLACED, STOCK_RECEIVED
from shared.messaging.client import EdgeClient, TopicTail
from tests.support.checks import eventually, wait_for_statuses
from tests.support.fleet import Fleet
from tests.support.receivers import Mailbox, WebhookReceiver
from tests.support.shop import customer_email, order_placed, stock_received, unique

ORDERS = 40


@pytest.fixture
def busy_receivers(mailbox: Mailbox, webhooks: WebhookReceiver) -> Iterator[None]:
    """Receivers that take their time, so a restart lands while deliveries are under way."""
    mailbox.delay = webhooks.delay = 0.4
    yield
    mailbox.delay = webhooks.delay = 0.0


async def restart_while_delivering(
    fleet: Fleet,
    shop: EdgeClient,
    status_changes: TopicTail,
    mailbox: Mailbox,
    webhooks: WebhookReceiver,
    *,
    kill: bool,
) -> tuple[list[str], list[str], list[str]]:
    """Fills ORDERS waiting orders at once and restarts the notifier once some are told."""
    sku, orders = unique("SKU"), [unique("o") for _ in range(ORDERS)]
    for order in orders:
        await shop.publish(ORDERS_PLACED.name, key=order, value=order_placed(order, (sku, 1)))
    await wait_for_statuses(status_changes, dict.fromkeys(orders, "backordered"))
    addresses = {customer_email(order) for order in orders}
    await eventually(
        lambda: (
            sum(mail.to in addresses for mail in mailbox.mails) == ORDERS
            and sum(hook.order["order_id"] in orders for hook in webhooks.hooks) == ORDERS
        ),
        what="every backordered mail and webhook",
        timeout=120,
    )
    mailbox.mails.clear()
    webhooks.hooks.clear()

    await shop.publish(STOCK_RECEIVED.name, key=sku, value=stock_received(unique("r"), sku, ORDERS))
    await wait_for_statuses(status_changes, dict.fromkeys(orders, "allocated"))
    await eventually(lambda: len(mailbox.mails) >= 5, what="the first ready mails")
    notifier = fleet.first("notifier")
    if kill:
        fleet.kill(notifier)
    else:
        fleet.stop(notifier)
    told_before = len(mailbox.mails)
    fleet.start("notifier")

    await eventually(
        lambda: (
            {m.to for m in mailbox.mails} >= addresses
            and {h.order["order_id"] for h in webhooks.hooks} >= set(orders)
        ),
        what="every ready notification after the restart",
        timeout=120,
    )
    await status_changes.poll(3.0)
    assert told_before < ORDERS, "the restart came too late to test anything"
    mail_ids = [m.message_id for m in mailbox.mails]
    hook_ids = [h.notification_id for h in webhooks.hooks]
    return orders, mail_ids, hook_ids


async def test_a_stopped_notifier_finishes_what_it_sends_and_the_next_repeats_nothing(
    fleet: Fleet,
    shop: EdgeClient,
    status_changes: TopicTail,
    mailbox: Mailbox,
    webhooks: WebhookReceiver,
    busy_receivers: None,
) -> None:
    orders, mail_ids, hook_ids = await restart_while_delivering(
        fleet, shop, status_changes, mailbox, webhooks, kill=False
    )
    assert len(mail_ids) == len(set(mail_ids)) == ORDERS
    assert len(hook_ids) == len(set(hook_ids)) == ORDERS
    assert Counter(m.to for m in mailbox.mails) == Counter(customer_email(o) for o in orders)
    assert all(m.subject.endswith("is ready to ship") for m in mailbox.mails)
    assert {h.kind for h in webhooks.hooks} == {"allocated"}


async def test_a_killed_notifier_loses_nothing_and_resends_only_under_the_same_id(
    fleet: Fleet,
    shop: EdgeClient,
    status_changes: TopicTail,
    mailbox: Mailbox,
    webhooks: WebhookReceiver,
    busy_receivers: None,
) -> None:
    _, mail_ids, hook_ids = await restart_while_delivering(
        fleet, shop, status_changes, mailbox, webhooks, kill=True
    )
    # one notification per order and channel; a send cut off by the kill may arrive again,
    # with the same Message-ID / webhook id, which receivers use to drop the repeat
    assert len(set(mail_ids)) == ORDERS
    assert len(set(hook_ids)) == ORDERS
    per_address = {m.to: m.message_id for m in mailbox.mails}
    assert len(set(per_address.values())) == ORDERS
    print(
        f"resent after the kill: {len(mail_ids) - ORDERS} mail(s), "
        f"{len(hook_ids) - ORDERS} webhook(s) (same ids)"
    )

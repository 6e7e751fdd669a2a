"""Issue 9, parts 2, 3 and 5 end to end, through the upstream topics only: backorders only
for returning customers (the shop's word or this system's history), a per-customer cap per
SKU, and a policy's delay incentive in the mails and webhooks; duplicates, and bad input for
every new field."""

import json
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
import pytest_asyncio

from shared.contracts.headers import DLQ_REASON
from shared.contracts.topics import (
    ORDERS_PLACED,
    RESTOCK_SCHEDULED,
    SKU_POLICY,
    STOCK_RECEIVED,
)
from shared.messaging.client import EdgeClient, TopicTail
from tests.integration.test_notifications import restock, told
from tests.support.checks import (
    assert_books_consistent,
    latest,
    wait_for_available,
    wait_for_statuses,
    wait_for_value,
)
from tests.support.receivers import Mailbox, WebhookReceiver
from tests.support.shop import customer_email, order_placed, stock_received, unique

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

ONLY_RETURNING = "only accepted from returning customers"
OFFER = "10% off your next order with code WAIT10"


def order_of(
    customer_id: str, order_id: str, *lines: tuple[str, int], returning: bool | None = None
) -> dict[str, Any]:
    body = order_placed(order_id, *lines)
    body["customer"]["id"] = customer_id
    if returning is not None:
        body["customer"]["returning"] = returning
    return body


async def place(shop: EdgeClient, body: dict[str, Any]) -> None:
    await shop.publish(ORDERS_PLACED.name, key=body["order_id"], value=body)


async def set_policy(shop: EdgeClient, db: asyncpg.Connection, sku: str, **rules: Any) -> None:
    """Publishes the policy and waits until the SKU's book has it."""
    await shop.publish(SKU_POLICY.name, key=sku, value={"sku": sku, **rules})
    field, expected = next(iter(rules.items()))
    await wait_for_value(
        db,
        f"select policy -> '{field}' = $2::jsonb from sku_book where sku = $1",
        sku,
        json.dumps(expected),
        expected=True,
    )


async def test_only_returning_customers_may_wait_and_the_shops_word_wins(
    shop: EdgeClient, status_changes: TopicTail, db: asyncpg.Connection
) -> None:
    sku, other = unique("SKU"), unique("SKU")
    await set_policy(shop, db, sku, backorders="returning_customers")
    await shop.publish(STOCK_RECEIVED.name, key=sku, value=stock_received(unique("r"), sku, 1))
    await wait_for_available(db, sku, 1)

    # a newcomer gets the unit on the shelf, and the rest is refused with the reason
    newcomer = unique("o")
    await place(shop, order_of(unique("c"), newcomer, (sku, 3)))
    line = (await wait_for_statuses(status_changes, {newcomer: "allocated"}))[newcomer]["lines"][0]
    assert (line["allocated"], line["rejected"], line["backordered"]) == (1, 2, 0)
    assert ONLY_RETURNING in line["reason"]

    # the shop says a new customer is returning: they wait
    vouched = unique("o")
    await place(shop, order_of(unique("c"), vouched, (sku, 2), returning=True))
    await wait_for_statuses(status_changes, {vouched: "backordered"})

    # a customer with an earlier order here that is backordered (a purchase) may wait
    regular, regulars_first, regulars_second = unique("c"), unique("o"), unique("o")
    await place(shop, order_of(regular, regulars_first, (other, 1)))
    await wait_for_statuses(status_changes, {regulars_first: "backordered"})
    await place(shop, order_of(regular, regulars_second, (sku, 1)))
    await wait_for_statuses(status_changes, {regulars_second: "backordered"})

    # ...unless the shop says otherwise: its word wins over the history
    refunded, refunded_first, refunded_second = unique("c"), unique("o"), unique("o")
    await place(shop, order_of(refunded, refunded_first, (other, 1)))
    await wait_for_statuses(status_changes, {refunded_first: "backordered"})
    await place(shop, order_of(refunded, refunded_second, (sku, 1), returning=False))
    result = await wait_for_statuses(status_changes, {refunded_second: "rejected"})
    assert ONLY_RETURNING in result[refunded_second]["reason"]

    # a wholly rejected earlier order is no purchase: the customer is still new
    rejected_twice, first_try, second_try = unique("c"), unique("o"), unique("o")
    await place(shop, order_of(rejected_twice, first_try, (sku, 1)))
    await wait_for_statuses(status_changes, {first_try: "rejected"})
    await place(shop, order_of(rejected_twice, second_try, (sku, 1)))
    await wait_for_statuses(status_changes, {second_try: "rejected"})
    await assert_books_consistent(db, [sku, other])


async def test_a_customer_waits_for_at_most_the_cap_and_the_excess_is_rejected(
    shop: EdgeClient, status_changes: TopicTail, db: asyncpg.Connection
) -> None:
    sku, greedy, modest = unique("SKU"), unique("c"), unique("c")
    await set_policy(shop, db, sku, max_backorder_quantity_per_customer=3, backorders="allow")
    first, second, theirs = unique("o"), unique("o"), unique("o")
    await place(shop, order_of(greedy, first, (sku, 2)))
    await wait_for_statuses(status_changes, {first: "backordered"})
    await place(shop, order_of(greedy, second, (sku, 2)))
    picture = (await wait_for_statuses(status_changes, {second: "backordered"}))[second]
    line = picture["lines"][0]
    assert (line["backordered"], line["rejected"]) == (1, 1)
    assert "maximum backorder quantity 3 per customer" in line["reason"]
    assert picture["reason"] == line["reason"]
    # another customer has a cap of their own
    await place(shop, order_of(modest, theirs, (sku, 3)))
    await wait_for_statuses(status_changes, {theirs: "backordered"})
    assert latest(status_changes, theirs)["lines"][0]["rejected"] == 0  # type: ignore[index]
    stamped = await db.fetch(
        "select customer_id, sum(waiting) as units from allocation_line"
        " where sku = $1 and waiting > 0 group by customer_id",
        sku,
    )
    assert {row["customer_id"]: row["units"] for row in stamped} == {greedy: 3, modest: 3}

    # once the first order is filled, the customer may wait for more again
    await shop.publish(STOCK_RECEIVED.name, key=sku, value=stock_received(unique("r"), sku, 2))
    await wait_for_statuses(status_changes, {first: "allocated"})
    third = unique("o")
    await place(shop, order_of(greedy, third, (sku, 2)))
    line = (await wait_for_statuses(status_changes, {third: "backordered"}))[third]["lines"][0]
    assert (line["backordered"], line["rejected"]) == (2, 0)
    await assert_books_consistent(db, [sku])


async def test_a_redelivered_order_changes_nothing_and_a_changed_word_is_a_conflict(
    shop: EdgeClient,
    status_changes: TopicTail,
    db: asyncpg.Connection,
    dead_letters: dict[str, TopicTail],
) -> None:
    sku, customer = unique("SKU"), unique("c")
    await set_policy(
        shop, db, sku, max_backorder_quantity_per_customer=2, backorders="returning_customers"
    )
    order = order_of(customer, unique("o"), (sku, 2), returning=True)
    await place(shop, order)
    await wait_for_statuses(status_changes, {order["order_id"]: "backordered"})
    await place(shop, order)  # the same message again: still one line waiting for 2
    # the same order, but the shop now says the customer is not returning: a conflict
    await place(shop, {**order, "customer": {**order["customer"], "returning": False}})
    marker = unique("o")  # behind both on the same partition: once it is told, they were read
    await shop.publish(
        ORDERS_PLACED.name,
        key=order["order_id"],
        value=order_of(customer, marker, (unique("SKU"), 1)),
    )
    await wait_for_statuses(status_changes, {marker: "backordered"})
    tail = dead_letters[ORDERS_PLACED.name]
    key = order["order_id"].encode()
    await tail.wait_for(lambda _: any(r.key == key for r in tail.records), timeout=60)
    letter = next(r for r in tail.records if r.key == key)
    assert "conflict" in dict(letter.headers)[DLQ_REASON].decode()
    versions = status_changes.values(key=order["order_id"])
    assert [v["version"] for v in versions] == [1]
    assert (
        await db.fetchval(
            "select sum(waiting) from allocation_line where sku = $1 and customer_id = $2",
            sku,
            customer,
        )
        == 2
    )
    # a policy sent twice is applied twice, to the same effect
    for _ in range(2):
        await shop.publish(
            SKU_POLICY.name,
            key=sku,
            value={"sku": sku, "backorders": "allow", "max_backorder_quantity_per_customer": 2},
        )
    await wait_for_value(
        db, "select policy ->> 'backorders' from sku_book where sku = $1", sku, expected="allow"
    )
    over = unique("o")
    await place(shop, order_of(customer, over, (sku, 1)))
    line = (await wait_for_statuses(status_changes, {over: "rejected"}))[over]["lines"][0]
    assert "per customer" in line["reason"]


async def test_the_incentive_is_offered_while_the_order_waits_and_only_then(
    shop: EdgeClient,
    status_changes: TopicTail,
    db: asyncpg.Connection,
    mailbox: Mailbox,
    webhooks: WebhookReceiver,
) -> None:
    lamp, plain = unique("LAMP"), unique("PLAIN")
    await set_policy(shop, db, lamp, delay_incentive=OFFER, backorders="allow")
    waiting, quiet = unique("o"), unique("o")
    await shop.publish(ORDERS_PLACED.name, key=waiting, value=order_placed(waiting, (lamp, 2)))
    await shop.publish(ORDERS_PLACED.name, key=quiet, value=order_placed(quiet, (plain, 1)))
    await told(mailbox, webhooks, waiting, 1)
    await told(mailbox, webhooks, quiet, 1)
    assert f"For your wait for {lamp}: {OFFER}" in mailbox.to(customer_email(waiting))[0].body
    first_hook = webhooks.for_order(waiting)[0]
    assert first_hook.payload["delay_incentives"] == {lamp: OFFER}
    assert first_hook.order["lines"][0]["delay_incentive"] == OFFER
    published = await wait_for_statuses(status_changes, {waiting: "backordered"})
    assert published[waiting]["lines"][0]["delay_incentive"] == OFFER

    # no policy offers anything: not a word, not a field
    assert "For your wait" not in mailbox.to(customer_email(quiet))[0].body
    quiet_hook = webhooks.for_order(quiet)[0]
    assert "delay_incentives" not in quiet_hook.payload
    assert "delay_incentive" not in quiet_hook.order["lines"][0]

    # a date that moves later: the delay notice offers it again
    po = unique("po")
    await shop.publish(RESTOCK_SCHEDULED.name, key=lamp, value=restock(po, lamp, 2, 0))
    await told(mailbox, webhooks, waiting, 2)
    await shop.publish(RESTOCK_SCHEDULED.name, key=lamp, value=restock(po, lamp, 2, 7))
    await told(mailbox, webhooks, waiting, 3)
    delay = mailbox.to(customer_email(waiting))[2]
    assert delay.subject == f"Your order {waiting} is delayed"
    assert f"For your wait for {lamp}: {OFFER}" in delay.body
    assert webhooks.for_order(waiting)[2].payload["delay_incentives"] == {lamp: OFFER}

    # ready to ship: nothing is offered for a wait that is over
    await shop.publish(STOCK_RECEIVED.name, key=lamp, value=stock_received(unique("r"), lamp, 2))
    await told(mailbox, webhooks, waiting, 4)
    ready = webhooks.for_order(waiting)[3]
    assert ready.kind == "allocated"
    assert "delay_incentives" not in ready.payload
    assert "delay_incentive" not in ready.order["lines"][0]
    assert "For your wait" not in mailbox.to(customer_email(waiting))[3].body


@pytest_asyncio.fixture(loop_scope="session")
async def dead_letters(shop: EdgeClient) -> AsyncIterator[dict[str, TopicTail]]:
    tails = {topic.name: await shop.tail(topic.dlq) for topic in (ORDERS_PLACED, SKU_POLICY)}
    try:
        yield tails
    finally:
        for tail in tails.values():
            await tail.stop()


BAD_POLICIES: list[tuple[str, dict[str, Any], str]] = [
    ("backorders", {"backorders": "returning"}, "backorders"),
    ("cap-negative", {"max_backorder_quantity_per_customer": -1}, "greater than or equal to 0"),
    ("cap-text", {"max_backorder_quantity_per_customer": "lots"}, "per_customer"),
    ("incentive-long", {"delay_incentive": "x" * 201}, "at most 200 characters"),
    ("incentive-empty", {"delay_incentive": "  "}, "at least 1 character"),
    ("incentive-lines", {"delay_incentive": "save\nnow"}, "control character U+000A"),
    ("incentive-number", {"delay_incentive": 10}, "delay_incentive"),
]


@pytest.mark.parametrize(
    ("case", "fields", "reason"), BAD_POLICIES, ids=[c[0] for c in BAD_POLICIES]
)
async def test_a_bad_new_policy_field_is_dead_lettered_and_the_old_policy_stays(
    shop: EdgeClient,
    db: asyncpg.Connection,
    dead_letters: dict[str, TopicTail],
    case: str,
    fields: dict[str, Any],
    reason: str,
) -> None:
    sku = unique(f"bad-{case}")
    await set_policy(shop, db, sku, backorders="deny")
    await shop.publish(
        SKU_POLICY.name, key=sku, value={"sku": sku, "backorders": "allow", **fields}
    )
    tail = dead_letters[SKU_POLICY.name]
    await tail.wait_for(lambda _: any(r.key == sku.encode() for r in tail.records), timeout=60)
    letter = next(r for r in tail.records if r.key == sku.encode())
    assert reason in dict(letter.headers)[DLQ_REASON].decode()
    # a good policy behind it is still applied; the bad one never was
    await set_policy(shop, db, sku, backorders="returning_customers")
    assert (
        await db.fetchval("select policy ->> 'delay_incentive' from sku_book where sku = $1", sku)
        is None
    )


@pytest.mark.parametrize("returning", ["yes", "true", 1])
async def test_an_order_whose_customer_returning_is_not_true_or_false_is_dead_lettered(
    shop: EdgeClient,
    status_changes: TopicTail,
    dead_letters: dict[str, TopicTail],
    returning: object,
) -> None:
    order_id = unique("bad-returning")
    body = order_placed(order_id, (unique("SKU"), 1))
    body["customer"]["returning"] = returning
    await shop.publish(ORDERS_PLACED.name, key=order_id, value=json.dumps(body).encode())
    # a good order behind it on the same partition still flows, and the bad one never does
    good = order_id + "-good"
    await shop.publish(ORDERS_PLACED.name, key=order_id, value=order_placed(good, (unique("S"), 1)))
    tail = dead_letters[ORDERS_PLACED.name]
    await tail.wait_for(lambda _: any(r.key == order_id.encode() for r in tail.records), timeout=60)
    letter = next(r for r in tail.records if r.key == order_id.encode())
    assert "returning" in dict(letter.headers)[DLQ_REASON].decode()
    await wait_for_statuses(status_changes, {good: "backordered"})
    assert latest(status_changes, order_id) is None

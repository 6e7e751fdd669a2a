"""Issue 9 part 4 against the real broker and database: a customer takes one of a waiting
line's alternatives for its waiting part, through `orders.substitution-requested`."""

import json
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
import pytest_asyncio

from shared.contracts.headers import DLQ_REASON
from shared.contracts.topics import (
    ALLOCATION_COMMANDS,
    ORDERS_CANCEL_REQUESTED,
    ORDERS_PLACED,
    ORDERS_SUBSTITUTION_REQUESTED,
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
from tests.support.fleet import Fleet
from tests.support.receivers import Mailbox
from tests.support.shop import customer_email, order_placed, stock_received, unique

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

REQUESTED = "substituted by {sku} at the customer's request"


@pytest_asyncio.fixture(loop_scope="session")
async def dead_letters(shop: EdgeClient) -> AsyncIterator[TopicTail]:
    tail = await shop.tail(ORDERS_SUBSTITUTION_REQUESTED.dlq)
    try:
        yield tail
    finally:
        await tail.stop()


async def place(shop: EdgeClient, order_id: str, *lines: tuple[str, int]) -> None:
    await shop.publish(ORDERS_PLACED.name, key=order_id, value=order_placed(order_id, *lines))


async def receive(shop: EdgeClient, sku: str, quantity: int) -> None:
    await shop.publish(
        STOCK_RECEIVED.name, key=sku, value=stock_received(unique("r"), sku, quantity)
    )


async def shelve(shop: EdgeClient, db: asyncpg.Connection, sku: str, quantity: int) -> None:
    """Stock for a SKU nobody waits for, landed before the test goes on."""
    await receive(shop, sku, quantity)
    await wait_for_available(db, sku, quantity)


async def offer(shop: EdgeClient, db: asyncpg.Connection, sku: str, *alternatives: str) -> None:
    """Gives the SKU its alternatives, and waits until its book knows them."""
    policy = {"sku": sku, "backorders": "allow", "alternatives": list(alternatives)}
    await shop.publish(SKU_POLICY.name, key=sku, value=policy)
    await wait_for_value(
        db,
        "select policy -> 'alternatives' = $2::jsonb from sku_book where sku = $1",
        sku,
        json.dumps(list(alternatives)),
        expected=True,
    )


async def substitute(
    shop: EdgeClient, order_id: str, line_id: str, sku: str, **more: object
) -> bytes:
    raw = json.dumps({"order_id": order_id, "line_id": line_id, "sku": sku} | more).encode()
    await shop.publish(ORDERS_SUBSTITUTION_REQUESTED.name, key=order_id, value=raw)
    return raw


async def dead_letter_reason(tail: TopicTail, key: str, raw: bytes) -> str:
    def arrived(_: list[object]) -> bool:
        return any(r.key == key.encode() and r.value == raw for r in tail.records)

    await tail.wait_for(arrived, timeout=60)
    record = next(r for r in tail.records if r.key == key.encode() and r.value == raw)
    reason: bytes = dict(record.headers)[DLQ_REASON]
    return reason.decode()


def lines(picture: dict[str, Any]) -> list[tuple[str, str, int, int, int, str]]:
    return [
        (ln["line_id"], ln["sku"], ln["allocated"], ln["backordered"], ln["rejected"], ln["status"])
        for ln in picture["lines"]
    ]


async def told_in_mail(mailbox: Mailbox, order_id: str, text: str) -> None:
    def bodies() -> list[str]:
        return [mail.body for mail in mailbox.to(customer_email(order_id))]

    await eventually(
        lambda: any(text in body for body in bodies()),
        what=lambda: f"a mail to {order_id} saying {text!r}: {bodies()}",
    )


async def wait_for_version(tail: TopicTail, order_id: str, version: int) -> dict[str, Any]:
    def reached(_: list[object]) -> bool:
        return (last := latest(tail, order_id)) is not None and last["version"] >= version

    await tail.wait_for(reached, timeout=60)
    picture = latest(tail, order_id)
    assert picture is not None
    return picture


async def waiting_for(shop: EdgeClient, status_changes: TopicTail, sku: str, quantity: int) -> str:
    order_id = unique("o")
    await place(shop, order_id, (sku, quantity))
    await wait_for_statuses(status_changes, {order_id: "backordered"})
    return order_id


async def test_an_alternative_in_stock_is_allocated_at_once_and_the_freed_place_passes_on(
    shop: EdgeClient, status_changes: TopicTail, db: asyncpg.Connection, mailbox: Mailbox
) -> None:
    mug, cup = unique("MUG"), unique("CUP")
    await offer(shop, db, mug, cup)
    await shelve(shop, db, cup, 5)
    swapper = await waiting_for(shop, status_changes, mug, 2)
    next_one = await waiting_for(shop, status_changes, mug, 1)
    assert latest_line(status_changes, next_one)["queue_position"] == 2

    await substitute(shop, swapper, "1", cup, reason="needed sooner")
    picture = (await wait_for_statuses(status_changes, {swapper: "allocated"}))[swapper]
    assert lines(picture) == [
        ("1", mug, 0, 0, 0, "substituted"),
        (f"1~{cup}", cup, 2, 0, 0, "allocated"),
    ]
    assert picture["lines"][0]["reason"] == REQUESTED.format(sku=cup) + ": needed sooner"
    assert (picture["lines"][0]["substituted"], picture["lines"][0]["substituted_by"]) == (2, cup)
    # one new version shows both lines
    assert [v["version"] for v in status_changes.values(key=swapper)] == [1, 2]
    assert await db.fetchval("select available from sku_book where sku = $1", cup) == 3

    # the mug queue's next customer now stands first: the next mug is theirs
    await receive(shop, mug, 1)
    await wait_for_statuses(status_changes, {next_one: "allocated"})
    await assert_books_consistent(db, [mug, cup])
    # the customer is told the swap as a swap (not as a cancellation), and that the order is
    # ready to ship
    await told_in_mail(mailbox, swapper, f"2 x {mug} for 2 x {cup}")
    mail = next(m for m in mailbox.to(customer_email(swapper)) if "swapped" in m.subject)
    assert mail.subject == f"We've swapped your {mug} for {cup} in your order {swapper}"
    assert "refunded" not in mail.body


async def test_an_alternative_out_of_stock_is_queued_at_its_tail(
    shop: EdgeClient, status_changes: TopicTail, db: asyncpg.Connection
) -> None:
    mug, jug = unique("MUG"), unique("JUG")
    await offer(shop, db, mug, jug)
    already_waiting = await waiting_for(shop, status_changes, jug, 1)
    swapper = await waiting_for(shop, status_changes, mug, 3)

    await substitute(shop, swapper, "1", jug)
    picture = await wait_for_version(status_changes, swapper, 2)
    assert lines(picture) == [
        ("1", mug, 0, 0, 0, "substituted"),
        (f"1~{jug}", jug, 0, 3, 0, "backordered"),
    ]
    assert picture["lines"][1]["queue_position"] == 2  # behind the jug's earlier customer

    await receive(shop, jug, 4)
    await wait_for_statuses(status_changes, {already_waiting: "allocated", swapper: "allocated"})
    await assert_books_consistent(db, [mug, jug])


async def test_a_partly_allocated_line_keeps_what_it_holds(
    shop: EdgeClient, status_changes: TopicTail, db: asyncpg.Connection
) -> None:
    mug, cup = unique("MUG"), unique("CUP")
    await offer(shop, db, mug, cup)
    await shelve(shop, db, mug, 1)
    await shelve(shop, db, cup, 2)
    swapper = unique("o")
    await place(shop, swapper, (mug, 3))
    await wait_for_statuses(status_changes, {swapper: "partially_allocated"})

    await substitute(shop, swapper, "1", cup)
    picture = (await wait_for_statuses(status_changes, {swapper: "allocated"}))[swapper]
    # the swapped units are not refused units
    assert lines(picture) == [
        ("1", mug, 1, 0, 0, "allocated"),
        (f"1~{cup}", cup, 2, 0, 0, "allocated"),
    ]
    assert picture["lines"][0]["substituted"] == 2
    assert picture["lines"][0]["reason"] == REQUESTED.format(sku=cup)
    await assert_books_consistent(db, [mug, cup])


async def test_a_repeated_request_has_no_effect(
    shop: EdgeClient,
    status_changes: TopicTail,
    db: asyncpg.Connection,
    dead_letters: TopicTail,
) -> None:
    mug, cup = unique("MUG"), unique("CUP")
    await offer(shop, db, mug, cup)
    await shelve(shop, db, cup, 10)
    swapper = await waiting_for(shop, status_changes, mug, 2)
    # twice at once: the second is read before the first is decided
    await substitute(shop, swapper, "1", cup)
    await substitute(shop, swapper, "1", cup)
    await wait_for_statuses(status_changes, {swapper: "allocated"})
    # and once more after it was decided, followed on the same partition by a bad request
    # whose dead letter shows the repeat was read
    await substitute(shop, swapper, "1", cup)
    marker = await substitute(shop, swapper, "no-such-line", cup)
    await dead_letter_reason(dead_letters, swapper, marker)

    assert [v["version"] for v in status_changes.values(key=swapper)] == [1, 2]
    assert len(latest(status_changes, swapper)["lines"]) == 2  # type: ignore[index]
    assert await db.fetchval("select available from sku_book where sku = $1", cup) == 8
    assert await db.fetchval("select count(*) from order_line where order_id = $1", swapper) == 2
    await assert_books_consistent(db, [mug, cup])


async def test_bad_requests_are_dead_lettered_with_the_reason(
    shop: EdgeClient,
    status_changes: TopicTail,
    db: asyncpg.Connection,
    dead_letters: TopicTail,
) -> None:
    mug, cup, bowl, lamp = unique("MUG"), unique("CUP"), unique("BOWL"), unique("LAMP")
    await offer(shop, db, mug, cup)
    await shelve(shop, db, lamp, 1)
    order_id = unique("o")
    await place(shop, order_id, (mug, 1), (lamp, 1))
    await wait_for_statuses(status_changes, {order_id: "partially_allocated"})
    unknown_order = unique("o")
    cases = [
        (order_id, "1", bowl, f"{bowl} is not an alternative of {mug} (its alternatives: {cup})"),
        (order_id, "2", cup, f"line 2 of order {order_id} is not waiting (status allocated)"),
        (order_id, "9", cup, f"order {order_id} has no line 9"),
        (unknown_order, "1", cup, f"unknown order {unknown_order}"),
    ]
    for key, line_id, sku, reason in cases:
        raw = await substitute(shop, key, line_id, sku)
        assert reason in await dead_letter_reason(dead_letters, key, raw)
    raw = json.dumps({"order_id": order_id, "line_id": "1", "sku": "x" * 65}).encode()
    await shop.publish(ORDERS_SUBSTITUTION_REQUESTED.name, key=order_id, value=raw)
    assert "sku" in await dead_letter_reason(dead_letters, order_id, raw)
    # nothing changed for the order
    assert [v["version"] for v in status_changes.values(key=order_id)] == [1]


async def test_a_cancel_that_overtakes_the_news_of_a_substitution_cancels_the_substitute(
    shop: EdgeClient, status_changes: TopicTail, db: asyncpg.Connection, fleet: Fleet
) -> None:
    """Issue 21 defect 1. The order service reads the swap, then the whole order's cancel,
    before the mug's book has decided the swap: the cancel cannot name the cup line yet, and
    the cup line, when the news brings it, must hold nothing."""
    mug, cup, lamp = unique("MUG"), unique("CUP"), unique("LAMP")
    await offer(shop, db, mug, cup)
    await shelve(shop, db, cup, 5)
    await shelve(shop, db, lamp, 1)
    swapper = unique("o")
    await place(shop, swapper, (mug, 2), (lamp, 1))
    await wait_for_statuses(status_changes, {swapper: "partially_allocated"})

    commands = await shop.tail(ALLOCATION_COMMANDS.name)

    def sent(_: list[object]) -> set[str]:
        return {
            f"{v['line_id']}:{v['type']}"
            for v in commands.values(key=None)
            if v.get("order_id") == swapper
        }

    fleet.stop(fleet.first("allocator"))
    try:
        # The swap and the cancel come on two topics, read by two consumers: the cancel is
        # sent once the order service has read the swap, as a customer's second click would.
        await substitute(shop, swapper, "1", cup)
        await commands.wait_for(lambda r: "1:substitute-line" in sent(r), timeout=120)
        cancel = {"order_id": swapper, "reason": "changed my mind"}
        await shop.publish(ORDERS_CANCEL_REQUESTED.name, key=swapper, value=cancel)
        # the order service has told the books, which have not decided yet
        told = {"1:substitute-line", "1:cancel-line", "2:cancel-line"}
        await commands.wait_for(lambda r: told <= sent(r), timeout=120)
    finally:
        await commands.stop()
        fleet.start("allocator")

    def settled(_: list[object]) -> bool:
        last = latest(status_changes, swapper)
        return (
            last is not None
            and len(last["lines"]) == 3
            and last["lines"][1]["status"] == "cancelled"
        )

    await status_changes.wait_for(settled, timeout=120)
    picture = latest(status_changes, swapper)
    assert picture is not None
    assert lines(picture) == [
        ("1", mug, 0, 0, 0, "cancelled"),
        ("2", lamp, 0, 0, 0, "cancelled"),
        (f"1~{cup}", cup, 0, 0, 0, "cancelled"),
    ]
    assert picture["status"] == "cancelled"
    # the cup's book was never asked: its units stay with the cup's other customers
    assert await db.fetchval("select available from sku_book where sku = $1", cup) == 5
    assert await db.fetchval("select available from sku_book where sku = $1", lamp) == 1
    await assert_books_consistent(db, [mug, cup, lamp])


async def test_an_order_whose_line_id_holds_the_substitute_separator_is_dead_lettered(
    shop: EdgeClient, status_changes: TopicTail
) -> None:
    """Issue 21 defect 3: a placed line `1~CUP` took the id a swap of line 1 for CUP makes."""
    order_id = unique("o")
    raw = order_placed(order_id, (unique("MUG"), 1))
    raw["lines"][0]["line_id"] = "1~CUP"
    dead = await shop.tail(ORDERS_PLACED.dlq)
    try:
        value = json.dumps(raw).encode()
        await shop.publish(ORDERS_PLACED.name, key=order_id, value=value)
        reason = await dead_letter_reason(dead, order_id, value)
    finally:
        await dead.stop()
    assert "'~' is reserved for the lines substitutions add" in reason
    assert latest(status_changes, order_id) is None


async def test_an_alternative_the_policy_no_longer_offers_is_refused_by_the_book(
    shop: EdgeClient, status_changes: TopicTail, db: asyncpg.Connection
) -> None:
    """Issue 21: the order service checks a swap against what it was last told; the policy
    may have dropped the alternative since, so the SKU's book checks again."""
    mug, cup = unique("MUG"), unique("CUP")
    await offer(shop, db, mug, cup)
    await shelve(shop, db, cup, 5)
    swapper = await waiting_for(shop, status_changes, mug, 2)
    offered = latest_line(status_changes, swapper)["substitutes"]
    assert offered == [{"sku": cup, "in_stock": True}]
    await offer(shop, db, mug)  # the shop withdraws the cup as the mug's alternative
    dead = await shop.tail(ALLOCATION_COMMANDS.dlq)
    try:
        await substitute(shop, swapper, "1", cup)

        def refused(_: list[object]) -> list[str]:
            return [
                dict(r.headers)[DLQ_REASON].decode()
                for r in dead.records
                if json.loads(r.value).get("order_id") == swapper
            ]

        await dead.wait_for(lambda records: bool(refused(records)), timeout=60)
        assert refused([]) == [
            f"{cup} is no longer an alternative of {mug} (its alternatives: none)"
        ]
    finally:
        await dead.stop()
    # the line still waits for its mugs, and the cup's stock is untouched
    assert [v["version"] for v in status_changes.values(key=swapper)] == [1]
    assert await db.fetchval("select available from sku_book where sku = $1", cup) == 5

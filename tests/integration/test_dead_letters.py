"""Semantic 8, and the conflict half of 5: bad input lands in `<topic>.dlq`, with its original
bytes and headers and a reason, and the consumer moves on."""

import json
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from shared.contracts.headers import DLQ_ORIGINAL_TOPIC, DLQ_REASON
from shared.contracts.topics import (
    ORDERS_CANCEL_REQUESTED,
    ORDERS_PLACED,
    SKU_POLICY,
    STOCK_RECEIVED,
)
from shared.messaging.client import EdgeClient, TopicTail
from tests.support.checks import wait_for_statuses
from tests.support.shop import order_placed, stock_received, unique

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

INPUTS = (ORDERS_PLACED, ORDERS_CANCEL_REQUESTED, STOCK_RECEIVED, SKU_POLICY)


@pytest_asyncio.fixture(loop_scope="session")
async def dead_letters(shop: EdgeClient) -> AsyncIterator[dict[str, TopicTail]]:
    tails = {topic.name: await shop.tail(topic.dlq) for topic in INPUTS}
    try:
        yield tails
    finally:
        for tail in tails.values():
            await tail.stop()


async def dead_lettered(tail: TopicTail, key: str, timeout: float = 60.0) -> dict[str, bytes]:
    def arrived(records: list[object]) -> bool:
        return any(r.key == key.encode() for r in tail.records)

    await tail.wait_for(arrived, timeout=timeout)
    record = next(r for r in tail.records if r.key == key.encode())
    return {"value": record.value, **dict(record.headers)}


BAD_ORDERS: list[tuple[str, object, str]] = [
    ("not-json", b"{this is not json", "not JSON"),
    ("not-utf8", b"\xff\xfe\x00garbage", "not UTF-8"),
    ("schema", {"order_id": "x", "lines": []}, "schema violation"),
    ("zero-quantity", "zero", "greater than 0"),
    ("duplicate-lines", "dup", "duplicate line_id"),
]
# Oversized input (cut to an excerpt in its dead letter): test_oversized_input.py.


@pytest.mark.parametrize(("case", "payload", "reason"), BAD_ORDERS, ids=[c[0] for c in BAD_ORDERS])
async def test_bad_order_goes_to_the_dead_letter_topic_and_the_next_one_is_processed(
    shop: EdgeClient,
    status_changes: TopicTail,
    dead_letters: dict[str, TopicTail],
    case: str,
    payload: object,
    reason: str,
) -> None:
    order_id = unique(f"bad-{case}")
    if payload == "zero":
        payload = order_placed(order_id, ("SKU", 0))
    elif payload == "dup":
        body = order_placed(order_id, ("SKU", 1), ("SKU", 2))
        body["lines"][1]["line_id"] = "1"
        payload = body
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    await shop.publish(ORDERS_PLACED.name, key=order_id, value=raw, headers=[("x-trace", b"t1")])
    # the same key lands on the same partition: a good order behind the bad one still flows
    good = order_id + "-good"
    await shop.publish(ORDERS_PLACED.name, key=order_id, value=order_placed(good, (unique("S"), 1)))

    letter = await dead_lettered(dead_letters[ORDERS_PLACED.name], order_id)
    assert letter["value"] == raw
    assert letter["x-trace"] == b"t1"
    assert letter[DLQ_ORIGINAL_TOPIC] == ORDERS_PLACED.name.encode()
    assert reason in letter[DLQ_REASON].decode()
    await wait_for_statuses(status_changes, {good: "backordered"})


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        (
            STOCK_RECEIVED.name,
            {"receipt_id": "r", "sku": "S", "quantity": -1, "received_at": "2026-11-21T10:00:00Z"},
            "greater than 0",
        ),
        (STOCK_RECEIVED.name, b"[]", "schema violation"),
        (SKU_POLICY.name, {"sku": "S", "backorders": "maybe"}, "backorders"),
        (ORDERS_CANCEL_REQUESTED.name, b"cancel it!", "not JSON"),
        (
            ORDERS_CANCEL_REQUESTED.name,
            {"order_id": "o", "line_ids": ["1", "1"]},
            "duplicate line_id",
        ),
    ],
)
async def test_bad_input_on_every_upstream_topic_is_dead_lettered(
    shop: EdgeClient,
    dead_letters: dict[str, TopicTail],
    topic: str,
    payload: object,
    reason: str,
) -> None:
    key = unique("bad")
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    await shop.publish(topic, key=key, value=raw)
    letter = await dead_lettered(dead_letters[topic], key)
    assert letter["value"] == raw
    assert reason in letter[DLQ_REASON].decode()


async def test_same_order_id_with_another_payload_is_a_conflict(
    shop: EdgeClient, status_changes: TopicTail, dead_letters: dict[str, TopicTail]
) -> None:
    sku, order_id = unique("SKU"), unique("o")
    await shop.publish(ORDERS_PLACED.name, key=order_id, value=order_placed(order_id, (sku, 1)))
    await wait_for_statuses(status_changes, {order_id: "backordered"})
    await shop.publish(ORDERS_PLACED.name, key=order_id, value=order_placed(order_id, (sku, 5)))
    letter = await dead_lettered(dead_letters[ORDERS_PLACED.name], order_id)
    assert "conflict" in letter[DLQ_REASON].decode()
    assert [v["version"] for v in status_changes.values(key=order_id)] == [1]


async def test_receipt_id_reused_for_other_stock_is_a_conflict(
    shop: EdgeClient, dead_letters: dict[str, TopicTail]
) -> None:
    sku, receipt = unique("SKU"), unique("r")
    await shop.publish(STOCK_RECEIVED.name, key=sku, value=stock_received(receipt, sku, 1))
    await shop.publish(STOCK_RECEIVED.name, key=sku, value=stock_received(receipt, sku, 7))
    letter = await dead_lettered(dead_letters[STOCK_RECEIVED.name], sku)
    assert "conflict" in letter[DLQ_REASON].decode()


async def test_cancel_whose_order_never_arrives_is_dead_lettered_after_the_wait(
    shop: EdgeClient, dead_letters: dict[str, TopicTail]
) -> None:
    order_id = unique("never")
    raw = json.dumps({"order_id": order_id}).encode()
    await shop.publish(ORDERS_CANCEL_REQUESTED.name, key=order_id, value=raw)
    letter = await dead_lettered(dead_letters[ORDERS_CANCEL_REQUESTED.name], order_id)
    assert letter["value"] == raw
    assert "did not arrive within 8s" in letter[DLQ_REASON].decode()


async def test_early_cancel_naming_lines_the_order_lacks_is_dead_lettered_on_arrival(
    shop: EdgeClient, status_changes: TopicTail, dead_letters: dict[str, TopicTail]
) -> None:
    order_id = unique("o")
    await shop.publish(
        ORDERS_CANCEL_REQUESTED.name,
        key=order_id,
        value={"order_id": order_id, "line_ids": ["7"]},
    )
    await shop.publish(
        ORDERS_PLACED.name, key=order_id, value=order_placed(order_id, (unique("S"), 1))
    )
    letter = await dead_lettered(dead_letters[ORDERS_CANCEL_REQUESTED.name], order_id)
    assert "has no line(s) 7" in letter[DLQ_REASON].decode()
    await wait_for_statuses(status_changes, {order_id: "backordered"})

"""Consumers take records in batches, one transaction per batch. A record that cannot be
processed is dead-lettered alone; the others of its batch apply, once each, in order."""

import json

import asyncpg
import pytest

from shared.contracts.headers import DLQ_REASON, EVENT_ID
from shared.contracts.internal import AllocateLine, CancelLine
from shared.contracts.topics import ALLOCATION_COMMANDS, LINE_ALLOCATION_CHANGED, ORDERS_PLACED
from shared.messaging.client import EdgeClient, TopicTail
from tests.support.checks import wait_for_statuses, wait_for_value
from tests.support.fleet import Fleet
from tests.support.shop import order_placed, unique

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


async def test_poison_records_in_a_batch_are_dead_lettered_alone_and_the_rest_apply(
    fleet: Fleet, shop: EdgeClient, status_changes: TopicTail
) -> None:
    dead_letters = await shop.tail(ORDERS_PLACED.dlq)
    key, sku = unique("batch"), unique("SKU")
    first, last, conflicting = unique("o"), unique("o"), unique("o")
    # While the order service is down, its partition fills up: it reads all of it in one batch.
    fleet.stop(fleet.first("order"))
    try:
        for order_id, value in [
            (first, order_placed(first, (sku, 1))),
            (conflicting, order_placed(conflicting, (sku, 1))),
            ("not-json", b"{this is not json"),
            (conflicting, order_placed(conflicting, (sku, 7))),  # same id, other lines
            (last, order_placed(last, (sku, 2))),
        ]:
            raw = value if isinstance(value, bytes) else json.dumps(value).encode()
            await shop.publish(
                ORDERS_PLACED.name, key=key, value=raw, headers=[("id", order_id.encode())]
            )
    finally:
        order = fleet.start("order")
    try:
        await wait_for_statuses(status_changes, {first: "backordered", last: "backordered"})

        def reasons() -> list[str]:
            mine = [r for r in dead_letters.records if r.key == key.encode()]
            return [dict(r.headers)[DLQ_REASON].decode() for r in mine]

        await dead_letters.wait_for(lambda _: len(reasons()) >= 2)
        assert len(reasons()) == 2
        assert "not JSON" in reasons()[0]
        assert "conflict" in reasons()[1]
        assert "taking a batch of 5 apart" in order.output()
        # Applied once each, in order: the first placing of the conflicting order stands.
        for order_id in (first, conflicting, last):
            assert [v["version"] for v in status_changes.values(key=order_id)] == [1]
        queued = [
            (v["order_id"], v["lines"][0]["queue_position"])
            for v in status_changes.values()
            if v["order_id"] in (first, conflicting, last)
        ]
        assert sorted(queued, key=lambda item: item[1]) == [(first, 1), (conflicting, 2), (last, 3)]
    finally:
        await dead_letters.stop()


async def test_a_cancel_that_reaches_the_allocator_before_its_line_ends_the_line_cancelled(
    fleet: Fleet, shop: EdgeClient, db: asyncpg.Connection
) -> None:
    """Within one batch (the cancel remembered, then taken by the allocate after it) and
    across batches (taken with the other lines of the allocate's batch)."""
    news = await shop.tail(LINE_ALLOCATION_CHANGED.name)
    sku = unique("SKU")
    same_batch, later_batch = unique("o"), unique("o")

    async def command(event: AllocateLine | CancelLine, kind: str) -> None:
        await shop.publish(
            ALLOCATION_COMMANDS.name,
            key=sku,
            value=event.model_dump_json().encode(),
            headers=[(EVENT_ID, f"{kind}:{event.order_id}".encode())],
        )

    def cancel(order_id: str) -> CancelLine:
        return CancelLine(order_id=order_id, line_id="l1", sku=sku, reason="changed my mind")

    def allocate(order_id: str) -> AllocateLine:
        return AllocateLine(order_id=order_id, line_id="l1", sku=sku, quantity=2)

    try:
        await command(cancel(later_batch), "cancel")
        await wait_for_value(
            db,
            "select count(*) from allocation_early_cancel where order_id = $1",
            later_batch,
            expected=1,
        )
        fleet.stop(fleet.first("allocator"))
        try:
            await command(cancel(same_batch), "cancel")
            await command(allocate(same_batch), "allocate")
            await command(allocate(later_batch), "allocate")
        finally:
            fleet.start("allocator")

        def told(order_id: str) -> list[tuple[str, str | None]]:
            return [(v["status"], v["reason"]) for v in news.values(key=order_id)]

        await news.wait_for(lambda _: bool(told(same_batch) and told(later_batch)))
        for order_id in (same_batch, later_batch):
            assert told(order_id) == [("cancelled", "changed my mind")]
        left = await db.fetchval(
            "select count(*) from allocation_early_cancel where order_id = any($1::text[])",
            [same_batch, later_batch],
        )
        assert left == 0
    finally:
        await news.stop()

"""Consumers take records in batches, one transaction per batch. A record that cannot be
processed is dead-lettered alone; the others of its batch apply, once each, in order."""

import json

import pytest

from shared.contracts.headers import DLQ_REASON
from shared.contracts.topics import ORDERS_PLACED
from shared.messaging.client import EdgeClient, TopicTail
from tests.support.checks import wait_for_statuses
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

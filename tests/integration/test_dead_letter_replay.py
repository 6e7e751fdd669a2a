"""Operators replay dead letters to the original topic; replaying twice has the effect of once."""

import json

import asyncpg
import pytest

from shared.contracts.headers import REPLAYED_FROM
from shared.contracts.topics import ORDERS_CANCEL_REQUESTED, ORDERS_PLACED
from shared.messaging.client import EdgeClient, TopicTail
from tests.support.checks import wait_for_statuses
from tests.support.cli import backorder
from tests.support.shop import order_placed, unique

pytestmark = pytest.mark.integration


async def test_an_expired_cancel_replayed_twice_cancels_its_order_once(
    shop: EdgeClient, status_changes: TopicTail, db: asyncpg.Connection
) -> None:
    order = unique("late")
    dlq = await shop.tail(ORDERS_CANCEL_REQUESTED.dlq)
    cancels = await shop.tail(ORDERS_CANCEL_REQUESTED.name)
    try:
        await shop.publish(
            ORDERS_CANCEL_REQUESTED.name, key=order, value={"order_id": order, "reason": "late"}
        )
        await dlq.wait_for(lambda rs: any(r.key == order.encode() for r in rs))
        letter = next(r for r in dlq.records if r.key == order.encode())
        address = f"{letter.topic}/{letter.partition}/{letter.offset}"

        listed = await backorder("dlq", "list", ORDERS_CANCEL_REQUESTED.name)
        assert address in listed
        assert "did not arrive" in listed
        shown = await backorder("dlq", "show", address)
        assert json.dumps({"order_id": order, "reason": "late"}) in shown

        await shop.publish(
            ORDERS_PLACED.name, key=order, value=order_placed(order, (unique("S"), 1))
        )
        await wait_for_statuses(status_changes, {order: "backordered"})

        first = await backorder("dlq", "replay", ORDERS_CANCEL_REQUESTED.name, "--address", address)
        assert "replayed 1, skipped 0" in first
        second = await backorder(
            "dlq", "replay", ORDERS_CANCEL_REQUESTED.name, "--address", address
        )
        assert "replayed 0, skipped 1" in second

        picture = (await wait_for_statuses(status_changes, {order: "cancelled"}))[order]
        assert picture["reason"] == "late"
        await cancels.wait_for(lambda rs: sum(r.key == order.encode() for r in rs) >= 2)
        replayed = [r for r in cancels.records if r.key == order.encode()][1:]
        assert [dict(r.headers)[REPLAYED_FROM] for r in replayed] == [address.encode()]
        assert (
            await db.fetchval(
                "select count(*) from dead_letter_replay where dlq_topic = $1 and partition = $2"
                ' and "offset" = $3',
                letter.topic,
                letter.partition,
                letter.offset,
            )
            == 1
        )
    finally:
        await dlq.stop()
        await cancels.stop()

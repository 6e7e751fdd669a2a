"""Semantic 8, transient half: with the database gone, messages wait and are retried with
backoff; none is skipped or dead-lettered, and all take effect once it is back."""

import asyncio
import subprocess

import asyncpg
import httpx
import pytest

from shared.contracts.topics import ORDERS_PLACED, STOCK_RECEIVED
from shared.messaging.client import EdgeClient, TopicTail
from tests.support.checks import wait_for_statuses
from tests.support.fleet import ROOT, Fleet
from tests.support.shop import order_placed, stock_received, unique

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]


def stack(command: str) -> None:
    subprocess.run([str(ROOT / "deploy/bin/stack"), command], cwd=ROOT, check=True)


async def test_database_outage_is_retried_not_skipped_nor_dead_lettered(
    fleet: Fleet, shop: EdgeClient, status_changes: TopicTail, db: asyncpg.Connection
) -> None:
    sku, order = unique("SKU"), unique("o")
    dlq_tails = [await shop.tail(ORDERS_PLACED.dlq), await shop.tail(STOCK_RECEIVED.dlq)]
    await db.close()
    stack("pg-stop")
    try:
        await shop.publish(ORDERS_PLACED.name, key=order, value=order_placed(order, (sku, 2)))
        await shop.publish(STOCK_RECEIVED.name, key=sku, value=stock_received(unique("r"), sku, 1))
        await asyncio.sleep(8)
        assert all(service.alive for service in fleet.running)
        async with httpx.AsyncClient() as client:
            ready = await client.get(f"{fleet.first('allocator').http}/health/ready", timeout=10)
            live = await client.get(f"{fleet.first('allocator').http}/health/live", timeout=10)
        assert ready.status_code == 503
        assert "database unreachable" in ready.text
        assert live.status_code == 200
        assert status_changes.values(key=order) == []
    finally:
        stack("pg-start")
    await shop.publish(STOCK_RECEIVED.name, key=sku, value=stock_received(unique("r"), sku, 1))
    picture = (await wait_for_statuses(status_changes, {order: "allocated"}, timeout=90))[order]
    assert picture["lines"][0]["allocated"] == 2
    for tail in dlq_tails:
        await tail.poll(1.0)
        assert not [r for r in tail.records if r.key in (order.encode(), sku.encode())]
        await tail.stop()
    logs = "".join(service.output() for service in fleet.running)
    assert "retrying in" in logs

"""Consumer lag as an operator reads it: `backorder lag` and each service's
`backorder_consumer_lag` gauge, against the real broker."""

import asyncio
import json
import re

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from services.bootstrap import SERVICES
from shared.contracts.topics import ORDERS_PLACED
from shared.messaging.client import EdgeClient, TopicTail
from shared.messaging.connection import kafka_options
from shared.messaging.lag import consumed_topics
from shared.messaging.subscriptions import group_id
from shared.messaging.topic_admin import partitions_of
from shared.settings import Settings
from tests.support.checks import wait_for_statuses
from tests.support.cli import backorder
from tests.support.fleet import Fleet
from tests.support.shop import order_placed, unique

pytestmark = pytest.mark.integration

PUBLISHED = 5


async def lag_of(group: str) -> dict[str, int]:
    """Per topic, what `backorder lag --json` says the group has still to read."""
    (shown,) = json.loads(await backorder("lag", "--group", group, "--json"))
    assert shown["group"] == group
    assert shown["lag"] == sum(topic["lag"] for topic in shown["topics"])
    return {topic["topic"]: topic["lag"] for topic in shown["topics"]}


async def publish_orders(shop: EdgeClient, count: int) -> list[str]:
    orders = [unique("o") for _ in range(count)]
    for order_id in orders:
        value = order_placed(order_id, (unique("SKU"), 1))
        await shop.publish(ORDERS_PLACED.name, key=order_id, value=value)
    return orders


def table_row(shown: str, first_cell: str) -> list[str]:
    for line in shown.splitlines():
        cells = [cell.strip() for cell in line.split("│")[1:-1]]
        if cells and cells[0] == first_cell:
            return cells
    raise AssertionError(f"no row {first_cell!r} in:\n{shown}")


async def test_a_group_is_behind_by_what_it_has_not_read_and_by_nothing_once_it_has(
    settings: Settings, shop: EdgeClient
) -> None:
    kafka = kafka_options(settings)
    group, topic = unique("lag-test"), ORDERS_PLACED.name
    reader = AIOKafkaConsumer(**kafka, group_id=group, enable_auto_commit=False)
    await reader.start()
    try:
        partitions = [TopicPartition(topic, p) for p in await partitions_of(kafka, topic)]
        reader.assign(partitions)
        await reader.commit(await reader.end_offsets(partitions))
        assert await lag_of(group) == {topic: 0}

        await publish_orders(shop, PUBLISHED)
        assert await lag_of(group) == {topic: PUBLISHED}
        shown = await backorder("lag", "--group", group)
        assert group in shown
        assert table_row(shown, topic)[-1] == str(PUBLISHED)
        assert table_row(shown, "total")[-1] == str(PUBLISHED)

        read = 0
        async with asyncio.timeout(60):
            while read < PUBLISHED:
                batches = await reader.getmany(timeout_ms=1000)
                read += sum(len(records) for records in batches.values())
        await reader.commit()
        assert await lag_of(group) == {topic: 0}
    finally:
        await reader.stop()


async def test_a_group_that_never_committed_is_said_to_have_nothing_committed() -> None:
    shown = await backorder("lag", "--group", unique("never-committed"))
    assert "no committed offsets" in shown


def gauge(metrics: str, group: str, topic: str) -> float | None:
    pattern = re.escape(f'backorder_consumer_lag{{group="{group}",topic="{topic}"}}') + " (.+)$"
    found = re.search(pattern, metrics, re.MULTILINE)
    return float(found.group(1)) if found else None


async def eventually_scraped(base: str, group: str, topic: str, value: float) -> str:
    deadline = asyncio.get_running_loop().time() + 60
    async with httpx.AsyncClient() as client:
        while True:
            metrics = (await client.get(f"{base}/metrics")).text
            if gauge(metrics, group, topic) == value:
                return metrics
            if asyncio.get_running_loop().time() > deadline:
                shown = [line for line in metrics.splitlines() if "consumer_lag" in line]
                raise AssertionError("\n".join(shown) or "no backorder_consumer_lag exported")
            await asyncio.sleep(0.3)


async def test_a_stopped_services_group_falls_behind_and_its_gauge_shows_it_caught_up(
    fleet: Fleet, shop: EdgeClient, status_changes: TopicTail
) -> None:
    group, topic = group_id("order"), ORDERS_PLACED.name
    fleet.stop(fleet.first("order"))
    try:
        before = await lag_of(group)
        assert set(before) == set(consumed_topics("order"))
        orders = await publish_orders(shop, PUBLISHED)
        assert (await lag_of(group))[topic] == before[topic] + PUBLISHED
        every_group = await backorder("lag")
        for service in SERVICES:
            assert group_id(service) in every_group
    finally:
        order = fleet.start("order")

    await wait_for_statuses(status_changes, dict.fromkeys(orders, "backordered"))
    metrics = await eventually_scraped(order.http, group, topic, 0.0)
    for consumed in consumed_topics("order"):
        assert gauge(metrics, group, consumed) is not None, consumed
    assert (await lag_of(group))[topic] == 0

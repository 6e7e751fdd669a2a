"""Each service's HTTP port, scraped as Prometheus and a Kubernetes probe would."""

import asyncio
import re
from collections.abc import Callable

import httpx
import pytest

from shared.contracts.topics import ORDERS_PLACED, STOCK_RECEIVED
from shared.messaging.client import EdgeClient, TopicTail
from tests.support.checks import wait_for_statuses
from tests.support.fleet import Fleet
from tests.support.shop import order_placed, stock_received, unique

pytestmark = pytest.mark.integration


async def scrape(base: str) -> str:
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{base}/metrics")
    assert response.status_code == 200
    return response.text


def value(metrics: str, name: str, **labels: str) -> float:
    selector = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = re.escape(name + (f"{{{selector}}}" if labels else "")) + r" ([0-9.e+-]+)$"
    found = re.search(pattern, metrics, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


async def eventually(base: str, check: Callable[[str], bool], timeout: float = 30.0) -> str:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        metrics = await scrape(base)
        if check(metrics):
            return metrics
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(metrics[-3000:])
        await asyncio.sleep(0.3)


async def test_health_endpoints_answer_for_every_service(fleet: Fleet) -> None:
    async with httpx.AsyncClient() as client:
        for service in fleet.running:
            live = await client.get(f"{service.http}/health/live")
            ready = await client.get(f"{service.http}/health/ready")
            assert (live.status_code, ready.status_code) == (200, 200), service.name


async def test_domain_figures_move_as_events_flow(
    fleet: Fleet, shop: EdgeClient, status_changes: TopicTail
) -> None:
    allocator = fleet.first("allocator").http
    order_service = fleet.first("order").http
    notifier = fleet.first("notifier").http
    sku, first, second = unique("SKU"), unique("o"), unique("o")
    before = await scrape(allocator)
    messages_before = value(
        await scrape(notifier), "backorder_notifications_total", channel="email", outcome="sent"
    )

    # the gauges cover the SKUs with the most waiting units: this one must rank among them
    for order_id, quantity in ((first, 3), (second, 100_000)):
        await shop.publish(
            ORDERS_PLACED.name, key=order_id, value=order_placed(order_id, (sku, quantity))
        )
    await wait_for_statuses(status_changes, {first: "backordered", second: "backordered"})
    waiting = await eventually(
        allocator, lambda m: value(m, "backorder_queue_waiting_units", sku=sku) == 100_003
    )
    assert value(waiting, "backorder_queue_waiting_lines", sku=sku) == 2
    assert value(waiting, "backorder_queue_oldest_wait_seconds", sku=sku) > 0

    await shop.publish(STOCK_RECEIVED.name, key=sku, value=stock_received(unique("r"), sku, 4))
    await wait_for_statuses(status_changes, {first: "allocated", second: "partially_allocated"})
    after = await eventually(
        allocator, lambda m: value(m, "backorder_queue_waiting_units", sku=sku) == 99_999
    )
    assert (
        value(after, "backorder_units_filled_total") - value(before, "backorder_units_filled_total")
        >= 4
    )
    assert value(after, "backorder_line_decisions_total", status="allocated") > value(
        before, "backorder_line_decisions_total", status="allocated"
    )
    assert "faststream_received_messages_total" in after
    await eventually(
        notifier,
        lambda m: (
            value(m, "backorder_notifications_total", channel="email", outcome="sent")
            > messages_before
        ),
    )

    dead_before = value(
        await scrape(order_service), "backorder_dead_letters_total", topic="orders.placed"
    )
    await shop.publish(ORDERS_PLACED.name, key=unique("bad"), value=b"not json")
    await eventually(
        order_service,
        lambda m: (
            value(m, "backorder_dead_letters_total", topic="orders.placed") == dead_before + 1
        ),
    )
    assert "backorder_outbox_backlog" in await scrape(order_service)

"""Logs are JSON lines carrying the correlation id; tracing is switched on by configuration."""

import asyncio
import json
import secrets
from typing import Any

from shared.contracts.topics import ORDERS_PLACED
from shared.messaging.client import EdgeClient, TopicTail
from tests.support.checks import wait_for_statuses
from tests.support.fleet import Fleet
from tests.support.shop import order_placed, unique


async def test_json_logs_with_correlation_id_and_console_traces(
    fleet: Fleet, shop: EdgeClient, status_changes: TopicTail
) -> None:
    fleet.stop(fleet.first("notifier"))
    notifier = fleet.start("notifier", env={"BACKORDER_TRACING_EXPORTER": "console"})
    order = unique("o")
    await shop.publish(ORDERS_PLACED.name, key=order, value=order_placed(order, (unique("S"), 1)))
    await wait_for_statuses(status_changes, {order: "backordered"})

    for _ in range(100):
        output = notifier.output()
        if order in output and '"trace_id"' in output:
            break
        await asyncio.sleep(0.2)
    lines = [line for line in notifier.output().splitlines() if line.startswith("{")]
    records = [json.loads(line) for line in lines if '"level"' in line]
    assert records, notifier.output()[-2000:]
    assert all(r["service"] == "notifier" for r in records)
    assert any(r.get("correlation_id") == order for r in records), lines[-20:]
    spans = [json.loads(line) for line in lines if line.startswith('{"span"')]
    assert any(
        s["attributes"].get("messaging.destination_publish.name") == "orders.status-changed"
        and s["span"] == "orders.status-changed process"
        for s in spans
    ), lines[-5:]


async def test_one_trace_follows_an_order_through_every_outbox_hop_to_the_notifier(
    fleet: Fleet, shop: EdgeClient, status_changes: TopicTail
) -> None:
    traced = {"BACKORDER_TRACING_EXPORTER": "console"}
    restarted = {}
    for name in ("order", "allocator", "notifier"):
        fleet.stop(fleet.first(name))
        restarted[name] = fleet.start(name, env=traced)
    try:
        trace_id = secrets.token_hex(16)
        order = unique("o")
        await shop.publish(
            ORDERS_PLACED.name,
            key=order,
            value=order_placed(order, (unique("S"), 1)),
            headers=[("traceparent", f"00-{trace_id}-{secrets.token_hex(8)}-01".encode())],
        )
        await wait_for_statuses(status_changes, {order: "backordered"})
        record = next(r for r in status_changes.records if r.key == order.encode())
        traceparent = dict(record.headers)["traceparent"].decode()
        assert traceparent.split("-")[1] == trace_id

        def spans(service: str) -> list[dict[str, Any]]:
            lines = restarted[service].output().splitlines()
            return [json.loads(line) for line in lines if line.startswith('{"span"')]

        # Each message of a batch is handled in a span of its own trace; the batch's span
        # links to them.
        expected = {
            ("order", "orders.placed handle"),
            ("allocator", "allocation.commands handle"),
            ("order", "allocation.line-changed handle"),
            ("notifier", "orders.status-changed handle"),
        }

        def hops() -> set[tuple[str, str]]:
            return {
                (service, span["span"])
                for service in restarted
                for span in spans(service)
                if span["trace_id"] == trace_id
            }

        # Spans leave each process in batches, every few seconds.
        for _ in range(150):
            if expected <= hops():
                break
            await asyncio.sleep(0.2)
        assert expected <= hops(), hops()
    finally:
        for name, service in restarted.items():
            fleet.stop(service)
            fleet.start(name)


def test_each_service_logs_the_priority_tiers_in_force_when_it_starts(fleet: Fleet) -> None:
    """The services' default is one tier and the local stack configures two: each says which
    it runs with, so an order dead-lettered for its priority can be explained from the log."""
    for service in fleet.running:
        lines = service.output().splitlines()
        told = [
            json.loads(line)
            for line in lines
            if line.startswith("{") and "priority tiers in force" in line
        ]
        assert [(r["priority_tiers"], r["default_tier"], r["service"]) for r in told] == [
            (["vip", "standard"], "standard", service.name)
        ], lines[:10]
        assert told[0]["message"] == (
            "priority tiers in force: vip,standard (highest first; default tier standard)"
        )

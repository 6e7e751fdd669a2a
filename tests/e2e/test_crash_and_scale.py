"""Semantics 5-7 with real processes: two instances at once, and SIGKILL in the middle."""

import asyncio

import asyncpg
import pytest

from shared.messaging.client import EdgeClient, TopicTail
from tests.e2e.workload import Workload
from tests.support.fleet import Fleet

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]


async def test_two_instances_of_inventory_and_allocator_never_double_allocate(
    fleet: Fleet, shop: EdgeClient, status_changes: TopicTail, db: asyncpg.Connection
) -> None:
    extra = [fleet.start("inventory"), fleet.start("allocator")]
    try:
        work = Workload.new()
        await work.publish(shop, orders=60, seed=1)
        # one extra instance leaves mid-stream: its partitions move while messages flow
        fleet.stop(extra.pop())
        await work.publish(shop, orders=30, seed=2)
        await work.wait_settled(db)
        await work.check(db, status_changes)
    finally:
        for service in extra:
            fleet.stop(service)


async def _wait_for_progress(db: asyncpg.Connection, work: Workload, lines: int) -> None:
    while (
        await db.fetchval("select count(*) from allocation_line where sku = any($1)", work.skus)
        < lines
    ):
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("victim", ["allocator", "order", "inventory"])
async def test_a_consumer_killed_mid_stream_loses_and_doubles_nothing(
    fleet: Fleet,
    shop: EdgeClient,
    status_changes: TopicTail,
    db: asyncpg.Connection,
    victim: str,
) -> None:
    work = Workload.new()
    await work.publish(shop, orders=90, seed=3)
    await asyncio.wait_for(_wait_for_progress(db, work, 10), timeout=120)
    target = next(s for s in fleet.running if s.name == victim)
    fleet.kill(target)
    replacement = fleet.start(victim, wait=False)
    await work.publish(shop, orders=30, seed=4)
    fleet.wait_ready(replacement)
    await work.wait_settled(db)
    await work.check(db, status_changes)


async def test_a_named_instance_killed_and_started_again_under_its_name_loses_nothing(
    fleet: Fleet, shop: EdgeClient, status_changes: TopicTail, db: asyncpg.Connection
) -> None:
    """Static membership: the replacement takes the dead member's place in the group at once,
    with its partitions, and picks up at the offsets the dead one committed."""
    named = {"BACKORDER_INSTANCE_ID": "e2e-order-static"}
    target = fleet.start("order", env=named)
    work = Workload.new()
    await work.publish(shop, orders=90, seed=5)
    await asyncio.wait_for(_wait_for_progress(db, work, 10), timeout=120)
    fleet.kill(target)
    replacement = fleet.start("order", wait=False, env=named)
    try:
        await work.publish(shop, orders=30, seed=6)
        fleet.wait_ready(replacement)
        await work.wait_settled(db)
        await work.check(db, status_changes)
    finally:
        fleet.stop(replacement)

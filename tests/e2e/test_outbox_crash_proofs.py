"""Crash proofs of the outbox that sends from memory (shared/messaging/outbox.py), with real
processes: a service SIGKILLed at each step of a batch's way out, a broker paused, and a zombie
instance woken after its partitions moved. Each run ends with the workload's checks: every order
decided once, versions 1..n with no gap and none out of order, a repeated version only ever the
same event under the same id, no unit of stock lost or doubled, and the outbox drained."""

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
import pytest

from shared.faults import POINTS
from shared.messaging.client import EdgeClient, TopicTail
from tests.e2e.workload import Workload
from tests.support.fleet import ROOT, Fleet, ServiceProcess

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]

# The check for rows waiting too long would hide a recovery that failed to run.
NO_STALE_CHECK = {"BACKORDER_OUTBOX_STALE_AFTER_SECONDS": "3600"}
ORDERS = 240
# Published in slices, so the victim commits many batches and reaches its point mid-stream.
SLICES = 12


async def _publish_in_slices(work: Workload, shop: EdgeClient, *, seed: int) -> None:
    for n in range(SLICES):
        await work.publish(shop, orders=ORDERS // SLICES, seed=seed * 100 + n)
        await asyncio.sleep(0.15)


@contextmanager
def _in_place_of(fleet: Fleet, name: str) -> Iterator[None]:
    """Every instance of `name` stopped for the test (an earlier test may have left a second),
    so the test's own takes all partitions; a plain one back after."""
    for service in [s for s in fleet.running if s.name == name]:
        fleet.stop(service)
    try:
        yield
    finally:
        for service in [s for s in fleet.running if s.name == name]:
            fleet.stop(service)
        fleet.start(name)


def _wait_killed(service: ServiceProcess, timeout: float) -> None:
    try:
        service.process.wait(timeout=timeout)
    except Exception:
        raise AssertionError(f"{service.name} never reached its fault point") from None
    assert service.process.returncode == -signal.SIGKILL, service.output()[-3000:]


@pytest.mark.parametrize("victim", ["order", "allocator"])
@pytest.mark.parametrize("point", POINTS)
async def test_a_service_killed_at_each_step_of_the_way_out_loses_doubles_and_reorders_nothing(
    fleet: Fleet,
    shop: EdgeClient,
    status_changes: TopicTail,
    db: asyncpg.Connection,
    victim: str,
    point: str,
) -> None:
    # Static membership: the replacement takes the dead member's partitions at once. What the
    # dead one left must leave through recovery at the start, not the check for stale rows.
    name = {"BACKORDER_INSTANCE_ID": f"crash-{victim}", **NO_STALE_CHECK}
    with _in_place_of(fleet, victim):
        doomed = fleet.start(victim, env={**name, "BACKORDER_FAULT": f"{point}:4"})
        work = Workload.new()
        await _publish_in_slices(work, shop, seed=len(point))
        await asyncio.to_thread(_wait_killed, doomed, 60)
        fleet.running.remove(doomed)
        fleet.start(victim, env=name)
        await work.wait_settled(db)
        await work.check(db, status_changes)


def _kafka_pid() -> int:
    state = Path(os.environ.get("BACKORDER_STATE_DIR", ROOT / ".stack"))
    pid_file = state / "kafka" / "pid"
    assert pid_file.exists(), (
        f"the broker this test pauses is started by deploy/bin/stack: {pid_file}"
    )
    return int(pid_file.read_text().split()[0])


async def test_a_broker_paused_for_ten_seconds_loses_doubles_and_reorders_nothing(
    fleet: Fleet, shop: EdgeClient, status_changes: TopicTail, db: asyncpg.Connection
) -> None:
    """Sends wait out the pause; members whose sessions ran out meanwhile rejoin, and the
    partitions each is then given are drained of what others left before it sends anew."""
    kafka = _kafka_pid()
    work = Workload.new()
    await _publish_in_slices(work, shop, seed=7)
    os.kill(kafka, signal.SIGSTOP)
    try:
        await asyncio.sleep(10)
    finally:
        os.kill(kafka, signal.SIGCONT)
    await _publish_in_slices(work, shop, seed=8)
    await work.wait_settled(db, timeout=240)
    await work.check(db, status_changes)


async def test_a_zombie_instance_woken_after_its_partitions_moved_changes_nothing(
    fleet: Fleet, shop: EdgeClient, status_changes: TopicTail, db: asyncpg.Connection
) -> None:
    """Two order instances; one is stopped (SIGSTOP) past its session timeout while it holds
    work, the other takes its partitions, then the stopped one resumes with its batch half done:
    what it commits or sends late is either refused or a duplicate consumers drop."""
    second = fleet.start("order")
    try:
        work = Workload.new()
        await _publish_in_slices(work, shop, seed=9)
        zombie = fleet.first("order")
        zombie.process.send_signal(signal.SIGSTOP)
        stopped_at = time.monotonic()
        try:
            await _publish_in_slices(work, shop, seed=10)
            await asyncio.sleep(max(0.0, 15 - (time.monotonic() - stopped_at)))
        finally:
            zombie.process.send_signal(signal.SIGCONT)
        await _publish_in_slices(work, shop, seed=11)
        await work.wait_settled(db, timeout=240)
        await work.check(db, status_changes)
        assert zombie.alive and second.alive
    finally:
        fleet.stop(second)

"""Fixtures for tests against the real broker and database started by `deploy/bin/stack infra`.

Every test uses its own random order ids, receipt ids and SKUs, so nothing is cleaned up.
"""

import subprocess
import sys
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest
import pytest_asyncio

from shared.contracts.topics import ORDERS_STATUS_CHANGED
from shared.messaging.client import EdgeClient, TopicTail
from shared.settings import Settings
from tests.support.fleet import ROOT, Fleet

# Short waits so the tests can watch timers fire.
SERVICE_ENV = {
    "BACKORDER_CANCEL_WAIT_SECONDS": "8",
    "BACKORDER_CANCEL_SWEEP_INTERVAL_SECONDS": "0.5",
    "BACKORDER_OUTBOX_POLL_INTERVAL_SECONDS": "0.2",
    "BACKORDER_RETRY_MAX_BACKOFF_SECONDS": "2",
    "BACKORDER_METRICS_INTERVAL_SECONDS": "0.5",
    "PYTHONUNBUFFERED": "1",
}
SERVICES = ("order", "inventory", "allocator", "notifier")


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings()


@pytest.fixture(scope="session")
def migrated(settings: Settings) -> None:
    subprocess.run(
        [sys.executable, "-m", "alembic", "-c", "deploy/alembic.ini", "upgrade", "head"],
        cwd=ROOT,
        check=True,
    )
    subprocess.run([sys.executable, "-m", "services", "topics", "apply"], cwd=ROOT, check=True)


@pytest.fixture(scope="session")
def fleet(migrated: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """One process of each service for the whole session; tests may add or kill instances."""
    fleet = Fleet(log_dir=tmp_path_factory.mktemp("services"), env=SERVICE_ENV)
    try:
        for name in SERVICES:
            fleet.start(name, wait=False)
        for service in list(fleet.running):
            fleet.wait_ready(service)
        yield fleet
    finally:
        fleet.stop_all()


@pytest_asyncio.fixture(loop_scope="session")
async def shop(settings: Settings, fleet: Fleet) -> AsyncIterator[EdgeClient]:
    async with EdgeClient.from_settings(settings) as client:
        yield client


@pytest_asyncio.fixture(loop_scope="session")
async def status_changes(shop: EdgeClient) -> AsyncIterator[TopicTail]:
    """`orders.status-changed` from now on, as an upstream shop reads it."""
    tail = await shop.tail(ORDERS_STATUS_CHANGED.name)
    try:
        yield tail
    finally:
        await tail.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def db(settings: Settings, migrated: None) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(settings.database_url.replace("+asyncpg", ""))
    try:
        yield connection
    finally:
        await connection.close()

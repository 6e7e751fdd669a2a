"""Fixtures for tests against the real broker and database started by `deploy/bin/stack infra`.

Every test uses its own random order ids, receipt ids and SKUs, so nothing is cleaned up.
"""

import subprocess
import sys
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest
import pytest_asyncio

from services.testing import free_port
from shared.contracts.topics import ORDERS_STATUS_CHANGED
from shared.db.engine import SessionFactory, make_engine, make_session_factory
from shared.messaging.client import EdgeClient, TopicTail
from shared.settings import Settings
from tests.support.fleet import ROOT, Fleet
from tests.support.receivers import Mailbox, WebhookReceiver

# Short waits so the tests can watch timers fire.
SERVICE_ENV = {
    "BACKORDER_CANCEL_WAIT_SECONDS": "8",
    "BACKORDER_CANCEL_SWEEP_INTERVAL_SECONDS": "0.5",
    "BACKORDER_OUTBOX_POLL_INTERVAL_SECONDS": "0.2",
    "BACKORDER_RETRY_MAX_BACKOFF_SECONDS": "2",
    "BACKORDER_METRICS_INTERVAL_SECONDS": "0.5",
    "BACKORDER_EXPIRY_SWEEP_INTERVAL_SECONDS": "0.5",
    # Two tiers, no global aging: a test sets a short aging bound on its own SKU's policy.
    "BACKORDER_PRIORITY_TIERS": "vip,standard",
    "BACKORDER_AGING_SWEEP_INTERVAL_SECONDS": "0.5",
    "BACKORDER_NOTIFY_COALESCE_SECONDS": "1",
    "BACKORDER_NOTIFY_POLL_INTERVAL_SECONDS": "0.1",
    "BACKORDER_NOTIFY_RETRY_INITIAL_SECONDS": "0.2",
    "BACKORDER_NOTIFY_RETRY_MAX_SECONDS": "1",
    "BACKORDER_NOTIFY_MAX_ATTEMPTS": "8",
    "BACKORDER_NOTIFY_LEASE_SECONDS": "6",
    "BACKORDER_SMTP_SECURITY": "none",
    "BACKORDER_SMTP_TIMEOUT_SECONDS": "2",
    "BACKORDER_WEBHOOK_TIMEOUT_SECONDS": "2",
    "PYTHONUNBUFFERED": "1",
}
WEBHOOK_SECRET = b"test-webhook-secret-0123456789"
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
def mailbox() -> Iterator[Mailbox]:
    """The customers' mail server: a real SMTP server on loopback."""
    server = Mailbox(port=free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def webhooks() -> Iterator[WebhookReceiver]:
    """The shop's webhook endpoint: a real HTTP server that checks signatures."""
    receiver = WebhookReceiver(port=free_port(), secret=WEBHOOK_SECRET)
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop()


def notification_env(mailbox: Mailbox, webhooks: WebhookReceiver) -> dict[str, str]:
    return {
        "BACKORDER_SMTP_HOST": "127.0.0.1",
        "BACKORDER_SMTP_PORT": str(mailbox.port),
        "BACKORDER_WEBHOOK_URL": webhooks.url,
        "BACKORDER_WEBHOOK_SECRET": WEBHOOK_SECRET.decode(),
    }


@pytest.fixture(scope="session")
def fleet(
    migrated: None,
    mailbox: Mailbox,
    webhooks: WebhookReceiver,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Fleet]:
    """One process of each service for the whole session; tests may add or kill instances."""
    fleet = Fleet(
        log_dir=tmp_path_factory.mktemp("services"),
        env={**SERVICE_ENV, **notification_env(mailbox, webhooks)},
    )
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


@pytest_asyncio.fixture(loop_scope="session")
async def sessions(settings: Settings, migrated: None) -> AsyncIterator[SessionFactory]:
    """Sessions on the migrated database, for tests that run use cases in the test process."""
    engine = make_engine(settings)
    try:
        yield make_session_factory(engine)
    finally:
        await engine.dispose()

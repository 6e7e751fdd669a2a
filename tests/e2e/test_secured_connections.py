"""Kafka over SASL_SSL with SCRAM and PostgreSQL over TLS, selected by configuration: the whole
system runs against the project's own broker set up that way, and a wrong password is refused."""

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka.errors import KafkaError

from shared.contracts.topics import ORDERS_PLACED, ORDERS_STATUS_CHANGED, STOCK_RECEIVED
from shared.messaging.client import EdgeClient
from shared.settings import Settings
from tests.support.checks import wait_for_statuses
from tests.support.cli import backorder
from tests.support.fleet import ROOT, Fleet
from tests.support.shop import order_placed, stock_received, unique

SERVICES = ("order", "inventory", "allocator", "notifier")


@pytest.fixture(scope="module")
def secure_env(migrated: None) -> Iterator[dict[str, str]]:
    """Starts the secured broker; its address, CA and credentials come back as settings."""
    out = subprocess.run(
        [str(ROOT / "deploy/bin/stack"), "secure-kafka-up"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    env: dict[str, str] = json.loads(out.strip().splitlines()[-1])
    try:
        yield env
    finally:
        subprocess.run([str(ROOT / "deploy/bin/stack"), "secure-kafka-down"], cwd=ROOT, check=False)


def secure_settings(env: dict[str, str], **overrides: str) -> Settings:
    values: dict[str, Any] = {
        k.removeprefix("BACKORDER_").lower(): v
        for k, v in env.items()
        if k.startswith("BACKORDER_")
    }
    values["KAFKA_BOOTSTRAP_SERVERS"] = env["KAFKA_BOOTSTRAP_SERVERS"]
    values["kafka_sasl_password"] = password(env)
    values["DATABASE_URL"] = env["DATABASE_URL"]
    return Settings.model_validate({**values, **overrides})


def password(env: dict[str, str]) -> str:
    """The services read it from BACKORDER_SECRETS_DIR; the test's own client reads it too."""
    return (
        (Path(env["BACKORDER_SECRETS_DIR"]) / "BACKORDER_KAFKA_SASL_PASSWORD").read_text().strip()
    )


async def test_the_system_runs_over_scram_and_tls(
    secure_env: dict[str, str], tmp_path: Path
) -> None:
    settings = secure_settings(secure_env)
    assert settings.kafka_security_protocol == "SASL_SSL"
    assert settings.database_ssl == "verify-full"
    created = await backorder("topics", "apply", env=secure_env)
    assert "orders.placed" in created or "no changes" in created
    fleet = Fleet(log_dir=tmp_path, env={**secure_env, "BACKORDER_METRICS_INTERVAL_SECONDS": "1"})
    try:
        for name in SERVICES:
            fleet.start(name, wait=False)
        for service in list(fleet.running):
            fleet.wait_ready(service)
        async with EdgeClient.from_settings(settings) as shop:
            tail = await shop.tail(ORDERS_STATUS_CHANGED.name)
            try:
                sku, order = unique("SKU"), unique("o")
                await shop.publish(
                    ORDERS_PLACED.name, key=order, value=order_placed(order, (sku, 1))
                )
                await wait_for_statuses(tail, {order: "backordered"})
                await shop.publish(
                    STOCK_RECEIVED.name, key=sku, value=stock_received(unique("r"), sku, 1)
                )
                await wait_for_statuses(tail, {order: "allocated"})
            finally:
                await tail.stop()
        logs = "".join(service.output() for service in fleet.running)
        assert password(secure_env) not in logs
    finally:
        fleet.stop_all()


async def test_a_client_with_a_wrong_password_is_refused(
    secure_env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    wrong = secure_settings(secure_env, kafka_sasl_password="not-the-password")
    with pytest.raises(KafkaError):
        async with EdgeClient.from_settings(wrong) as shop:
            await shop.publish(ORDERS_PLACED.name, key="x", value={"order_id": "x"})
    # refused by authentication, not by an unreachable or misconfigured broker
    assert "SaslAuthenticationFailed" in caplog.text, caplog.text

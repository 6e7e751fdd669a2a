"""The runbook's kcat invocations, run as written: publish an order and stock with kcat only,
and read the order's status changes back with kcat only."""

import asyncio
import json
import shutil

import pytest

from shared.settings import Settings
from tests.support.fleet import Fleet
from tests.support.shop import order_placed, stock_received, unique

pytestmark = pytest.mark.integration


async def kcat(*args: str, stdin: bytes | None = None) -> str:
    binary = shutil.which("kcat")
    assert binary, "kcat is installed by deploy/bin/stack infra"
    process = await asyncio.create_subprocess_exec(
        binary,
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate(stdin)
    assert process.returncode == 0, err.decode()
    return out.decode()


async def test_an_operator_publishes_and_reads_back_with_kcat_alone(
    settings: Settings, fleet: Fleet
) -> None:
    broker = settings.kafka_bootstrap_servers
    sku, order = unique("SKU"), unique("o")
    # runbook: "publish a test order"
    await kcat(
        "-b", broker, "-P", "-t", "orders.placed", "-k", order,
        stdin=json.dumps(order_placed(order, (sku, 2))).encode(),
    )  # fmt: skip
    # runbook: "publish a stock receipt"
    await kcat(
        "-b", broker, "-P", "-t", "inventory.stock-received", "-k", sku,
        stdin=json.dumps(stock_received(unique("r"), sku, 2)).encode(),
    )  # fmt: skip

    # runbook: "read status changes for one order"
    statuses: list[str] = []
    for _ in range(120):
        out = await kcat(
            "-b", broker, "-C", "-t", "orders.status-changed", "-o", "beginning", "-e", "-q",
            "-f", "%k\\t%h\\t%s\\n",
        )  # fmt: skip
        events = [line.split("\t", 2) for line in out.splitlines() if line.startswith(order + "\t")]
        statuses = [json.loads(body)["status"] for _, _, body in events]
        if "allocated" in statuses:
            headers = events[-1][1]
            assert "event-type=OrderStatusChanged" in headers
            assert f"correlation-id={order}" in headers
            break
        await asyncio.sleep(0.5)
    assert statuses and statuses[-1] == "allocated", statuses

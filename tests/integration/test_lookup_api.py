"""The look-up API over real HTTP: answers, errors, and the bearer token check."""

import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import pytest_asyncio

from services.testing import free_port
from shared.contracts.topics import ORDERS_PLACED
from shared.messaging.client import EdgeClient, TopicTail
from tests.support.checks import wait_for_statuses
from tests.support.fleet import ROOT
from tests.support.shop import order_placed, unique

TOKEN = "test-token-" + unique("t")


@pytest.fixture(scope="module")
def api_url(migrated: None) -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "services", "api"],
        cwd=ROOT,
        env={**os.environ, "BACKORDER_API_TOKEN": TOKEN, "BACKORDER_API_PORT": str(port)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                httpx.get(f"{url}/openapi.json", timeout=1)
                break
            except httpx.TransportError:
                if process.poll() is not None:
                    raise RuntimeError("the API exited at start") from None
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest_asyncio.fixture(loop_scope="session")
async def client(api_url: str) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(base_url=api_url, headers=headers, timeout=10) as http:
        yield http


async def test_an_order_and_its_skus_queue_are_looked_up(
    client: httpx.AsyncClient, shop: EdgeClient, status_changes: TopicTail
) -> None:
    sku, order = unique("SKU"), unique("o")
    await shop.publish(ORDERS_PLACED.name, key=order, value=order_placed(order, (sku, 2)))
    await wait_for_statuses(status_changes, {order: "backordered"})

    found = await client.get(f"/orders/{order}")
    assert found.status_code == 200
    body = found.json()
    assert (body["status"], body["version"]) == ("backordered", 1)
    assert body["lines"][0] | {"eta": None, "reason": None} == {
        "line_id": "1", "sku": sku, "quantity": 2, "allocated": 0, "backordered": 2,
        "rejected": 0, "status": "backordered", "queue_position": 1, "eta": None, "reason": None,
    }  # fmt: skip

    queue = (await client.get(f"/skus/{sku}/queue")).json()
    assert [(q["position"], q["order_id"], q["waiting"]) for q in queue["queue"]] == [(1, order, 2)]
    assert queue["backorders"] == "allow"

    demand = await client.get("/reports/demand", params={"limit": 1000})
    assert demand.status_code == 200
    assert any(row["sku"] == sku and row["shortfall"] == 2 for row in demand.json())


async def test_unknown_ids_are_404_and_bad_parameters_422(client: httpx.AsyncClient) -> None:
    missing = await client.get(f"/orders/{unique('nobody')}")
    assert missing.status_code == 404
    assert "no order" in missing.json()["detail"]
    assert (await client.get(f"/skus/{unique('SKU')}/queue")).status_code == 404
    for bad in ("0", "1001", "many"):
        response = await client.get("/reports/demand", params={"limit": bad})
        assert response.status_code == 422, bad
        assert "Traceback" not in response.text


async def test_the_token_is_checked(api_url: str) -> None:
    async with httpx.AsyncClient(base_url=api_url) as anonymous:
        assert (await anonymous.get("/reports/demand")).status_code == 401
        wrong = await anonymous.get(
            "/reports/demand", headers={"Authorization": "Bearer not-the-token"}
        )
        assert wrong.status_code == 401
        assert wrong.headers["www-authenticate"] == "Bearer"
        openapi = (await anonymous.get("/openapi.json")).json()
    assert set(openapi["paths"]) == {"/orders/{order_id}", "/skus/{sku}/queue", "/reports/demand"}


async def test_probes_answer_without_a_token_and_show_nothing_else(api_url: str) -> None:
    async with httpx.AsyncClient(base_url=api_url) as probe:
        ready = await probe.get("/health/ready")
        live = await probe.get("/health/live")
        assert (ready.status_code, ready.text) == (200, "ready\n")
        assert (live.status_code, live.text) == (200, "ok\n")
        assert (await probe.get("/reports/demand")).status_code == 401

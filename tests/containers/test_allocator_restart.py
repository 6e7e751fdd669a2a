"""A crash of the allocator's container in the middle of a stream loses and doubles nothing."""

import asyncio
import json
import uuid
from datetime import UTC, datetime

import asyncpg
import httpx
from aiokafka import AIOKafkaProducer

from services.testing import BackorderSystem

ORDERS = 60


def placed(order_id: str, sku: str) -> bytes:
    order = {
        "order_id": order_id,
        "customer": {"id": order_id, "email": f"{order_id}@shop.example"},
        "lines": [{"line_id": "1", "sku": sku, "quantity": 1}],
        "placed_at": datetime.now(UTC).isoformat(),
    }
    return json.dumps(order).encode()


def received(receipt_id: str, sku: str, quantity: int) -> bytes:
    receipt = {
        "receipt_id": receipt_id,
        "sku": sku,
        "quantity": quantity,
        "received_at": datetime.now(UTC).isoformat(),
    }
    return json.dumps(receipt).encode()


async def until_lines_exist(backorder: BackorderSystem, sku: str) -> None:
    database = await asyncpg.connect(backorder.database_url.replace("+asyncpg", ""))
    try:
        async with asyncio.timeout(60):
            query = "select count(*) from allocation_line where sku = $1"
            while not await database.fetchval(query, sku):
                await asyncio.sleep(0.05)
    finally:
        await database.close()


async def test_orders_and_receipts_sent_around_an_allocator_kill_are_all_filled_once(
    backorder: BackorderSystem,
) -> None:
    run = uuid.uuid4().hex[:8]
    sku = f"RESTART-{run}"
    order_ids = [f"restart-{run}-{n:03}" for n in range(ORDERS)]
    producer = AIOKafkaProducer(bootstrap_servers=backorder.bootstrap_servers)
    await producer.start()
    try:
        for order_id in order_ids[: ORDERS // 2]:
            await producer.send("orders.placed", key=order_id.encode(), value=placed(order_id, sku))
        # Half the stock arrives while the first half of the orders is still being queued.
        await producer.send_and_wait(
            "inventory.stock-received", key=sku.encode(), value=received(f"r1-{run}", sku, 20)
        )
        # Killed as soon as it has queued the first lines: the rest of the first half, and all
        # that follows, it meets only after the restart.
        await until_lines_exist(backorder, sku)
        await asyncio.to_thread(backorder.stop_service, "allocator", kill=True)
        for order_id in order_ids[ORDERS // 2 :]:
            await producer.send("orders.placed", key=order_id.encode(), value=placed(order_id, sku))
        await producer.send_and_wait(
            "inventory.stock-received", key=sku.encode(), value=received(f"r2-{run}", sku, 25)
        )
        # A receipt the shop sends twice (its producer retried): counted once.
        await producer.send_and_wait(
            "inventory.stock-received", key=sku.encode(), value=received(f"r2-{run}", sku, 25)
        )
        await asyncio.to_thread(backorder.start_service, "allocator")
    finally:
        await producer.stop()

    expected = ["allocated"] * 45 + ["backordered"] * (ORDERS - 45)
    headers = {"Authorization": f"Bearer {backorder.api_token}"}
    async with httpx.AsyncClient(base_url=backorder.api_url, headers=headers) as api:

        async def statuses() -> list[str]:
            views = [(await api.get(f"/orders/{oid}")).json() for oid in order_ids]
            return sorted(str(view.get("status")) for view in views)

        async with asyncio.timeout(120):
            while await statuses() != expected:
                await asyncio.sleep(0.5)
        queue = (await api.get(f"/skus/{sku}/queue")).json()
    assert (queue["received_total"], queue["available"]) == (45, 0)
    assert [line["position"] for line in queue["queue"]] == list(range(1, ORDERS - 45 + 1))

    database = await asyncpg.connect(backorder.database_url.replace("+asyncpg", ""))
    try:
        lines = await database.fetch(
            "select order_id, allocated, waiting, seq from allocation_line where sku = $1", sku
        )
    finally:
        await database.close()
    assert sorted(line["order_id"] for line in lines) == order_ids  # none lost, none doubled
    assert sum(line["allocated"] for line in lines) == 45
    assert all(line["allocated"] + line["waiting"] == 1 for line in lines)
    # Filled strictly in arrival order, across the crash.
    filled = [line["seq"] for line in lines if line["allocated"]]
    waiting = [line["seq"] for line in lines if line["waiting"]]
    assert max(filled) < min(waiting)

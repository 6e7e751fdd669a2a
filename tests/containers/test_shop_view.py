"""What a shop's own integration test does with the helper: publish, then look the order up."""

import asyncio
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer

from services.testing import BackorderSystem


async def order_status(client: httpx.AsyncClient, order_id: str) -> str | None:
    response = await client.get(f"/orders/{order_id}")
    if response.status_code == 404:
        return None
    response.raise_for_status()
    status: str | None = response.json()["status"]
    return status


async def wait_for_status(client: httpx.AsyncClient, order_id: str, status: str) -> None:
    async with asyncio.timeout(90):
        while await order_status(client, order_id) != status:
            await asyncio.sleep(0.3)


async def publish(producer: AIOKafkaProducer, topic: str, key: str, value: dict[str, Any]) -> None:
    await producer.send_and_wait(topic, key=key.encode(), value=json.dumps(value).encode())


async def test_a_backordered_order_is_filled_when_stock_arrives(backorder: BackorderSystem) -> None:
    run = uuid.uuid4().hex[:8]
    order_id, sku = f"shop-order-{run}", f"SHOP-SKU-{run}"
    producer = AIOKafkaProducer(bootstrap_servers=backorder.bootstrap_servers)
    await producer.start()
    headers = {"Authorization": f"Bearer {backorder.api_token}"}
    try:
        async with httpx.AsyncClient(base_url=backorder.api_url, headers=headers) as api:
            await publish(
                producer,
                "orders.placed",
                order_id,
                {
                    "order_id": order_id,
                    "customer": {"id": "c-1", "email": "c1@shop.example"},
                    "lines": [{"line_id": "1", "sku": sku, "quantity": 2}],
                    "placed_at": datetime.now(UTC).isoformat(),
                },
            )
            await wait_for_status(api, order_id, "backordered")
            queue = (await api.get(f"/skus/{sku}/queue")).json()
            assert [line["order_id"] for line in queue["queue"]] == [order_id]

            await publish(
                producer,
                "inventory.stock-received",
                sku,
                {
                    "receipt_id": f"receipt-{run}",
                    "sku": sku,
                    "quantity": 2,
                    "received_at": datetime.now(UTC).isoformat(),
                },
            )
            await wait_for_status(api, order_id, "allocated")
            order = (await api.get(f"/orders/{order_id}")).json()
            assert [(line["allocated"], line["backordered"]) for line in order["lines"]] == [(2, 0)]
            assert (
                await api.get(f"/orders/{order_id}", headers={"Authorization": ""})
            ).status_code in {401, 403}
    finally:
        await producer.stop()

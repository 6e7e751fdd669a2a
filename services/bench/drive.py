"""What the benchmark does to the system and what it watches, through public topics only."""

import asyncio
import json
import random
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from shared.contracts.topics import (
    ORDERS_CANCEL_REQUESTED,
    ORDERS_PLACED,
    ORDERS_STATUS_CHANGED,
    SKU_POLICY,
    STOCK_RECEIVED,
)
from shared.messaging.topic_admin import partitions_of


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@dataclass
class Order:
    order_id: str
    lines: list[tuple[str, int]]  # (sku, quantity) per line, line ids "1", "2", ...

    def body(self) -> dict[str, Any]:
        return {
            "order_id": self.order_id,
            "customer": {"id": "c-" + self.order_id, "email": f"{self.order_id}@bench.example"},
            "lines": [
                {"line_id": str(i), "sku": sku, "quantity": quantity}
                for i, (sku, quantity) in enumerate(self.lines, start=1)
            ],
            "placed_at": datetime.now(UTC).isoformat(),
        }


def orders(count: int, skus: list[str], *, seed: int, max_lines: int = 3) -> list[Order]:
    rng = random.Random(seed)
    made = []
    for _ in range(count):
        chosen = rng.sample(skus, rng.randint(1, min(max_lines, len(skus))))
        made.append(Order(unique("bo"), [(sku, rng.randint(1, 3)) for sku in chosen]))
    return made


@dataclass
class Seen:
    """What the shop has read of one order on orders.status-changed."""

    first: float
    status: str
    # line id -> when it was first seen allocated
    allocated_at: dict[str, float] = field(default_factory=dict)


class Watcher:
    """Reads topics from their current end, in the background, noting when each key arrives."""

    def __init__(self, kafka: dict[str, Any], topic: str) -> None:
        self.topic = topic
        self._kafka = kafka
        self._consumer = AIOKafkaConsumer(**kafka, group_id=None, enable_auto_commit=False)
        self.orders: dict[str, Seen] = {}
        self.arrived: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._consumer.start()
        partitions = [
            TopicPartition(self.topic, p) for p in await partitions_of(self._kafka, self.topic)
        ]
        self._consumer.assign(partitions)
        for tp, offset in (await self._consumer.end_offsets(partitions)).items():
            self._consumer.seek(tp, offset)
        self._task = asyncio.create_task(self._read())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
        await self._consumer.stop()

    async def _read(self) -> None:
        while True:
            batches = await self._consumer.getmany(timeout_ms=50, max_records=5000)
            now = time.monotonic()
            for records in batches.values():
                for record in records:
                    key = record.key.decode() if record.key else ""
                    self.arrived.setdefault(key, now)
                    if self.topic == ORDERS_STATUS_CHANGED.name:
                        self._note_status(key, json.loads(record.value), now)

    def _note_status(self, order_id: str, picture: dict[str, Any], now: float) -> None:
        seen = self.orders.setdefault(order_id, Seen(first=now, status=picture["status"]))
        seen.status = picture["status"]
        for line in picture["lines"]:
            if line["status"] == "allocated":
                seen.allocated_at.setdefault(line["line_id"], now)

    async def until(
        self, done: Callable[[], bool], *, what: str, timeout: float, progress: Callable[[], str]
    ) -> None:
        deadline = time.monotonic() + timeout
        last_report = 0.0
        while not done():
            now = time.monotonic()
            if now > deadline:
                raise TimeoutError(f"{what}: not within {timeout:g}s ({progress()})")
            if now - last_report > 5:
                print(f"  ... {what}: {progress()}", flush=True)
                last_report = now
            await asyncio.sleep(0.05)


class Shop:
    """Publishes as an upstream shop does, without waiting for each message."""

    def __init__(self, kafka: dict[str, Any]) -> None:
        self._producer = AIOKafkaProducer(**kafka, acks="all", linger_ms=5)
        self.published: dict[str, float] = {}

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def send(self, topic: str, key: str, value: dict[str, Any]) -> None:
        self.published[key] = time.monotonic()
        await self._producer.send(topic, key=key.encode(), value=json.dumps(value).encode())

    async def flush(self) -> None:
        await self._producer.flush()

    async def place(self, placed: Iterable[Order], *, flush: bool = True) -> None:
        """`flush=False` leaves the records to the producer's own batching: a steady stream
        that waited for the broker's ack after every order could not offer its rate."""
        for order in placed:
            await self.send(ORDERS_PLACED.name, order.order_id, order.body())
        if flush:
            await self.flush()

    async def receive(self, sku: str, quantity: int) -> str:
        receipt = unique("br")
        body = {
            "receipt_id": receipt,
            "sku": sku,
            "quantity": quantity,
            "received_at": datetime.now(UTC).isoformat(),
        }
        await self.send(STOCK_RECEIVED.name, receipt, body)
        return receipt

    async def policy(self, sku: str, *, max_wait_seconds: float) -> None:
        body = {"sku": sku, "backorders": "allow", "max_wait": max_wait_seconds}
        await self.send(SKU_POLICY.name, sku, body)

    async def cancel(self, order_id: str) -> None:
        await self.send(ORDERS_CANCEL_REQUESTED.name, order_id, {"order_id": order_id})

    async def raw(self, topic: str, key: str) -> None:
        """A floor message: the key is its identity."""
        await self.send(topic, key, {"id": key})

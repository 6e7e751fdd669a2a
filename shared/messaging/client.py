"""A plain Kafka client for the system's edges: what an upstream shop publishes and reads back.

Used by the demo and by the tests; the services themselves never use it.
"""

import json
import time
import uuid
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, Self

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from shared.messaging.connection import kafka_options
from shared.messaging.topic_admin import partitions_of
from shared.settings import Settings


class EdgeClient:
    def __init__(self, kafka: dict[str, Any]) -> None:
        """`kafka`: aiokafka connection options, as `kafka_options(settings)` gives them."""
        self._kafka = kafka
        self._producer = AIOKafkaProducer(**kafka, acks="all")

    @classmethod
    def from_settings(cls, settings: Settings) -> "EdgeClient":
        return cls(kafka_options(settings))

    async def __aenter__(self) -> Self:
        await self._producer.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._producer.stop()

    async def publish(
        self,
        topic: str,
        *,
        key: str | None,
        value: dict[str, Any] | bytes | None,
        headers: Sequence[tuple[str, bytes]] = (),
        timestamp_ms: int | None = None,
    ) -> None:
        """Publishes JSON, raw bytes, or a tombstone (None); `timestamp_ms` overrides the
        record's create time, as a producer that sends late would."""
        body = value if value is None or isinstance(value, bytes) else json.dumps(value).encode()
        await self._producer.send_and_wait(
            topic,
            value=body,
            key=key.encode() if key else None,
            headers=list(headers),
            timestamp_ms=timestamp_ms,
        )

    async def tail(self, topic: str) -> "TopicTail":
        """Starts reading `topic` from its current end; call before publishing the cause."""
        tail = TopicTail(self._kafka, topic)
        await tail.start()
        return tail


class TopicTail:
    """Reads one topic from the end it had when started, without a consumer group."""

    def __init__(self, kafka: dict[str, Any], topic: str) -> None:
        self.topic = topic
        self._kafka = kafka
        self.records: list[Any] = []
        self._consumer = AIOKafkaConsumer(
            **kafka,
            group_id=None,
            enable_auto_commit=False,
            client_id=f"edge-{uuid.uuid4().hex[:8]}",
        )

    async def start(self) -> None:
        await self._consumer.start()
        partitions = await partitions_of(self._kafka, self.topic)
        assignment = [TopicPartition(self.topic, p) for p in partitions]
        self._consumer.assign(assignment)
        ends = await self._consumer.end_offsets(assignment)
        for tp, offset in ends.items():
            self._consumer.seek(tp, offset)

    async def stop(self) -> None:
        await self._consumer.stop()

    async def poll(self, seconds: float = 0.2) -> None:
        batches = await self._consumer.getmany(timeout_ms=int(seconds * 1000))
        for batch in batches.values():
            self.records.extend(batch)

    async def wait_for(
        self, done: Callable[[list[Any]], bool], *, timeout: float = 60.0
    ) -> list[Any]:
        """Polls until `done(records)` holds; raises TimeoutError with what was seen."""
        deadline = time.monotonic() + timeout
        while not done(self.records):
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{self.topic}: condition not met; saw {len(self.records)} records"
                )
            await self.poll()
        return self.records

    def values(self, *, key: str | None = None) -> list[dict[str, Any]]:
        return [
            json.loads(r.value)
            for r in self.records
            if key is None or (r.key is not None and r.key.decode() == key)
        ]

"""Dead-lettering: the original bytes and headers go to `<topic>.dlq` with the reason."""

import logging
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.structs import ConsumerRecord
from prometheus_client import Counter

from shared.contracts.headers import (
    DLQ_ORIGINAL_OFFSET,
    DLQ_ORIGINAL_PARTITION,
    DLQ_ORIGINAL_TOPIC,
    DLQ_REASON,
)
from shared.contracts.topics import DLQ_SUFFIX

log = logging.getLogger(__name__)


def dead_letter_headers(
    original: Sequence[tuple[str, bytes]], *, reason: str, topic: str, partition: int, offset: int
) -> list[tuple[str, bytes]]:
    return [
        *original,
        (DLQ_REASON, reason.encode()),
        (DLQ_ORIGINAL_TOPIC, topic.encode()),
        (DLQ_ORIGINAL_PARTITION, str(partition).encode()),
        (DLQ_ORIGINAL_OFFSET, str(offset).encode()),
    ]


class DeadLetters:
    def __init__(self, producer: AIOKafkaProducer, *, counter: Counter) -> None:
        self._producer = producer
        self._counter = counter

    async def send(self, record: "ConsumerRecord[bytes, bytes]", reason: str) -> None:
        log.warning(
            "dead-lettering %s[%s]@%s: %s", record.topic, record.partition, record.offset, reason
        )
        await self._producer.send_and_wait(
            record.topic + DLQ_SUFFIX,
            value=record.value,
            key=record.key,
            headers=dead_letter_headers(
                list(record.headers),
                reason=reason,
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
            ),
        )
        self._counter.labels(record.topic).inc()

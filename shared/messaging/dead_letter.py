"""Dead-lettering: the original bytes and headers go to `<topic>.dlq` with the reason.

A dead letter must itself be sendable, or the guard could never move past its record. A record
the consumers refuse as oversized, or one whose dead letter would outweigh what the dead-letter
topic takes (the input's record plus the `dlq-*` headers), keeps its first bytes only: the
value becomes an excerpt, marked `dlq-truncated` with the original's size and SHA-256. The
reason and the record's position (`dlq-original-topic`, `-partition`, `-offset`) always stay;
the full record is still at that position for as long as the input topic retains it.
"""

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer
from aiokafka.errors import MessageSizeTooLargeError, RecordListTooLargeError, RecordTooLargeError
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from aiokafka.structs import ConsumerRecord
from prometheus_client import Counter

from shared.contracts.headers import (
    DLQ_ORIGINAL_OFFSET,
    DLQ_ORIGINAL_PARTITION,
    DLQ_ORIGINAL_SHA256,
    DLQ_ORIGINAL_SIZE,
    DLQ_ORIGINAL_TOPIC,
    DLQ_REASON,
    DLQ_TRUNCATED,
)
from shared.contracts.topics import DLQ_SUFFIX, MAX_MESSAGE_BYTES, dead_letter_max_bytes

log = logging.getLogger(__name__)

# What a truncated dead letter keeps of the value (and of a key too long to keep whole).
EXCERPT_BYTES = 4096
# A reason longer than this is cut (reasons name the fault, they do not quote the input).
REASON_BYTES = 2000


@dataclass(frozen=True)
class DeadLetter:
    """A record as it goes to the dead-letter topic."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]

    @property
    def size(self) -> int:
        """What the producer counts against `max_request_size`, and at least what the broker
        counts against `max.message.bytes` (a batch of this one record)."""
        headers: list[tuple[str, bytes | None]] = list(self.headers)
        return int(DefaultRecordBatchBuilder.estimate_size_in_bytes(self.key, self.value, headers))

    @property
    def truncated(self) -> bool:
        return any(name == DLQ_TRUNCATED for name, _ in self.headers)


def dead_letter_headers(
    original: Sequence[tuple[str, bytes]], *, reason: str, topic: str, partition: int, offset: int
) -> list[tuple[str, bytes]]:
    return [
        *original,
        (DLQ_REASON, reason.encode()[:REASON_BYTES].decode(errors="ignore").encode()),
        (DLQ_ORIGINAL_TOPIC, topic.encode()),
        (DLQ_ORIGINAL_PARTITION, str(partition).encode()),
        (DLQ_ORIGINAL_OFFSET, str(offset).encode()),
    ]


def build_dead_letter(
    record: "ConsumerRecord[bytes, bytes]",
    reason: str,
    *,
    max_value_bytes: int,
    max_record_bytes: int,
) -> DeadLetter:
    """The dead letter of `record`: whole when its value is within `max_value_bytes` (what the
    consumers accept) and the letter within `max_record_bytes` (what the dead-letter topic and
    the producer take). Otherwise cut, in this order, until it fits: the value to an excerpt,
    then the original headers, then the key to an excerpt. What was cut is named in
    `dlq-truncated`; the reason and position are never cut."""
    value: bytes | None = record.value
    key: bytes | None = record.key
    original: list[tuple[str, bytes]] = [(name, v or b"") for name, v in record.headers]
    cut: list[str] = []

    def letter() -> DeadLetter:
        headers = dead_letter_headers(
            original,
            reason=reason,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
        )
        if cut:
            headers.append((DLQ_TRUNCATED, ",".join(cut).encode()))
        if "value" in cut and record.value is not None:
            headers.append((DLQ_ORIGINAL_SIZE, str(len(record.value)).encode()))
            headers.append((DLQ_ORIGINAL_SHA256, hashlib.sha256(record.value).hexdigest().encode()))
        return DeadLetter(record.topic + DLQ_SUFFIX, key, value, headers)

    excerpt = min(EXCERPT_BYTES, max_value_bytes)
    if value is not None and len(value) > max_value_bytes:
        value = value[:excerpt]
        cut.append("value")
    if letter().size > max_record_bytes and value is not None and len(value) > excerpt:
        value = value[:excerpt]
        cut.append("value")
    if letter().size > max_record_bytes and original:
        original = []
        cut.append("headers")
    if letter().size > max_record_bytes and key is not None and len(key) > EXCERPT_BYTES:
        key = key[:EXCERPT_BYTES]
        cut.append("key")
    return letter()


# The broker or the producer refused a record for its size.
_TOO_LARGE = (MessageSizeTooLargeError, RecordTooLargeError, RecordListTooLargeError)


class DeadLetters:
    def __init__(
        self,
        producer: AIOKafkaProducer,
        *,
        counter: Counter,
        max_value_bytes: int = MAX_MESSAGE_BYTES,
        max_record_bytes: int | None = None,
    ) -> None:
        """`max_value_bytes`: the consumers' limit (BACKORDER_MAX_MESSAGE_BYTES);
        `max_record_bytes`: what a dead letter may weigh, by default what the dead-letter
        topics declare. The producer must take that much (`make_producer` does)."""
        self._producer = producer
        self._counter = counter
        self._max_value_bytes = max_value_bytes
        self._max_record_bytes = max_record_bytes or dead_letter_max_bytes(max_value_bytes)

    async def send(self, record: "ConsumerRecord[bytes, bytes]", reason: str) -> None:
        letter = build_dead_letter(
            record,
            reason,
            max_value_bytes=self._max_value_bytes,
            max_record_bytes=self._max_record_bytes,
        )
        log.warning(
            "dead-lettering %s[%s]@%s%s: %s",
            record.topic,
            record.partition,
            record.offset,
            f" (truncated: {_header(letter, DLQ_TRUNCATED)})" if letter.truncated else "",
            reason,
        )
        try:
            await self._send(letter)
        except _TOO_LARGE as error:
            # The dead-letter topic takes less than it declares (its `max.message.bytes` was
            # lowered by hand): send the least that still says what and where.
            least = build_dead_letter(
                record, reason, max_value_bytes=self._max_value_bytes, max_record_bytes=0
            )
            log.error(
                "dead letter of %s[%s]@%s refused for its size (%s: %s): sending it cut to %s "
                "bytes",
                record.topic,
                record.partition,
                record.offset,
                type(error).__name__,
                error,
                least.size,
            )
            await self._send(least)
        self._counter.labels(record.topic).inc()

    async def _send(self, letter: DeadLetter) -> None:
        await self._producer.send_and_wait(
            letter.topic, value=letter.value, key=letter.key, headers=letter.headers
        )


def _header(letter: DeadLetter, name: str) -> str:
    return next((v.decode(errors="replace") for k, v in letter.headers if k == name), "")

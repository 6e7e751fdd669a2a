"""Dead letters for operators: list, show, and replay to the original topic, once."""

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col

from services.ops.tables import DeadLetterReplayRow
from shared.contracts.headers import (
    DLQ_ORIGINAL_OFFSET,
    DLQ_ORIGINAL_PARTITION,
    DLQ_ORIGINAL_SHA256,
    DLQ_ORIGINAL_SIZE,
    DLQ_ORIGINAL_TOPIC,
    DLQ_REASON,
    DLQ_TRUNCATED,
    REPLAYED_FROM,
)
from shared.contracts.topics import DLQ_SUFFIX
from shared.db.engine import SessionFactory
from shared.messaging.topic_admin import partitions_of


@dataclass(frozen=True)
class DeadLetter:
    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]

    @property
    def reason(self) -> str:
        return self.header(DLQ_REASON) or ""

    @property
    def original_topic(self) -> str:
        return self.header(DLQ_ORIGINAL_TOPIC) or self.topic.removesuffix(DLQ_SUFFIX)

    @property
    def address(self) -> str:
        return f"{self.topic}/{self.partition}/{self.offset}"

    @property
    def truncated(self) -> str | None:
        """What was cut from the record to fit the dead-letter topic ("value", "value,headers",
        ...), or None for a dead letter that carries its record whole."""
        return self.header(DLQ_TRUNCATED)

    @property
    def original_address(self) -> str:
        """Where the whole record is, for as long as its topic retains it."""
        partition = self.header(DLQ_ORIGINAL_PARTITION) or "?"
        return f"{self.original_topic}/{partition}/{self.header(DLQ_ORIGINAL_OFFSET) or '?'}"

    @property
    def value_summary(self) -> str:
        """The value's size, and for a truncated one the original's."""
        if self.truncated is None:
            return f"{len(self.value):,} bytes"
        return f"TRUNCATED ({self.truncated}): {self._kept()}"

    def truncation_notice(self) -> str | None:
        """For a truncated letter: what it holds, and where the whole record is."""
        if self.truncated is None:
            return None
        digest = self.header(DLQ_ORIGINAL_SHA256)
        return (
            f"TRUNCATED ({self.truncated}): the value below is an excerpt, {self._kept()}"
            + (f", sha256 {digest}" if digest else "")
            + f"; the whole record is at {self.original_address} while that topic retains it."
            " It cannot be replayed."
        )

    def _kept(self) -> str:
        original = self.header(DLQ_ORIGINAL_SIZE)
        of = f" of {int(original):,}" if original and original.isdigit() else ""
        return f"{len(self.value):,} bytes{of}"

    def header(self, name: str) -> str | None:
        return next((v.decode(errors="replace") for k, v in self.headers if k == name), None)

    def original_headers(self) -> list[tuple[str, bytes]]:
        return [(k, v) for k, v in self.headers if not k.startswith("dlq-") and k != REPLAYED_FROM]


async def read_all(
    kafka: dict[str, Any], dlq_topic: str, *, timeout: float = 120.0
) -> list[DeadLetter]:
    """Every dead letter still retained in `dlq_topic`, oldest first per partition."""
    consumer = AIOKafkaConsumer(**kafka, group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        assignment = [TopicPartition(dlq_topic, p) for p in await partitions_of(kafka, dlq_topic)]
        if not assignment:
            return []
        consumer.assign(assignment)
        await consumer.seek_to_beginning(*assignment)
        ends = await consumer.end_offsets(assignment)
        letters: list[DeadLetter] = []
        deadline = asyncio.get_running_loop().time() + timeout
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"{dlq_topic}: not read to its end within {timeout:g}s")
            batches = await consumer.getmany(timeout_ms=1000)
            for records in batches.values():
                letters.extend(
                    DeadLetter(
                        topic=r.topic,
                        partition=r.partition,
                        offset=r.offset,
                        timestamp_ms=r.timestamp,
                        key=r.key,
                        value=r.value,
                        headers=list(r.headers),
                    )
                    for r in records
                    if r.offset < ends[TopicPartition(r.topic, r.partition)]
                )
        return sorted(letters, key=lambda d: (d.partition, d.offset))
    finally:
        await consumer.stop()


@dataclass
class ReplayReport:
    replayed: list[str]
    skipped: list[str]
    # Truncated letters: only an excerpt of the record, which must not be sent as the record.
    refused: list[str] = field(default_factory=list)


async def replay(
    letters: list[DeadLetter],
    *,
    producer: AIOKafkaProducer,
    session_factory: SessionFactory,
    progress: Callable[[], None] = lambda: None,
) -> ReplayReport:
    """Sends each letter back to its original topic, marked with `replayed-from`.

    The ledger row and the send happen in one transaction that commits after the broker's ack:
    a second replay skips the letter. A crash between ack and commit can send it twice; the
    consumers' own dedupe (order id, receipt id, cancel state) then keeps the effect single.

    A truncated letter is refused (and not recorded as replayed): its value is an excerpt, and
    a fragment sent as the record would be dead-lettered again at best.
    """
    report = ReplayReport(replayed=[], skipped=[])
    for letter in letters:
        if letter.truncated is not None:
            report.refused.append(letter.address)
            progress()
            continue
        async with session_factory() as session, session.begin():
            claimed = await session.execute(
                insert(DeadLetterReplayRow)
                .values(dlq_topic=letter.topic, partition=letter.partition, offset=letter.offset)
                .on_conflict_do_nothing()
                .returning(col(DeadLetterReplayRow.offset))
            )
            if claimed.first() is None:
                report.skipped.append(letter.address)
            else:
                await producer.send_and_wait(
                    letter.original_topic,
                    value=letter.value,
                    key=letter.key,
                    headers=[*letter.original_headers(), (REPLAYED_FROM, letter.address.encode())],
                )
                report.replayed.append(letter.address)
        progress()
    return report

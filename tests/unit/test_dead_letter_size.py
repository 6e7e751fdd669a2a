"""Issue 21, defect 4: a dead letter always fits what the producer and the dead-letter topic take.

A record of 1,048,480 bytes, which the broker takes under its default `message.max.bytes`,
made a dead letter of 1,048,721 bytes with its headers: over the producer's
`max_request_size`, refused for ever, and the guard held the partition retrying it.
"""

import hashlib
from typing import Any

import pytest
from aiokafka.errors import MessageSizeTooLargeError
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from aiokafka.structs import ConsumerRecord
from prometheus_client import CollectorRegistry, Counter

from services.ops.dead_letters import DeadLetter as StoredDeadLetter
from services.ops.dead_letters import replay
from shared.contracts.headers import (
    DLQ_ORIGINAL_OFFSET,
    DLQ_ORIGINAL_PARTITION,
    DLQ_ORIGINAL_SHA256,
    DLQ_ORIGINAL_SIZE,
    DLQ_ORIGINAL_TOPIC,
    DLQ_REASON,
    DLQ_TRUNCATED,
)
from shared.contracts.topics import ALL_TOPICS, ORDERS_PLACED, all_specs, dead_letter_max_bytes
from shared.messaging.dead_letter import EXCERPT_BYTES, DeadLetters, build_dead_letter
from shared.messaging.producer import make_producer
from shared.settings import Settings
from tests.support.record_size import value_at_limit

PRODUCER_DEFAULT_MAX_REQUEST = 1_048_576


class SizeCheckingProducer:
    """Refuses a record over `max_request_size` exactly as aiokafka's producer does."""

    def __init__(self, max_request_size: int = PRODUCER_DEFAULT_MAX_REQUEST) -> None:
        self.max_request_size = max_request_size
        self.sent: list[dict[str, Any]] = []

    async def send_and_wait(
        self, topic: str, *, value: bytes | None, key: bytes | None, headers: list[Any]
    ) -> None:
        size = DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, headers)
        if size > self.max_request_size:
            raise MessageSizeTooLargeError(f"The message is {size} bytes when serialized")
        self.sent.append({"topic": topic, "key": key, "value": value, "headers": dict(headers)})


def record(
    value: bytes | None,
    *,
    key: bytes | None = b"o-1",
    headers: list[tuple[str, bytes]] | None = None,
) -> "ConsumerRecord[bytes, bytes]":
    return ConsumerRecord(
        topic=ORDERS_PLACED.name,
        partition=2,
        offset=417,
        timestamp=0,
        timestamp_type=0,
        key=key,
        value=value,
        checksum=None,
        serialized_key_size=len(key or b""),
        serialized_value_size=len(value or b""),
        headers=headers if headers is not None else [("x-trace", b"t1")],
    )


def dead_letters(producer: SizeCheckingProducer) -> DeadLetters:
    counter = Counter("dead_letters", "-", ["topic"], registry=CollectorRegistry())
    return DeadLetters(producer, counter=counter)


async def test_a_record_at_the_broker_default_limit_is_dead_lettered_with_an_excerpt() -> None:
    # The record: 1,048,480 bytes, taken by a broker with the default 1,048,588.
    value = b"{" + b"x" * 1_048_479
    producer = SizeCheckingProducer()
    await dead_letters(producer).send(record(value), "oversized message: 1048480 bytes")

    (sent,) = producer.sent
    headers = sent["headers"]
    assert sent["topic"] == ORDERS_PLACED.dlq
    assert sent["key"] == b"o-1"
    assert sent["value"] == value[:EXCERPT_BYTES]
    assert headers[DLQ_TRUNCATED] == b"value"
    assert headers[DLQ_ORIGINAL_SIZE] == b"1048480"
    assert headers[DLQ_ORIGINAL_SHA256] == hashlib.sha256(value).hexdigest().encode()
    assert headers[DLQ_REASON] == b"oversized message: 1048480 bytes"
    assert headers[DLQ_ORIGINAL_TOPIC] == ORDERS_PLACED.name.encode()
    assert (headers[DLQ_ORIGINAL_PARTITION], headers[DLQ_ORIGINAL_OFFSET]) == (b"2", b"417")
    assert headers["x-trace"] == b"t1"


def test_a_value_the_consumers_accept_is_dead_lettered_whole() -> None:
    value = b"x" * Settings().max_message_bytes
    letter = build_dead_letter(
        record(value), "schema violation", max_value_bytes=len(value), max_record_bytes=1 << 20
    )
    assert letter.value == value
    assert not letter.truncated
    assert dict(letter.headers)["x-trace"] == b"t1"
    assert DLQ_ORIGINAL_SIZE not in dict(letter.headers)


def test_an_oversized_value_never_goes_whole_even_where_it_would_fit() -> None:
    value = b"x" * 1001
    letter = build_dead_letter(
        record(value), "oversized", max_value_bytes=1000, max_record_bytes=1 << 20
    )
    assert letter.value == value[:1000]
    assert dict(letter.headers)[DLQ_TRUNCATED] == b"value"


def test_headers_too_large_for_the_dead_letter_topic_are_dropped_and_said_so() -> None:
    huge = [("x-blob", b"h" * 300_000)]
    letter = build_dead_letter(
        record(b"{}", headers=huge),
        "processing failed",
        max_value_bytes=262_144,
        max_record_bytes=dead_letter_max_bytes(262_144),
    )
    headers = dict(letter.headers)
    assert letter.value == b"{}"
    assert "x-blob" not in headers
    assert headers[DLQ_TRUNCATED] == b"headers"
    assert headers[DLQ_ORIGINAL_OFFSET] == b"417"
    assert letter.size <= dead_letter_max_bytes(262_144)


async def test_a_dead_letter_topic_smaller_than_declared_still_gets_the_reason_and_position() -> (
    None
):
    producer = SizeCheckingProducer(max_request_size=12_000)
    value = b"x" * 200_000
    await dead_letters(producer).send(record(value, headers=[("x-blob", b"h" * 20_000)]), "bad")
    (sent,) = producer.sent
    assert sent["value"] == value[:EXCERPT_BYTES]
    assert sent["headers"][DLQ_TRUNCATED] == b"value,headers"
    assert sent["headers"][DLQ_REASON] == b"bad"


def test_a_tombstone_is_dead_lettered_as_one() -> None:
    letter = build_dead_letter(record(None), "r", max_value_bytes=10, max_record_bytes=1 << 20)
    assert letter.value is None
    assert not letter.truncated


@pytest.mark.parametrize("topic", [t for t in ALL_TOPICS if t.upstream], ids=lambda t: t.name)
async def test_upstream_topics_take_no_more_than_the_consumers_and_their_dead_letters_fit(
    topic: Any,
) -> None:
    settings = Settings()
    specs = {s.name: s for s in all_specs()}
    limit = int(specs[topic.name].config["max.message.bytes"])
    assert limit == settings.max_message_bytes
    dlq_limit = int(specs[topic.dlq].config["max.message.bytes"])
    # The largest record the topic takes, with the largest reason a dead letter carries.
    key, headers = b"k" * 128, [("correlation-id", b"c" * 64)]
    value = value_at_limit(limit, key, headers)
    letter = build_dead_letter(
        record(value, key=key, headers=headers),
        "r" * 5000,
        max_value_bytes=settings.max_message_bytes,
        max_record_bytes=dead_letter_max_bytes(settings.max_message_bytes),
    )
    assert not letter.truncated
    assert letter.size <= dlq_limit
    assert make_producer(settings)._max_request_size >= dlq_limit


def test_internal_topics_declare_no_size_limit_and_every_dead_letter_topic_does() -> None:
    specs = {s.name: s for s in all_specs(max_message_bytes=100_000)}
    for topic in ALL_TOPICS:
        declared = specs[topic.name].config.get("max.message.bytes")
        assert declared == ("100000" if topic.upstream else None)
        assert specs[topic.dlq].config["max.message.bytes"] == str(dead_letter_max_bytes(100_000))


async def test_replay_refuses_a_truncated_dead_letter() -> None:
    letter = StoredDeadLetter(
        topic=ORDERS_PLACED.dlq,
        partition=2,
        offset=5,
        timestamp_ms=0,
        key=b"o-1",
        value=b"x" * EXCERPT_BYTES,
        headers=[
            (DLQ_REASON, b"oversized message"),
            (DLQ_ORIGINAL_TOPIC, ORDERS_PLACED.name.encode()),
            (DLQ_ORIGINAL_PARTITION, b"2"),
            (DLQ_ORIGINAL_OFFSET, b"417"),
            (DLQ_TRUNCATED, b"value"),
            (DLQ_ORIGINAL_SIZE, b"1048480"),
        ],
    )

    def no_session() -> Any:
        raise AssertionError("a truncated letter is neither sent nor recorded")

    producer = SizeCheckingProducer()
    report = await replay([letter], producer=producer, session_factory=no_session)  # type: ignore[arg-type]
    assert (report.replayed, report.skipped, report.refused) == ([], [], [letter.address])
    assert producer.sent == []
    assert letter.value_summary == "TRUNCATED (value): 4,096 bytes of 1,048,480"
    notice = letter.truncation_notice()
    assert notice is not None
    assert "orders.placed/2/417" in notice
    assert "cannot be replayed" in notice

"""Issue 21, defect 4: a record as large as the input topic takes must not stop the intake.

A record at the broker's limit used to make a dead letter too large for the producer; the guard
retried it for ever and held the order service's partition, across restarts. Now every dead
letter fits its topic, an oversized value going as an excerpt with its size and SHA-256, and the
orders behind it flow.
"""

import hashlib
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import MessageSizeTooLargeError

from shared.contracts.headers import (
    DLQ_ORIGINAL_OFFSET,
    DLQ_ORIGINAL_PARTITION,
    DLQ_ORIGINAL_SHA256,
    DLQ_ORIGINAL_SIZE,
    DLQ_ORIGINAL_TOPIC,
    DLQ_REASON,
    DLQ_TRUNCATED,
)
from shared.contracts.topics import ORDERS_PLACED
from shared.messaging.client import EdgeClient, TopicTail
from shared.messaging.connection import kafka_options
from shared.messaging.dead_letter import EXCERPT_BYTES
from shared.settings import Settings
from tests.support.checks import wait_for_statuses
from tests.support.record_size import batch_bytes, value_at_limit
from tests.support.shop import order_placed, unique

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


async def topic_limit(settings: Settings, topic: str) -> int:
    """The `max.message.bytes` the cluster applies to `topic` (declared, or the broker's)."""
    admin = AIOKafkaAdminClient(**kafka_options(settings))
    await admin.start()
    try:
        (response,) = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic, {"max.message.bytes": None})]
        )
        (resource,) = response.to_object()["resources"]
        (entry,) = resource["config_entries"]
        return int(entry["config_value"])
    finally:
        await admin.close()


@pytest_asyncio.fixture(loop_scope="session")
async def big_producer(settings: Settings, shop: EdgeClient) -> AsyncIterator[AIOKafkaProducer]:
    """An upstream producer that lets the broker, not itself, decide what is too large."""
    producer = AIOKafkaProducer(
        **kafka_options(settings), acks="all", max_request_size=4 << 20, compression_type="gzip"
    )
    await producer.start()
    try:
        yield producer
    finally:
        await producer.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def dead_letters(shop: EdgeClient) -> AsyncIterator[TopicTail]:
    tail = await shop.tail(ORDERS_PLACED.dlq)
    try:
        yield tail
    finally:
        await tail.stop()


async def dead_letter_of(tail: TopicTail, key: bytes) -> Any:
    await tail.wait_for(lambda records: any(r.key == key for r in records), timeout=60)
    return next(r for r in tail.records if r.key == key)


async def test_a_record_at_the_topics_limit_is_dead_lettered_and_the_next_order_flows(
    settings: Settings,
    shop: EdgeClient,
    status_changes: TopicTail,
    dead_letters: TopicTail,
) -> None:
    limit = await topic_limit(settings, ORDERS_PLACED.name)
    order_id = unique("at-limit")
    key, headers = order_id.encode(), [("x-trace", b"t1")]
    value = b'{"order_id": "' + value_at_limit(limit - 16, key, headers) + b'"}'
    assert batch_bytes(key, value, headers) == limit
    producer = AIOKafkaProducer(**kafka_options(settings), acks="all", max_request_size=4 << 20)
    await producer.start()
    try:
        # One byte more and the broker refuses it: this record is at the topic's limit.
        with pytest.raises(MessageSizeTooLargeError):
            await producer.send_and_wait(
                ORDERS_PLACED.name, key=key, value=value + b" ", headers=headers
            )
        sent = await producer.send_and_wait(
            ORDERS_PLACED.name, key=key, value=value, headers=headers
        )
    finally:
        await producer.stop()
    # The same key, so the same partition: the order behind it must still flow.
    good = order_id + "-good"
    await shop.publish(ORDERS_PLACED.name, key=order_id, value=order_placed(good, (unique("S"), 1)))

    letter = await dead_letter_of(dead_letters, key)
    found = dict(letter.headers)
    assert found[DLQ_ORIGINAL_TOPIC] == ORDERS_PLACED.name.encode()
    assert found[DLQ_ORIGINAL_PARTITION] == str(sent.partition).encode()
    assert found[DLQ_ORIGINAL_OFFSET] == str(sent.offset).encode()
    assert found["x-trace"] == b"t1"
    if len(value) > settings.max_message_bytes:
        # The topic takes more than the consumers (a cluster whose topics predate the limit).
        assert b"oversized message" in found[DLQ_REASON]
        assert letter.value == value[:EXCERPT_BYTES]
        assert found[DLQ_TRUNCATED] == b"value"
        assert found[DLQ_ORIGINAL_SIZE] == str(len(value)).encode()
    else:
        # The topic takes what the consumers take: the record is carried whole.
        assert b"schema violation" in found[DLQ_REASON]
        assert letter.value == value
        assert DLQ_TRUNCATED not in found
    await wait_for_statuses(status_changes, {good: "backordered"})


async def test_an_oversized_record_the_topic_takes_compressed_goes_as_an_excerpt(
    settings: Settings,
    shop: EdgeClient,
    status_changes: TopicTail,
    dead_letters: TopicTail,
    big_producer: AIOKafkaProducer,
) -> None:
    """The broker bounds a batch after compression, so a value far beyond the consumers'
    limit can still arrive: the issue's 1,048,480 bytes, gzipped to a few KiB."""
    order_id = unique("huge")
    body = order_placed(order_id, ("SKU", 1))
    body["customer"]["name"] = ""
    padding = 1_048_480 - len(json.dumps(body).encode())
    body["customer"]["name"] = "x" * padding
    value = json.dumps(body).encode()
    assert len(value) == 1_048_480
    sent = await big_producer.send_and_wait(
        ORDERS_PLACED.name, key=order_id.encode(), value=value, headers=[("x-trace", b"t2")]
    )
    good = order_id + "-good"
    await shop.publish(ORDERS_PLACED.name, key=order_id, value=order_placed(good, (unique("S"), 1)))

    letter = await dead_letter_of(dead_letters, order_id.encode())
    found = dict(letter.headers)
    assert found[DLQ_REASON] == (
        f"oversized message: {len(value)} bytes, limit {settings.max_message_bytes}".encode()
    )
    assert found[DLQ_ORIGINAL_OFFSET] == str(sent.offset).encode()
    assert found[DLQ_TRUNCATED] == b"value"
    assert found[DLQ_ORIGINAL_SIZE] == b"1048480"
    assert found[DLQ_ORIGINAL_SHA256] == hashlib.sha256(value).hexdigest().encode()
    assert letter.value == value[:EXCERPT_BYTES]
    assert found["x-trace"] == b"t2"
    await wait_for_statuses(status_changes, {good: "backordered"})

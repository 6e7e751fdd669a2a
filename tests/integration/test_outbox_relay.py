"""The outbox relay against the real broker: a row the broker refuses for good never blocks the
rows behind it; it is parked with its reason, counted, and shown to operators."""

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest_asyncio
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from prometheus_client import CollectorRegistry, Counter

from shared.db.engine import make_engine, make_session_factory
from shared.db.unit_of_work import UnitOfWork
from shared.messaging.client import EdgeClient, TopicTail
from shared.messaging.connection import kafka_options
from shared.messaging.outbox_relay import OutboxRelay
from shared.messaging.producer import make_producer
from shared.settings import Settings
from tests.support.cli import backorder
from tests.support.shop import unique


@pytest_asyncio.fixture(loop_scope="session")
async def small_topic(settings: Settings, migrated: None) -> AsyncIterator[str]:
    """A topic whose broker-side limit is far below the producer's: the broker refuses."""
    name = unique("relay-small")
    admin = AIOKafkaAdminClient(**kafka_options(settings))
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(name, 1, 1, topic_configs={"max.message.bytes": "2048"})]
        )
        await asyncio.sleep(1.0)
        yield name
    finally:
        await admin.delete_topics([name])
        await admin.close()


async def test_a_row_the_broker_refuses_is_parked_and_the_rows_behind_it_leave(
    settings: Settings, shop: EdgeClient, db: asyncpg.Connection, small_topic: str
) -> None:
    source = unique("relay-test")
    engine = make_engine(settings)
    sessions = make_session_factory(engine)
    tail: TopicTail = await shop.tail(small_topic)
    registry = CollectorRegistry()
    parked = Counter("parked", "parked rows", ["topic"], registry=registry)
    relay = OutboxRelay(
        session_factory=sessions,
        producer_factory=lambda: make_producer(settings),
        source=source,
        batch_size=10,
        poll_interval=0.1,
        parked=parked,
    )
    # One partition: a culprit larger than a producer batch (16 KiB) goes alone, and the
    # batches after it fail on the producer's sequence, which the refusal put out of step.
    rows = [
        (b"first", b"x" * 100),
        (b"too-big-for-the-producer", b"x" * 2_000_000),
        (b"too-big-for-the-broker", b"x" * 20_000),
        (b"after-1", b"y" * 100),
        (b"after-2", b"y" * 1_500),
        (b"last", b"y" * 100),
    ]
    try:
        async with UnitOfWork(sessions, source=source) as uow:
            for key, value in rows:
                uow.publish_raw(topic=small_topic, key=key, value=value, headers=[])
            await uow.commit()
        assert await asyncio.wait_for(relay.relay_once(), 30) == 6
        await tail.wait_for(lambda records: len(records) >= 4, timeout=30)
        await tail.poll(1.0)
        # in order, each once: nothing that left before the culprit is sent again
        assert [r.key for r in tail.records] == [b"first", b"after-1", b"after-2", b"last"]
        assert await relay.relay_once() == 0  # nothing is retried: the batch is done
        left = await db.fetchval("select count(*) from outbox_message where source = $1", source)
        assert left == 0
    finally:
        await tail.stop()
        await relay.close()
        await engine.dispose()
        # Left behind, a failed run's rows would count as every service's backlog.
        await db.execute("delete from outbox_message where source = $1", source)

    kept = await db.fetch(
        "select key, reason, length(value) as size from outbox_parked"
        " where source = $1 order by id",
        source,
    )
    assert [(row["key"], row["size"]) for row in kept] == [
        (b"too-big-for-the-producer", 2_000_000),
        (b"too-big-for-the-broker", 20_000),
    ]
    assert all("MessageSizeTooLarge" in row["reason"] for row in kept), kept
    assert registry.get_sample_value("parked_total", {"topic": small_topic}) == 2
    shown = await backorder("outbox", "parked", "--source", source)
    assert "too-big-for-the-producer" in shown and "MessageSizeTooLarge" in shown

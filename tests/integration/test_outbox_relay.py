"""The outbox against the real broker: a row the broker refuses for good never blocks the rows
behind it, whether the relay or the send from memory met it first; it is parked with its reason,
counted, and shown to operators. And a process never sends for a key ahead of what another
process committed for that key earlier and left unsent."""

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg
import pytest
import pytest_asyncio
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from prometheus_client import CollectorRegistry, Counter

from shared.db.engine import SessionFactory, make_engine, make_session_factory
from shared.db.unit_of_work import UnitOfWork
from shared.messaging.client import EdgeClient, TopicTail
from shared.messaging.connection import kafka_options
from shared.messaging.outbox import Outbox
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
        taken = await asyncio.wait_for(relay.relay_once(), 30)
        assert taken is not None and len(taken) == 6
        await tail.wait_for(lambda records: len(records) >= 4, timeout=30)
        await tail.poll(1.0)
        # in order, each once: nothing that left before the culprit is sent again
        assert [r.key for r in tail.records] == [b"first", b"after-1", b"after-2", b"last"]
        assert await relay.relay_once() == []  # nothing is retried: the batch is done
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


@dataclass
class _Process:
    """One process's way out, on its own source: `commit` as its handlers would."""

    sessions: SessionFactory
    source: str
    topic: str
    tail: TopicTail
    outbox: Outbox

    async def commit(self, *rows: tuple[bytes, bytes], alone: bool = False) -> None:
        """`alone`: committed without this outbox, as another process would, left unsent."""
        outbox = None if alone else self.outbox
        async with UnitOfWork(self.sessions, source=self.source, outbox=outbox) as uow:
            for key, value in rows:
                uow.publish_raw(topic=self.topic, key=key, value=value, headers=[])
            await uow.commit()


@asynccontextmanager
async def _process(
    settings: Settings, shop: EdgeClient, db: asyncpg.Connection, topic: str
) -> AsyncIterator[_Process]:
    source = unique("outbox-test")
    engine = make_engine(settings)
    sessions = make_session_factory(engine)
    relay = OutboxRelay(
        session_factory=sessions,
        producer_factory=lambda: make_producer(settings),
        source=source,
        batch_size=10,
    )
    # No periodic check runs here: what leaves, leaves from memory or through recovery.
    outbox = Outbox(relay=relay, batch_size=10, poll_interval=3600, stale_after=3600)
    tail = await shop.tail(topic)
    try:
        yield _Process(sessions, source, topic, tail, outbox)
    finally:
        await tail.stop()
        await relay.close()
        await engine.dispose()
        await db.execute("delete from outbox_message where source = $1", source)


async def test_a_row_refused_when_sent_from_memory_is_parked_and_the_rows_behind_it_leave(
    settings: Settings,
    shop: EdgeClient,
    db: asyncpg.Connection,
    small_topic: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with _process(settings, shop, db, small_topic) as process:
        # The first commit of a process recovers; the second is sent from memory.
        await process.commit((b"start", b"s"))
        with caplog.at_level(logging.WARNING, logger="shared.messaging.outbox"):
            await process.commit(
                (b"before", b"x" * 100), (b"too-big", b"x" * 20_000), (b"after", b"y" * 100)
            )
        assert "the recovery relay sends them" in caplog.text
        await process.commit((b"later", b"z"))
        tail = process.tail
        await tail.wait_for(lambda records: len(records) >= 4, timeout=30)
        await tail.poll(1.0)
        keys = [r.key for r in tail.records]
        # Whatever left twice, left again in order, and nothing overtook the refused batch.
        assert [k for n, k in enumerate(keys) if k not in keys[:n]] == [
            b"start", b"before", b"after", b"later",
        ]  # fmt: skip
        parked = await db.fetch("select key from outbox_parked where source = $1", process.source)
        assert [row["key"] for row in parked] == [b"too-big"]


async def test_rows_another_process_left_for_a_key_leave_before_this_ones(
    settings: Settings, shop: EdgeClient, db: asyncpg.Connection, small_topic: str
) -> None:
    """Another instance committed an event for key k and has not sent it yet (it was stopped
    between its commit and its send, or its send waits on the broker): this process's next event
    for k must not overtake it."""
    async with _process(settings, shop, db, small_topic) as process:
        await process.commit((b"start", b"s"))
        await process.commit((b"k", b"v1"), alone=True)
        await process.commit((b"k", b"v2"))
        await process.tail.wait_for(lambda records: len(records) >= 3, timeout=30)
        assert [r.value for r in process.tail.records if r.key == b"k"] == [b"v1", b"v2"]

"""The floor: the same I/O as the system, done plainly, through as many hops.

Each hop is its own process: aiokafka `getmany`, then per batch one asyncpg transaction with an
inbox row per message (ON CONFLICT DO NOTHING: the dedupe) and one state upsert per message,
the messages produced to the next topic, and the offsets committed after that. Three hops chain
`bench.floor.0` to `bench.floor.3`, like orders.placed -> allocation.commands ->
allocation.line-changed -> orders.status-changed.

    python -m services.bench.floor HOP    # runs hop HOP (1-3) until SIGTERM
"""

import asyncio
import contextlib
import signal
import sys
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from shared.messaging.connection import kafka_options
from shared.messaging.topic_admin import partitions_of
from shared.settings import get_settings

HOPS = 3
TOPICS = [f"bench.floor.{n}" for n in range(HOPS + 1)]
PARTITIONS = 3

_SCHEMA = """
create table if not exists bench_floor_inbox (hop int, id text, primary key (hop, id));
create table if not exists bench_floor_state (key text primary key, n bigint not null)
"""


def dsn() -> str:
    return get_settings().database_url.replace("+asyncpg", "")


async def prepare(kafka: dict[str, Any]) -> None:
    """The floor's topics and tables, created once."""
    admin = AIOKafkaAdminClient(**kafka)
    await admin.start()
    try:
        for topic in TOPICS:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
    finally:
        await admin.close()
    # A consumer that subscribes before its topic is visible waits for the next metadata
    # refresh (minutes): start the hops only once every topic is.
    for topic in TOPICS:
        for _ in range(100):
            if len(await partitions_of(kafka, topic)) == PARTITIONS:
                break
            await asyncio.sleep(0.2)
    connection = await asyncpg.connect(dsn(), ssl=False)
    try:
        await connection.execute(_SCHEMA)
    finally:
        await connection.close()


async def run_hop(hop: int, kafka: dict[str, Any], stop: asyncio.Event) -> None:
    consumer = AIOKafkaConsumer(
        TOPICS[hop - 1],
        **kafka,
        group_id=f"bench-floor-{hop}",
        enable_auto_commit=False,
        auto_offset_reset="latest",
        max_poll_records=1000,
    )
    producer = AIOKafkaProducer(**kafka, enable_idempotence=True, acks="all", linger_ms=5)
    pool = await asyncpg.create_pool(dsn(), ssl=False, min_size=1, max_size=2)
    await consumer.start()
    await producer.start()
    try:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=100, max_records=1000)
            records = [record for batch in batches.values() for record in batch]
            if not records:
                continue
            ids = [record.key.decode() for record in records if record.key]
            async with pool.acquire() as connection, connection.transaction():
                await connection.execute(
                    "insert into bench_floor_inbox (hop, id)"
                    " select $1, unnest($2::text[]) on conflict do nothing",
                    hop,
                    ids,
                )
                await connection.execute(
                    "insert into bench_floor_state (key, n) select unnest($1::text[]), 1"
                    " on conflict (key) do update set n = bench_floor_state.n + 1",
                    ids,
                )
            sent = [
                await producer.send(TOPICS[hop], key=r.key, value=r.value, headers=r.headers)
                for r in records
            ]
            await asyncio.gather(*sent)
            await consumer.commit()
    finally:
        await consumer.stop()
        await producer.stop()
        await pool.close()


async def _main(hop: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await run_hop(hop, kafka_options(get_settings()), stop)


if __name__ == "__main__":
    asyncio.run(_main(int(sys.argv[1])))

"""How far a consumer group has read a topic, as a time: every record published before it has
been handled. Measured on the broker's offsets, not on how long a message has waited here, so a
consumer that lags behind after a restart is not taken for one that has seen everything."""

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from shared.messaging.topic_admin import partitions_of


async def read_until(
    kafka: dict[str, Any], *, group: str, topic: str, handled_ms: Mapping[int, int], now: datetime
) -> datetime | None:
    """`now` when the group has committed up to the end of every partition; else the oldest
    timestamp of the last record handled on a partition it has not caught up with (from
    `handled_ms`); None when it is behind on a partition it has handled nothing of."""
    partitions = [TopicPartition(topic, p) for p in await partitions_of(kafka, topic)]
    admin = AIOKafkaAdminClient(**kafka)
    consumer = AIOKafkaConsumer(**kafka, group_id=None, enable_auto_commit=False)
    try:
        await admin.start()
        committed = await admin.list_consumer_group_offsets(group, partitions=partitions)
        await consumer.start()
        starts = await consumer.beginning_offsets(partitions)
        ends = await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()
        await admin.close()
    times = []
    for tp in partitions:
        done = committed.get(tp)
        position = done.offset if done is not None and done.offset >= 0 else starts[tp]
        if position >= ends[tp]:
            times.append(now)
        elif tp.partition in handled_ms:
            times.append(datetime.fromtimestamp(handled_ms[tp.partition] / 1000, UTC))
        else:
            return None
    return min(times, default=now)

"""How far behind each consumer group of the project is: per topic and partition, the offset it
has committed, the partition's end offset and the records in between.

A group that has committed nothing on a partition starts there from the earliest retained
record (the subscribers' `auto_offset_reset="earliest"`), as does one whose commit has fallen
behind retention: its lag counts every retained record from there, the whole topic for a group
that never committed."""

from collections.abc import Iterable, Sequence
from types import TracebackType
from typing import Any, Self

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from pydantic import BaseModel

from shared.contracts.topics import ALL_TOPICS
from shared.messaging.subscriptions import group_id


class PartitionLag(BaseModel):
    partition: int
    committed: int | None  # None: the group has committed nothing on this partition
    end: int
    lag: int


class TopicLag(BaseModel):
    topic: str
    partitions: list[PartitionLag]
    lag: int

    @property
    def committed(self) -> bool:
        return any(p.committed is not None for p in self.partitions)


class GroupLag(BaseModel):
    group: str
    topics: list[TopicLag]
    lag: int


def consumed_topics(service: str) -> list[str]:
    """The topics a service of the project reads in its consumer group, as declared."""
    return [topic.name for topic in ALL_TOPICS if service in topic.consumers]


def project_groups(services: Iterable[str]) -> dict[str, list[str]]:
    """Each service's consumer group and the topics it reads, for services that read any."""
    return {group_id(s): topics for s in services if (topics := consumed_topics(s))}


def partition_lag(partition: int, *, committed: int | None, start: int, end: int) -> PartitionLag:
    position = start if committed is None else max(committed, start)
    return PartitionLag(
        partition=partition, committed=committed, end=end, lag=max(end - position, 0)
    )


def group_lag(group: str, partitions: Sequence[tuple[str, PartitionLag]]) -> GroupLag:
    """A group's lag from its partitions' (topic, lag) pairs: summed per topic and in all."""
    by_topic: dict[str, list[PartitionLag]] = {}
    for topic, lag in partitions:
        by_topic.setdefault(topic, []).append(lag)
    topics = [
        TopicLag(topic=topic, partitions=lags, lag=sum(p.lag for p in lags))
        for topic, lags in by_topic.items()
    ]
    return GroupLag(group=group, topics=topics, lag=sum(t.lag for t in topics))


class LagReader:
    """An admin client (committed offsets) and a consumer outside any group (partitions' first
    and end offsets), kept open between reads."""

    def __init__(self, kafka: dict[str, Any]) -> None:
        self._admin = AIOKafkaAdminClient(**kafka)
        self._offsets = AIOKafkaConsumer(**kafka, group_id=None, enable_auto_commit=False)

    async def __aenter__(self) -> Self:
        # Both clients exist from the constructor on: whichever fails to start, both are
        # closed, or the consumer is left open ('Unclosed AIOKafkaConsumer') at each retry.
        try:
            await self._admin.start()
            await self._offsets.start()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Closes both clients, started or not; closing twice does nothing."""
        try:
            await self._offsets.stop()
        finally:
            await self._admin.close()

    async def read(self, group: str, topics: Sequence[str] | None = None) -> GroupLag:
        """The group's lag on `topics`, or, when None, on every topic it has committed on."""
        if topics is None:
            committed_anywhere = await self._admin.list_consumer_group_offsets(group)
            topics = sorted({tp.topic for tp in committed_anywhere})
        assignment = await self._partitions(topics)
        if not assignment:
            return group_lag(group, [])
        committed = await self._admin.list_consumer_group_offsets(group, partitions=assignment)
        starts = await self._offsets.beginning_offsets(assignment)
        ends = await self._offsets.end_offsets(assignment)
        lags = []
        for tp in assignment:
            done = committed.get(tp)
            offset = done.offset if done is not None and done.offset >= 0 else None
            lags.append(
                (
                    tp.topic,
                    partition_lag(tp.partition, committed=offset, start=starts[tp], end=ends[tp]),
                )
            )
        return group_lag(group, lags)

    async def _partitions(self, topics: Sequence[str]) -> list[TopicPartition]:
        # Only topics the cluster lists are described: describing a missing topic by name
        # would create it where the broker auto-creates topics.
        listed = set(await self._admin.list_topics())
        present = [topic for topic in topics if topic in listed]
        if not present:
            return []
        described = await self._admin.describe_topics(present)
        return sorted(
            (
                TopicPartition(found["topic"], p["partition"])
                for found in described
                if found["error_code"] == 0
                for p in found["partitions"]
            ),
            key=lambda tp: (present.index(tp.topic), tp.partition),
        )

"""Consumer lag: what is counted as behind, how it is summed, where it is shown."""

import gc
import json
import warnings
from types import TracebackType
from typing import Any, Self

import pytest
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaConnectionError
from aiokafka.structs import OffsetAndMetadata
from prometheus_client import generate_latest
from typer.testing import CliRunner

from services.bootstrap import SERVICES
from services.cli import app
from services.testing import free_port
from shared.messaging.lag import (
    GroupLag,
    LagReader,
    consumed_topics,
    group_lag,
    partition_lag,
)
from shared.observability import Metrics


def test_a_partition_is_behind_by_the_records_after_its_commit() -> None:
    assert partition_lag(0, committed=7, start=0, end=10).lag == 3
    assert partition_lag(0, committed=10, start=0, end=10).lag == 0


def test_without_a_commit_every_retained_record_is_behind() -> None:
    never = partition_lag(1, committed=None, start=4, end=10)
    assert (never.committed, never.lag) == (None, 6)


def test_a_commit_older_than_retention_counts_from_the_earliest_retained_record() -> None:
    assert partition_lag(0, committed=2, start=5, end=9).lag == 4


def group() -> GroupLag:
    return group_lag(
        "backorder-order",
        [
            ("orders.placed", partition_lag(0, committed=5, start=0, end=8)),
            ("orders.placed", partition_lag(1, committed=None, start=0, end=2)),
            ("orders.cancel-requested", partition_lag(0, committed=1, start=0, end=1)),
        ],
    )


def test_partitions_are_summed_per_topic_and_topics_per_group() -> None:
    lag = group()
    assert [(t.topic, t.lag) for t in lag.topics] == [
        ("orders.placed", 5),
        ("orders.cancel-requested", 0),
    ]
    assert lag.lag == 5


@pytest.mark.parametrize("service", SERVICES)
def test_the_groups_topics_are_the_topics_the_service_subscribes_to(service: str) -> None:
    subscribed = {
        topic.name
        for subscriber in SERVICES[service].router.subscribers
        for topic in subscriber.topics  # type: ignore[attr-defined]
    }
    assert set(consumed_topics(service)) == subscribed


def test_the_gauge_has_the_group_and_topic_as_labels() -> None:
    metrics = Metrics()
    metrics.set_consumer_lag(group())
    exposed = generate_latest(metrics.registry).decode()
    assert 'backorder_consumer_lag{group="backorder-order",topic="orders.placed"} 5.0' in exposed
    assert (
        'backorder_consumer_lag{group="backorder-order",topic="orders.cancel-requested"} 0.0'
        in exposed
    )


class FixedLag:
    """Stands in for the broker: every group is behind as `group()` says."""

    def __init__(self, kafka: dict[str, Any]) -> None:
        pass

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    async def read(self, name: str, topics: list[str] | None = None) -> GroupLag:
        return group().model_copy(update={"group": name})


def test_the_command_shows_a_table_per_group_with_its_total(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("services.cli.lag.LagReader", FixedLag)
    shown = CliRunner().invoke(app, ["lag", "--group", "backorder-order"], env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    rows = {
        cells[0]: cells[1:]
        for line in shown.output.splitlines()
        if len(cells := [c.strip() for c in line.split("│")[1:-1]]) == 5
    }
    assert rows["orders.placed"] == ["2", "5 (1 partition(s) none)", "10", "5"]
    assert rows["orders.cancel-requested"] == ["1", "1", "1", "0"]
    assert rows["total"][-1] == "5"


def test_the_command_answers_in_json_per_partition(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("services.cli.lag.LagReader", FixedLag)
    shown = CliRunner().invoke(app, ["lag", "--json"])
    assert shown.exit_code == 0, shown.output
    groups = [GroupLag.model_validate(g) for g in json.loads(shown.output)]
    assert [g.group for g in groups] == [f"backorder-{s}" for s in SERVICES]
    assert groups[0].topics[0].partitions[1].committed is None


class FakeAdmin:
    """A cluster with orders.placed (two partitions); the group committed on partition 0."""

    async def list_topics(self) -> list[str]:
        return ["orders.placed", "other"]

    async def describe_topics(self, names: list[str]) -> list[dict[str, Any]]:
        assert names == ["orders.placed"], "a missing topic is never described (auto-creation)"
        return [
            {
                "topic": "orders.placed",
                "error_code": 0,
                "partitions": [{"partition": 1}, {"partition": 0}],
            }
        ]

    async def list_consumer_group_offsets(
        self, group: str, partitions: list[TopicPartition] | None = None
    ) -> dict[TopicPartition, OffsetAndMetadata]:
        committed = {TopicPartition("orders.placed", 0): OffsetAndMetadata(4, "")}
        if partitions is None:
            return committed
        return {tp: committed.get(tp, OffsetAndMetadata(-1, "")) for tp in partitions}


class FakeOffsets:
    async def beginning_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return dict.fromkeys(tps, 1)

    async def end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return dict.fromkeys(tps, 10)


async def test_the_reader_counts_each_partition_of_the_topics_that_exist() -> None:
    reader = LagReader({"bootstrap_servers": "127.0.0.1:9"})
    reader._admin, reader._offsets = FakeAdmin(), FakeOffsets()
    lag = await reader.read("backorder-order", ["orders.placed", "orders.missing"])
    (placed,) = lag.topics
    assert [(p.partition, p.committed, p.lag) for p in placed.partitions] == [
        (0, 4, 6),
        (1, None, 9),
    ]
    assert lag.lag == 15
    anywhere = await reader.read("someone-else")
    assert [t.topic for t in anywhere.topics] == ["orders.placed"]


def unclosed(caught: list[warnings.WarningMessage], client: str) -> list[str]:
    return [str(w.message) for w in caught if str(w.message).startswith(f"Unclosed {client}")]


async def assert_a_failed_start_closes_both_clients() -> None:
    """A reader on a port nobody serves: its start fails, and it leaves no client open."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        reader = LagReader({"bootstrap_servers": f"127.0.0.1:{free_port()}"})
        consumer, admin = reader._offsets, reader._admin
        with pytest.raises(KafkaConnectionError):
            async with reader:
                raise AssertionError("the reader did not start: no read happens")
        assert (consumer._closed, admin._closed) == (True, True)
        del reader, consumer, admin
        gc.collect()
    assert not unclosed(caught, "AIOKafkaConsumer")


async def test_a_reader_that_cannot_reach_the_broker_closes_both_clients() -> None:
    """Defect 8: a failed start left the consumer open ('Unclosed AIOKafkaConsumer')."""
    await assert_a_failed_start_closes_both_clients()


async def test_a_reader_whose_consumer_fails_to_start_closes_it_and_the_admin(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def started(self: AIOKafkaAdminClient) -> None:
        return None

    monkeypatch.setattr(AIOKafkaAdminClient, "start", started)
    await assert_a_failed_start_closes_both_clients()

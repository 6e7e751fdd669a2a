"""`backorder topics apply`: idempotent, raises partitions only when asked, reports drift."""

import os
import subprocess
import sys
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from aiokafka.admin import AIOKafkaAdminClient

from shared.contracts.topics import ALL_TOPICS, Topic, TopicSpec
from shared.messaging.connection import kafka_options
from shared.messaging.topic_admin import apply, describe
from shared.settings import Settings
from tests.support.fleet import ROOT
from tests.support.shop import unique

pytestmark = pytest.mark.integration


@pytest_asyncio.fixture(loop_scope="session")
async def admin(settings: Settings) -> AsyncIterator[AIOKafkaAdminClient]:
    client = AIOKafkaAdminClient(**kafka_options(settings))
    await client.start()
    try:
        yield client
    finally:
        await client.close()


def declared(name: str, *, partitions: int = 2, compacted: bool = False) -> list[TopicSpec]:
    topic = Topic(
        name=name,
        key="k",
        producer="test",
        consumers=(),
        schema="-",
        description="-",
        partitions=partitions,
        compacted=compacted,
    )
    return topic.specs()


async def test_apply_twice_creates_once_and_then_changes_nothing(
    admin: AIOKafkaAdminClient,
) -> None:
    specs = declared(unique("t"), compacted=True)
    first = await apply(admin, specs)
    assert sorted(first.created) == sorted(s.name for s in specs)
    second = await apply(admin, specs)
    assert (second.created, second.raised, second.drift) == ([], [], [])
    states = await describe(admin, specs)
    assert states[specs[0].name].config["cleanup.policy"] == "compact"
    assert states[specs[1].name].config["cleanup.policy"] == "delete"


async def test_partitions_are_raised_only_when_asked_and_with_a_warning(
    admin: AIOKafkaAdminClient,
) -> None:
    name = unique("t")
    await apply(admin, declared(name, partitions=2))
    more = declared(name, partitions=4)
    refused = await apply(admin, more)
    assert refused.raised == []
    assert any("--raise-partitions" in line for line in refused.drift)
    assert (await describe(admin, more))[name].partitions == 2

    raised = await apply(admin, more, raise_partitions=True)
    assert name in raised.raised
    assert any("keys may move" in line for line in raised.warnings)
    assert (await describe(admin, more))[name].partitions == 4
    assert not (await apply(admin, more, raise_partitions=True)).changed


async def test_drift_it_will_not_fix_is_reported(admin: AIOKafkaAdminClient) -> None:
    name = unique("t")
    await apply(admin, declared(name, partitions=3))
    fewer = await apply(admin, declared(name, partitions=2))
    assert any("cannot remove partitions" in line for line in fewer.drift)
    compacted = await apply(admin, declared(name, partitions=3, compacted=True))
    assert f"{name}: cleanup.policy=delete, declared compact" in compacted.drift


def test_the_command_on_the_project_topics_reports_no_changes_the_second_time(
    migrated: None,
) -> None:
    run = [sys.executable, "-m", "services", "topics", "apply"]
    subprocess.run(run, cwd=ROOT, check=True, capture_output=True)
    second = subprocess.run(run, cwd=ROOT, check=True, capture_output=True, text=True)
    assert second.stdout.strip() == "no changes", second.stdout
    described = subprocess.run(
        [sys.executable, "-m", "services", "topics", "describe"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    for topic in ALL_TOPICS:
        assert topic.name in described.stdout

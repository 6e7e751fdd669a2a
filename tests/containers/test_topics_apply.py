"""`backorder topics apply` on a broker left at Kafka's default of creating topics on demand."""

import time
from collections.abc import Iterator

import pytest
from testcontainers.core.container import DockerContainer
from testcontainers.core.network import Network

from services.testing import KAFKA_LISTENING, Images, kafka_environment
from shared.contracts.topics import all_specs


@pytest.fixture
def auto_creating_kafka() -> Iterator[tuple[Network, Images]]:
    images = Images.from_environment()
    with Network() as network:
        kafka = DockerContainer(images.kafka).with_network(network).with_network_aliases("kafka")
        environment = {**kafka_environment(9094), "KAFKA_AUTO_CREATE_TOPICS_ENABLE": "true"}
        for name, value in environment.items():
            kafka.with_env(name, value)
        with kafka:
            deadline = time.monotonic() + 120
            while kafka.exec(KAFKA_LISTENING).exit_code != 0:
                assert time.monotonic() < deadline, kafka.get_logs()
                time.sleep(0.5)
            yield network, images


def backorder(network: Network, images: Images, *args: str) -> tuple[int, str]:
    job = (
        DockerContainer(images.project)
        .with_network(network)
        .with_env("KAFKA_BOOTSTRAP_SERVERS", "kafka:9092")
        .with_env("DATABASE_URL", "postgresql+asyncpg://unused@nowhere/unused")
        .with_env("COLUMNS", "250")
        .with_command(list(args))
    )
    with job:
        code = job.wait()
        out, err = job.get_logs()
    return code, (out + err).decode()


def test_apply_creates_each_declared_topic_and_then_finds_nothing_to_do(
    auto_creating_kafka: tuple[Network, Images],
) -> None:
    # Describing the declared topics by name used to make such a broker create them with its
    # own defaults (one partition), after which apply failed with "already exists".
    code, first = backorder(*auto_creating_kafka, "topics", "apply")
    assert code == 0, first
    created = {line.split()[1] for line in first.splitlines() if line.startswith("created ")}
    assert created == {spec.name for spec in all_specs()}
    code, second = backorder(*auto_creating_kafka, "topics", "apply")
    assert (code, second.strip()) == (0, "no changes"), second

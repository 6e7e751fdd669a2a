"""The backorder system in containers, for a shop's own integration tests.

    from services.testing import BackorderSystem

    @pytest.fixture(scope="session")
    def backorder():
        with BackorderSystem() as system:
            yield system   # system.bootstrap_servers, .database_url, .api_url, .api_token

It starts PostgreSQL and a single-node KRaft Kafka on a private Docker network, migrates the
schema, creates the topics, and starts the four services and the look-up API from the
project's image, each waited on until ready. The broker advertises two listeners: one the
containers reach by name, one the test process reaches on a published port, so a shop's
producers and consumers talk to the same broker the services do.

Images come from `BACKORDER_IMAGE`, `BACKORDER_KAFKA_IMAGE` and `BACKORDER_POSTGRES_IMAGE`
(the file `deploy/bin/stack images` writes sets all three), else the official names.
Where no registry is reachable, set `TESTCONTAINERS_RYUK_DISABLED=true`: the Ryuk reaper
image cannot be pulled, and `stop()` removes everything anyway.
"""

import contextlib
import os
import secrets
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self

from testcontainers.core.container import DockerContainer
from testcontainers.core.network import Network

SERVICES = ("order", "inventory", "allocator", "notifier")
HTTP_PORT = 8080
API_PORT = 8000
_EXTERNAL_KAFKA_PORT = 9094
_PG = {"POSTGRES_USER": "backorder", "POSTGRES_PASSWORD": "backorder", "POSTGRES_DB": "backorder"}


class SystemFailedToStart(RuntimeError):
    """A container did not become ready; the message carries the end of its log."""


@dataclass(frozen=True, kw_only=True)
class Images:
    project: str = "backorder:latest"
    kafka: str = "apache/kafka:4.1.1"
    postgres: str = "postgres:17"
    mail: str = "axllent/mailpit:v1.21"

    @classmethod
    def from_environment(
        cls, environ: Mapping[str, str] = os.environ, *, env_file: Path | None = None
    ) -> "Images":
        """The variables win over the file (`.stack/images.env`), the file over the defaults."""
        values = dict(_read_env_file(env_file)) if env_file and env_file.exists() else {}
        values.update(environ)
        defaults = cls()
        return cls(
            project=values.get("BACKORDER_IMAGE", defaults.project),
            kafka=values.get("BACKORDER_KAFKA_IMAGE", defaults.kafka),
            postgres=values.get("BACKORDER_POSTGRES_IMAGE", defaults.postgres),
            mail=values.get("BACKORDER_MAIL_IMAGE", defaults.mail),
        )


@dataclass
class BackorderSystem:
    """Kafka, PostgreSQL, the services and the API in containers; a context manager."""

    images: Images = field(default_factory=Images.from_environment)
    settings: Mapping[str, str] = field(default_factory=dict)
    """Extra `BACKORDER_*` settings for every service, e.g. short timers for tests."""
    services: Iterable[str] = SERVICES
    api_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    ready_timeout: float = 120.0

    bootstrap_servers: str = field(init=False, default="")
    database_url: str = field(init=False, default="")
    api_url: str = field(init=False, default="")

    _network: Network | None = field(init=False, default=None, repr=False)
    _containers: dict[str, DockerContainer] = field(init=False, default_factory=dict, repr=False)

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> Self:
        self._network = Network().create()
        postgres = self._run("postgres", DockerContainer(self.images.postgres), env=_PG)
        postgres.with_exposed_ports(5432)
        # The broker must advertise its published port before it starts, so the port is
        # chosen here rather than by Docker.
        kafka_port = free_port()
        kafka = self._run(
            "kafka", DockerContainer(self.images.kafka), env=kafka_environment(kafka_port)
        )
        kafka.with_bind_ports(_EXTERNAL_KAFKA_PORT, kafka_port)
        postgres.start()
        kafka.start()
        self._wait("postgres", lambda: postgres.exec(_PG_READY).exit_code == 0)
        self._wait("kafka", lambda: kafka.exec(KAFKA_LISTENING).exit_code == 0)
        host = postgres.get_container_host_ip()
        self.bootstrap_servers = f"{_KAFKA_HOST}:{kafka_port}"
        self.database_url = (
            f"postgresql+asyncpg://backorder:backorder@{host}:{postgres.get_exposed_port(5432)}"
            "/backorder"
        )
        self._once("migrate", ["alembic", "-c", "deploy/alembic.ini", "upgrade", "head"])
        self._once("topics", ["topics", "apply"])
        for service in self.services:
            self._project(service, ["run", service]).with_exposed_ports(HTTP_PORT).start()
        api = self._project("api", ["api"]).with_exposed_ports(API_PORT)
        api.with_env("BACKORDER_API_PORT", str(API_PORT)).with_env(
            "BACKORDER_API_TOKEN", self.api_token
        ).start()
        self.api_url = f"http://{host}:{api.get_exposed_port(API_PORT)}"
        for service in self.services:
            self.wait_ready(service)
        self._wait("api", lambda: _answers(f"{self.api_url}/health/ready"))
        return self

    def stop(self) -> None:
        """Removes every container and the network."""
        for container in reversed(self._containers.values()):
            with contextlib.suppress(Exception):  # already gone: removal is best effort
                container.stop()
        self._containers.clear()
        if self._network is not None:
            self._network.remove()
            self._network = None

    def stop_service(self, service: str, *, kill: bool = False) -> None:
        """Stops a service's container (SIGTERM, or SIGKILL with `kill`) and keeps it."""
        container = self._containers[service].get_wrapped_container()
        if kill:
            container.kill()
        else:
            container.stop(timeout=30)

    def start_service(self, service: str) -> None:
        """Starts a stopped service's container again and waits until it is ready."""
        self._containers[service].get_wrapped_container().start()
        self.wait_ready(service)

    def wait_ready(self, service: str) -> None:
        container = self._containers[service]
        container.get_wrapped_container().reload()  # a restart publishes a new port

        def ready() -> bool:
            port = container.get_exposed_port(HTTP_PORT)
            return _answers(f"http://{container.get_container_host_ip()}:{port}/health/ready")

        self._wait(service, ready)

    def http_url(self, service: str) -> str:
        """Where a service's /metrics and /health answer, from the test process."""
        container = self._containers[service]
        port = container.get_exposed_port(HTTP_PORT)
        return f"http://{container.get_container_host_ip()}:{port}"

    def logs(self, name: str) -> str:
        out, err = self._containers[name].get_logs()
        return (out + err).decode(errors="replace")

    def _project(self, name: str, command: list[str]) -> DockerContainer:
        env = {
            "DATABASE_URL": "postgresql+asyncpg://backorder:backorder@postgres:5432/backorder",
            "KAFKA_BOOTSTRAP_SERVERS": "kafka:9092",
            **self.settings,
        }
        return self._run(name, DockerContainer(self.images.project), env=env).with_command(command)

    def _run(
        self, name: str, container: DockerContainer, *, env: Mapping[str, str]
    ) -> DockerContainer:
        assert self._network is not None, "start() first"
        container.with_network(self._network).with_network_aliases(name)
        for key, value in env.items():
            container.with_env(key, value)
        self._containers[name] = container
        return container

    def _once(self, name: str, command: list[str]) -> None:
        """Runs a one-off job (migrations, topics) and fails with its log when it fails."""
        job = self._project(name, command)
        if command[0] == "alembic":
            job.with_kwargs(entrypoint=[])
        job.start()
        if job.wait() != 0:
            raise SystemFailedToStart(f"{name} failed:\n{self.logs(name)[-4000:]}")

    def _wait(self, name: str, ready: Callable[[], bool]) -> None:
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            if self._exited(name):
                break
            if ready():
                return
            time.sleep(0.5)
        raise SystemFailedToStart(f"{name} not ready:\n{self.logs(name)[-4000:]}")

    def _exited(self, name: str) -> bool:
        container = self._containers[name].get_wrapped_container()
        container.reload()
        return container.status in {"exited", "dead"}


_PG_READY = ["pg_isready", "-h", "127.0.0.1", "-U", "backorder"]
KAFKA_LISTENING = ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/9092"]
"""Run inside a Kafka container (official or stand-in): succeeds once the broker listens."""
# The broker must advertise the address the test process dials before it starts, and Docker
# publishes ports on this host: a remote DOCKER_HOST is not supported.
_KAFKA_HOST = "127.0.0.1"


def kafka_environment(external_port: int) -> dict[str, str]:
    """A single-node KRaft broker reached as kafka:9092 inside the network and as
    127.0.0.1:`external_port` from the host; the official image and the stand-in read these."""
    return {
        "KAFKA_NODE_ID": "1",
        "KAFKA_PROCESS_ROLES": "broker,controller",
        "KAFKA_LISTENERS": f"INTERNAL://:9092,EXTERNAL://:{_EXTERNAL_KAFKA_PORT},CONTROLLER://:9093",
        "KAFKA_ADVERTISED_LISTENERS": (
            f"INTERNAL://kafka:9092,EXTERNAL://{_KAFKA_HOST}:{external_port}"
        ),
        "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": (
            "INTERNAL:PLAINTEXT,EXTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT"
        ),
        "KAFKA_INTER_BROKER_LISTENER_NAME": "INTERNAL",
        "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
        "KAFKA_CONTROLLER_QUORUM_VOTERS": "1@kafka:9093",
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "1",
        "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR": "1",
        "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR": "1",
        "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS": "0",
        # As in production: topics exist because `topics apply` made them, never by accident.
        "KAFKA_AUTO_CREATE_TOPICS_ENABLE": "false",
    }


def free_port() -> int:
    """A port nothing on this host listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def _read_env_file(path: Path) -> Iterable[tuple[str, str]]:
    for line in path.read_text().splitlines():
        name, sep, value = line.partition("=")
        if sep and not name.lstrip().startswith("#"):
            yield name.strip(), value.strip()

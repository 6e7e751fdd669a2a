"""What each service shows operators: Prometheus metrics and health endpoints over HTTP."""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from faststream.asgi import AsgiResponse, get
from faststream.asgi.types import ASGIApp, Scope
from faststream.kafka import KafkaBroker
from prometheus_client import CollectorRegistry, Counter, Gauge, make_asgi_app
from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.messaging.connection import kafka_options
from shared.messaging.lag import GroupLag, LagReader, consumed_topics
from shared.messaging.subscriptions import group_id

if TYPE_CHECKING:
    from shared.runtime import Runtime

log = logging.getLogger(__name__)


class QueueFigures(Protocol):
    """A SKU's queue as its gauges show it."""

    @property
    def sku(self) -> str: ...
    @property
    def units(self) -> int: ...
    @property
    def lines(self) -> int: ...
    @property
    def oldest_wait(self) -> float: ...


class Metrics:
    """Domain figures beside FastStream's own message metrics, on one registry per process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        self.line_decisions = Counter(
            "backorder_line_decisions",
            "Allocator decisions on order lines, by the line's new status",
            ["status"],
            registry=registry,
        )
        self.units_filled = Counter(
            "backorder_units_filled", "Units reserved for waiting or new lines", registry=registry
        )
        self.dead_letters = Counter(
            "backorder_dead_letters", "Messages sent to a dead-letter topic", ["topic"],
            registry=registry,
        )  # fmt: skip
        self.notifications = Counter(
            "backorder_notifications",
            "Notification delivery attempts by channel and outcome (sent, retry, failed, skipped)",
            ["channel", "outcome"],
            registry=registry,
        )
        self.queue_units = Gauge(
            "backorder_queue_waiting_units", "Units waiting, top SKUs", ["sku"], registry=registry
        )
        self.queue_lines = Gauge(
            "backorder_queue_waiting_lines", "Lines waiting, top SKUs", ["sku"], registry=registry
        )
        self.queue_oldest_wait = Gauge(
            "backorder_queue_oldest_wait_seconds",
            "How long the head of the queue has waited, top SKUs",
            ["sku"],
            registry=registry,
        )
        self.outbox_backlog = Gauge(
            "backorder_outbox_backlog", "Events committed but not yet published", registry=registry
        )
        self.outbox_parked = Counter(
            "backorder_outbox_parked",
            "Outbox rows the broker refused for good, parked instead of sent",
            ["topic"],
            registry=registry,
        )
        self.outbox_parked_rows = Gauge(
            "backorder_outbox_parked_rows",
            "Parked outbox rows waiting for an operator",
            registry=registry,
        )
        self.outbox_oldest_age = Gauge(
            "backorder_outbox_oldest_age_seconds",
            "Age of the oldest unpublished event",
            registry=registry,
        )
        self.retention_pruned = Counter(
            "backorder_retention_pruned",
            "Rows the retention job deleted, past their horizon, by table",
            ["table"],
            registry=registry,
        )
        self.consumer_lag = Gauge(
            "backorder_consumer_lag",
            "Records not yet consumed by the service's consumer group: end offset less committed"
            " offset, summed over the topic's partitions",
            ["group", "topic"],
            registry=registry,
        )

    def set_queues(self, rows: Sequence[QueueFigures]) -> None:
        """The top SKUs' queues, as the service that keeps them reads them."""
        for gauge in (self.queue_units, self.queue_lines, self.queue_oldest_wait):
            gauge.clear()
        for row in rows:
            self.queue_units.labels(row.sku).set(row.units)
            self.queue_lines.labels(row.sku).set(row.lines)
            self.queue_oldest_wait.labels(row.sku).set(row.oldest_wait)

    def set_consumer_lag(self, lag: GroupLag) -> None:
        for topic in lag.topics:
            self.consumer_lag.labels(lag.group, topic.topic).set(topic.lag)


_OUTBOX = text(
    "select count(*) as backlog,"
    " coalesce(extract(epoch from now() - min(created_at)), 0) as oldest"
    " from outbox_message where source = :source"
)
_PARKED = text("select count(*) from outbox_parked where source = :source")
# A service's own gauges, read with the shared ones in the same session and loop.
GaugeReader = Callable[["Runtime", AsyncSession], Awaitable[None]]


async def refresh_gauges(runtime: "Runtime", gauges: Sequence[GaugeReader] = ()) -> None:
    """Gauges read on a timer, so a scrape never waits on a query: the database's figures (the
    outbox's, and those `gauges` of the service's own read) and the consumer lag each in a loop
    of its own, so that a slow broker delays neither the other."""
    async with asyncio.TaskGroup() as loops:
        loops.create_task(_refresh_from_database(runtime, gauges))
        loops.create_task(_refresh_consumer_lag(runtime))


async def _refresh_from_database(runtime: "Runtime", gauges: Sequence[GaugeReader]) -> None:
    settings = runtime.settings
    while True:
        try:
            async with runtime.session_factory() as session:
                outbox = (await session.execute(_OUTBOX, {"source": runtime.service})).one()
                runtime.metrics.outbox_backlog.set(outbox.backlog)
                runtime.metrics.outbox_oldest_age.set(float(outbox.oldest))
                parked = await session.scalar(_PARKED, {"source": runtime.service})
                runtime.metrics.outbox_parked_rows.set(parked or 0)
                for read in gauges:
                    await read(runtime, session)
        except Exception as error:
            log.warning("metrics refresh failed: %s", error)
        await asyncio.sleep(settings.metrics_interval_seconds)


async def _refresh_consumer_lag(runtime: "Runtime") -> None:
    """The service's own consumer group, on the topics it is declared to read; its clients stay
    open between reads and are opened afresh after a failure."""
    topics = consumed_topics(runtime.service)
    if not topics:
        return
    settings, group = runtime.settings, group_id(runtime.service)
    # A read that hangs on an unreachable broker is abandoned, so the gauge is tried again soon.
    patience = max(10.0, 2 * settings.metrics_interval_seconds)
    while True:
        try:
            async with LagReader(kafka_options(settings)) as reader:
                while True:
                    async with asyncio.timeout(patience):
                        runtime.metrics.set_consumer_lag(await reader.read(group, topics))
                    await asyncio.sleep(settings.metrics_interval_seconds)
        except Exception as error:
            log.warning("consumer lag refresh failed: %s", error)
        await asyncio.sleep(settings.metrics_interval_seconds)


def http_routes(runtime: "Runtime", broker: KafkaBroker) -> list[tuple[str, ASGIApp]]:
    @get(include_in_schema=False)
    async def live(scope: Scope) -> AsgiResponse:
        return AsgiResponse(b"ok\n", 200)

    @get(include_in_schema=False)
    async def ready(scope: Scope) -> AsgiResponse:
        """Ready when both the broker and the database answer within two seconds."""
        problems = []
        if not await broker.ping(timeout=2.0):
            problems.append("kafka unreachable")
        try:
            async with asyncio.timeout(2.0), runtime.engine.connect() as connection:
                await connection.execute(text("select 1"))
        except Exception as error:
            problems.append(f"database unreachable: {type(error).__name__}")
        if problems:
            return AsgiResponse(("\n".join(problems) + "\n").encode(), 503)
        return AsgiResponse(b"ready\n", 200)

    return [
        ("/metrics", make_asgi_app(runtime.metrics.registry)),
        ("/health/live", live),
        ("/health/ready", ready),
    ]

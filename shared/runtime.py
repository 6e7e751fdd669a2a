"""Builds a service process: broker, database, outbox and background tasks.

Nothing connects at import time: `build_app` wires the parts, FastStream's start hooks open them.
"""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from aiokafka import AIOKafkaProducer
from faststream.asgi import AsgiFastStream
from faststream.kafka import KafkaBroker, KafkaRouter
from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from opentelemetry import trace
from sqlalchemy.ext.asyncio import AsyncEngine

from shared import faults
from shared.backoff import Backoff
from shared.db.engine import SessionFactory, make_engine, make_session_factory
from shared.db.unit_of_work import UnitOfWork
from shared.messaging.connection import faststream_security
from shared.messaging.dead_letter import DeadLetters
from shared.messaging.decoder import make_json_decoder
from shared.messaging.guard import ConsumeGuard, RetryPolicy
from shared.messaging.outbox import Outbox
from shared.messaging.outbox_relay import OutboxRelay
from shared.messaging.producer import make_producer
from shared.messaging.records import trace_each_message
from shared.messaging.subscriptions import join_as_static_members, read_without_naps
from shared.observability import GaugeReader, Metrics, http_routes, refresh_gauges
from shared.settings import Settings
from shared.tracing import make_tracer_provider

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    """What a handler may reach: handed to subscribers through FastStream's context."""

    service: str
    settings: Settings
    engine: AsyncEngine
    session_factory: SessionFactory
    producer: AIOKafkaProducer
    outbox: Outbox
    metrics: Metrics
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def unit_of_work(self) -> UnitOfWork:
        return UnitOfWork(self.session_factory, source=self.service, outbox=self.outbox)


BackgroundTask = Callable[[Runtime], Coroutine[Any, Any, None]]


def build_app(
    *,
    service: str,
    router: KafkaRouter,
    settings: Settings,
    background: Sequence[BackgroundTask] = (),
    gauges: Sequence[GaugeReader] = (),
) -> AsgiFastStream:
    """The service as an ASGI app: consumers, plus /metrics, /health/live, /health/ready;
    `gauges` read the service's own figures on the metrics timer."""
    engine = make_engine(settings)
    session_factory = make_session_factory(engine)
    producer = make_producer(settings)
    metrics = Metrics()
    relay = OutboxRelay(
        session_factory=session_factory,
        producer_factory=partial(make_producer, settings),
        source=service,
        batch_size=settings.outbox_batch_size,
        parked=metrics.outbox_parked,
    )
    outbox = Outbox(
        relay=relay,
        batch_size=settings.outbox_batch_size,
        poll_interval=settings.outbox_poll_interval_seconds,
        stale_after=settings.outbox_stale_after_seconds,
    )
    faults.arm(settings.fault)
    runtime = Runtime(
        service=service,
        settings=settings,
        engine=engine,
        session_factory=session_factory,
        producer=producer,
        outbox=outbox,
        metrics=metrics,
    )
    retry = RetryPolicy(
        initial=settings.retry_initial_backoff_seconds,
        maximum=settings.retry_max_backoff_seconds,
        unexpected_attempts=settings.unexpected_error_attempts,
    )
    tracer_provider = make_tracer_provider(settings, service=service)
    if tracer_provider:
        # Also for the span of each message of a batch (shared/messaging/records.py).
        trace.set_tracer_provider(tracer_provider)
        trace_each_message()
    tracing = [KafkaTelemetryMiddleware(tracer_provider=tracer_provider)] if tracer_provider else []
    broker = KafkaBroker(
        settings.kafka_bootstrap_servers,
        security=faststream_security(settings),
        client_id=f"backorder-{service}",
        decoder=make_json_decoder(settings.max_message_bytes),
        logger=logging.getLogger("faststream"),
        # FastStream's own Received/Processed lines, two per message and without the
        # correlation id: debug level. The guard logs one line per message that carries it.
        log_level=logging.DEBUG,
        middlewares=[
            *tracing,
            KafkaPrometheusMiddleware(registry=runtime.metrics.registry, app_name=service),
            partial(
                ConsumeGuard,
                dead_letters=DeadLetters(
                    producer,
                    counter=runtime.metrics.dead_letters,
                    max_value_bytes=settings.max_message_bytes,
                ),
                retry=retry,
            ),
        ],
    )
    broker.include_router(router)
    read_without_naps(broker)
    if settings.instance_id:
        join_as_static_members(broker, instance_id=settings.instance_id)
    background = (partial(refresh_gauges, gauges=gauges), *background)
    app = AsgiFastStream(broker, asgi_routes=http_routes(runtime, broker))
    app.context.set_global("runtime", runtime)

    @app.on_startup
    async def tell_tiers_in_force() -> None:
        # First, before anything may wait on Kafka: an order whose priority is not among these
        # tiers is dead-lettered, and the default (one tier) differs from the local stack's.
        tiers = settings.tiers
        log.info(
            "priority tiers in force: %s (highest first; default tier %s)",
            ",".join(tiers.names),
            tiers.default,
            extra={"priority_tiers": list(tiers.names), "default_tier": tiers.default},
        )

    @app.on_startup
    async def open_producer() -> None:
        # The producer must be up before the first message: the guard dead-letters through it.
        await _until_reachable(producer.start, what="Kafka producer")

    @app.after_startup
    async def start_background() -> None:
        runtime.tasks.append(asyncio.create_task(outbox.run(), name=f"{service}-outbox"))
        for task in background:
            runtime.tasks.append(asyncio.create_task(task(runtime)))

    @app.on_shutdown
    async def stop_background() -> None:
        for task in runtime.tasks:
            task.cancel()
        for task in runtime.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    @app.after_shutdown
    async def close_clients() -> None:
        try:
            await outbox.close()
        except Exception as error:
            log.warning("sent outbox rows not deleted, they will be sent again: %s", error)
        await relay.close()
        await producer.stop()
        await engine.dispose()
        if tracer_provider:
            # Flushing may wait on an unreachable collector: keep it off the event loop.
            await asyncio.to_thread(tracer_provider.shutdown)

    return app


_REACH_BACKOFF = Backoff(initial=0.2, maximum=5.0)


async def _until_reachable(start: Callable[[], Awaitable[None]], *, what: str) -> None:
    for attempt in range(1, 1_000_000):
        try:
            await start()
            return
        except Exception as error:
            log.warning("%s not reachable yet (%s), retrying", what, error)
            await asyncio.sleep(_REACH_BACKOFF.delay(attempt))

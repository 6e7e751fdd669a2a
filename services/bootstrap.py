"""The composition root: which router, which background tasks, make up each service."""

from collections.abc import Sequence
from dataclasses import dataclass

from faststream import FastStream
from faststream.asgi import AsgiFastStream
from faststream.kafka import KafkaBroker, KafkaRouter
from faststream.specification import AsyncAPI

from services.allocator import entrypoint as allocator
from services.inventory import entrypoint as inventory
from services.notifier import entrypoint as notifier
from services.order import entrypoint as order
from shared.observability import GaugeReader
from shared.runtime import BackgroundTask, build_app
from shared.settings import Settings, get_settings


@dataclass(frozen=True)
class ServiceSpec:
    router: KafkaRouter
    background: Sequence[BackgroundTask] = ()
    gauges: Sequence[GaugeReader] = ()


SERVICES: dict[str, ServiceSpec] = {
    "order": ServiceSpec(order.router, background=(order.sweep_expired_cancellations,)),
    "inventory": ServiceSpec(inventory.router),
    "allocator": ServiceSpec(
        allocator.router,
        background=(allocator.sweep_overdue_lines, allocator.sweep_lines_to_promote),
        gauges=(allocator.read_queue_gauges,),
    ),
    "notifier": ServiceSpec(notifier.router, background=(notifier.deliver_notifications,)),
}


def create_app(service: str, settings: Settings | None = None) -> AsgiFastStream:
    spec = SERVICES[service]
    return build_app(
        service=service,
        router=spec.router,
        settings=settings or get_settings(),
        background=spec.background,
        gauges=spec.gauges,
    )


def asyncapi_app() -> FastStream:
    """All four routers on one broker, connected to nothing: the source of the AsyncAPI document.

    `faststream docs gen --factory services.bootstrap:asyncapi_app`
    """
    broker = KafkaBroker(get_settings().kafka_bootstrap_servers)
    for spec in SERVICES.values():
        broker.include_router(spec.router)
    return FastStream(
        broker,
        specification=AsyncAPI(
            title="Backorder service",
            version="1",
            description="Topics consumed and published by the order, inventory, allocator "
            "and notifier services. Every published message carries the headers "
            "event-id, event-type and correlation-id.",
        ),
    )

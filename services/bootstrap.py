"""The composition root: which router, which background tasks, make up each service."""

from collections.abc import Sequence
from dataclasses import dataclass

from faststream import FastStream
from faststream.asgi import AsgiFastStream
from faststream.kafka import KafkaBroker, KafkaRouter
from faststream.specification import AsyncAPI

from services.allocator import entrypoint as allocator
from services.allocator import retention as allocator_retention
from services.inventory import entrypoint as inventory
from services.notifier import entrypoint as notifier
from services.notifier import retention as notifier_retention
from services.order import entrypoint as order
from shared.db.retention import retention_job
from shared.observability import GaugeReader
from shared.runtime import BackgroundTask, build_app
from shared.settings import Settings, get_settings


@dataclass(frozen=True)
class ServiceSpec:
    router: KafkaRouter
    background: Sequence[BackgroundTask] = ()
    gauges: Sequence[GaugeReader] = ()


# A service whose tables keep history registers what its retention job prunes. The order and
# inventory services register nothing: their orders and receipts are what recognise a repeated
# order or receipt, and a pending cancel leaves with its order or its dead letter.
SERVICES: dict[str, ServiceSpec] = {
    "order": ServiceSpec(order.router, background=(order.sweep_expired_cancellations,)),
    "inventory": ServiceSpec(inventory.router),
    "allocator": ServiceSpec(
        allocator.router,
        background=(
            allocator.sweep_overdue_lines,
            allocator.sweep_lines_to_promote,
            retention_job(allocator_retention.prunables),
        ),
        gauges=(allocator.read_queue_gauges,),
    ),
    "notifier": ServiceSpec(
        notifier.router,
        background=(notifier.deliver_notifications, retention_job(notifier_retention.prunables)),
    ),
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

"""Where the notifier listens: every new version of an order."""

from faststream import Context
from faststream.kafka import KafkaRouter

from services.notifier import handlers
from shared.contracts.outputs import OrderStatusChanged
from shared.contracts.topics import ORDERS_STATUS_CHANGED
from shared.messaging.subscriptions import consumes
from shared.runtime import Runtime

SERVICE = "notifier"
router = KafkaRouter()


@consumes(router, ORDERS_STATUS_CHANGED, service=SERVICE)
async def on_status_changed(change: OrderStatusChanged, runtime: Runtime = Context()) -> None:
    async with runtime.unit_of_work() as uow:
        await handlers.record_customer_message(change, uow=uow)
        await runtime.committed(uow)
    runtime.metrics.customer_messages.labels(change.status).inc()

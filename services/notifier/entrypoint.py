"""Where the notifier listens: every new version of an order."""

from faststream import AckPolicy, Context
from faststream.kafka import KafkaRouter

from services.notifier import handlers
from shared.contracts.outputs import OrderStatusChanged
from shared.contracts.topics import ORDERS_STATUS_CHANGED
from shared.runtime import Runtime

SERVICE = "notifier"
router = KafkaRouter()


@router.subscriber(
    ORDERS_STATUS_CHANGED.name,
    group_id=f"backorder-{SERVICE}",
    ack_policy=AckPolicy.NACK_ON_ERROR,
    auto_offset_reset="earliest",
    description=ORDERS_STATUS_CHANGED.description,
)
async def on_status_changed(change: OrderStatusChanged, runtime: Runtime = Context()) -> None:
    async with runtime.unit_of_work() as uow:
        await handlers.record_customer_message(change, uow=uow)
        await runtime.committed(uow)

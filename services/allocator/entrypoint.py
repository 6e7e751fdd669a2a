"""Where allocation commands enter: the SKU-keyed `allocation.commands` topic."""

from faststream import Context
from faststream.kafka import KafkaMessage, KafkaRouter

from services.allocator import handlers
from shared.contracts.headers import EVENT_ID
from shared.contracts.internal import AllocationCommand, LineAllocationChanged
from shared.contracts.topics import ALLOCATION_COMMANDS, LINE_ALLOCATION_CHANGED
from shared.messaging.errors import PoisonMessage
from shared.messaging.subscriptions import consumes
from shared.runtime import Runtime

SERVICE = "allocator"
router = KafkaRouter()

line_changed = router.publisher(
    LINE_ALLOCATION_CHANGED.name,
    schema=LineAllocationChanged,
    description=LINE_ALLOCATION_CHANGED.description,
)


@consumes(router, ALLOCATION_COMMANDS, service=SERVICE)
async def on_allocation_command(
    command: AllocationCommand, message: KafkaMessage, runtime: Runtime = Context()
) -> None:
    message_id = message.headers.get(EVENT_ID)
    if not message_id:
        raise PoisonMessage(f"missing {EVENT_ID} header")
    async with runtime.unit_of_work() as uow:
        outcome = await handlers.handle_command(
            command,
            uow=uow,
            message_id=message_id,
            default_backorders=runtime.settings.default_backorders,
        )
        await runtime.committed(uow)
    for status in outcome.statuses:
        runtime.metrics.line_decisions.labels(status).inc()
    runtime.metrics.units_filled.inc(outcome.units_filled)

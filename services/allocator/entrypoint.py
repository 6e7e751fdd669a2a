"""Where allocation commands enter: the SKU-keyed `allocation.commands` topic."""

import asyncio
import logging

from faststream import Context
from faststream.kafka import KafkaMessage, KafkaRouter

from services.allocator import handlers
from shared.contracts.headers import EVENT_ID
from shared.contracts.internal import AllocationCommand, LineAllocationChanged
from shared.contracts.topics import ALLOCATION_COMMANDS, LINE_ALLOCATION_CHANGED
from shared.messaging.errors import PoisonMessage, is_transient
from shared.messaging.records import delivered
from shared.messaging.subscriptions import consumes
from shared.runtime import Runtime

log = logging.getLogger(__name__)

SERVICE = "allocator"
router = KafkaRouter()

line_changed = router.publisher(
    LINE_ALLOCATION_CHANGED.name,
    schema=LineAllocationChanged,
    description=LINE_ALLOCATION_CHANGED.description,
)


@consumes(router, ALLOCATION_COMMANDS, service=SERVICE)
async def on_allocation_commands(
    commands: list[AllocationCommand], message: KafkaMessage, runtime: Runtime = Context()
) -> None:
    batch = []
    for item in delivered(commands, message):
        message_id = item.header(EVENT_ID)
        if not message_id:
            raise PoisonMessage(f"missing {EVENT_ID} header")
        batch.append(handlers.Received(item.body, message_id, item.handling))
    async with runtime.unit_of_work() as uow:
        outcome = await handlers.handle_commands(
            batch, uow=uow, default_backorders=runtime.settings.default_backorders
        )
        await runtime.committed(uow)
    _count(runtime, outcome)


def _count(runtime: Runtime, outcome: handlers.Outcome) -> None:
    for status in outcome.statuses:
        runtime.metrics.line_decisions.labels(status).inc()
    runtime.metrics.units_filled.inc(outcome.units_filled)


async def sweep_overdue_lines(runtime: Runtime) -> None:
    """Expires lines past their maximum wait, one SKU lock at a time; replicas share the work.
    A SKU that fails is logged and left for the next round: it never holds up the others."""
    settings = runtime.settings
    while True:
        try:
            async with runtime.unit_of_work() as uow:
                skus = await handlers.skus_to_expire(uow=uow, default_max_wait=settings.max_wait)
        except Exception as error:
            log.warning("max-wait sweep failed: %s", error, exc_info=not is_transient(error))
            skus = []
        for sku in skus:
            try:
                async with runtime.unit_of_work() as uow:
                    outcome = await handlers.expire_overdue_lines(
                        uow=uow,
                        sku=sku,
                        default_backorders=settings.default_backorders,
                        default_max_wait=settings.max_wait,
                    )
                    await runtime.committed(uow)
                _count(runtime, outcome)
            except Exception as error:
                log.warning(
                    "max-wait sweep failed for SKU %s: %s",
                    sku,
                    error,
                    exc_info=not is_transient(error),
                )
        await asyncio.sleep(settings.expiry_sweep_interval_seconds)


async def sweep_lines_to_promote(runtime: Runtime) -> None:
    """Promotes lines past their aging bound one rank, one SKU lock at a time, as the max-wait
    sweep expires them; nothing to do while the shop has a single priority tier."""
    settings = runtime.settings
    top_rank = settings.tiers.top_rank
    while top_rank:
        try:
            async with runtime.unit_of_work() as uow:
                skus = await handlers.skus_to_promote(
                    uow=uow, default_aging=settings.priority_aging, top_rank=top_rank
                )
        except Exception as error:
            log.warning("aging sweep failed: %s", error, exc_info=not is_transient(error))
            skus = []
        for sku in skus:
            try:
                async with runtime.unit_of_work() as uow:
                    outcome = await handlers.promote_waiting_lines(
                        uow=uow,
                        sku=sku,
                        default_backorders=settings.default_backorders,
                        default_aging=settings.priority_aging,
                        top_rank=top_rank,
                    )
                    await runtime.committed(uow)
                _count(runtime, outcome)
            except Exception as error:
                log.warning(
                    "aging sweep failed for SKU %s: %s",
                    sku,
                    error,
                    exc_info=not is_transient(error),
                )
        await asyncio.sleep(settings.aging_sweep_interval_seconds)

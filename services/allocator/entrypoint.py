"""Where allocation commands enter: the SKU-keyed `allocation.commands` topic."""

import logging
from collections.abc import Awaitable, Callable

from faststream import Context
from faststream.kafka import KafkaMessage, KafkaRouter
from sqlmodel.ext.asyncio.session import AsyncSession

from services.allocator import handlers
from services.allocator.repository import queue_figures
from services.allocator.unit_of_work import AllocatorUnitOfWork
from shared.contracts.headers import EVENT_ID
from shared.contracts.internal import AllocationCommand, LineAllocationChanged
from shared.contracts.topics import ALLOCATION_COMMANDS, LINE_ALLOCATION_CHANGED
from shared.messaging.errors import PoisonMessage, is_transient
from shared.messaging.records import delivered
from shared.messaging.subscriptions import consumes
from shared.periodic import repeat
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
    async with _unit_of_work(runtime) as uow:
        outcome = await handlers.handle_commands(
            batch,
            uow=uow,
            default_backorders=runtime.settings.default_backorders,
            retell_limit=runtime.settings.position_retell_limit,
        )
        await uow.commit()
    _count(runtime, outcome)


def _unit_of_work(runtime: Runtime) -> AllocatorUnitOfWork:
    return AllocatorUnitOfWork(
        runtime.session_factory, source=runtime.service, outbox=runtime.outbox
    )


def _count(runtime: Runtime, outcome: handlers.Outcome) -> None:
    for status in outcome.statuses:
        runtime.metrics.line_decisions.labels(status).inc()
    runtime.metrics.units_filled.inc(outcome.units_filled)


async def read_queue_gauges(runtime: Runtime, session: AsyncSession) -> None:
    """The queue gauges of the SKUs with the most units waiting, from their books' counters
    (`queue_figures.top_queues`): what a refresh costs does not grow with the queues."""
    top = await queue_figures.top_queues(session, limit=runtime.settings.metrics_top_skus)
    runtime.metrics.set_queues(top)


async def sweep_overdue_lines(runtime: Runtime) -> None:
    """Expires lines past their maximum wait (see `_sweep`)."""
    settings = runtime.settings

    async def find(uow: AllocatorUnitOfWork) -> list[str]:
        return await handlers.skus_to_expire(uow=uow, default_max_wait=settings.max_wait)

    async def handle(uow: AllocatorUnitOfWork, sku: str) -> handlers.Outcome:
        return await handlers.expire_overdue_lines(
            uow=uow,
            sku=sku,
            default_backorders=settings.default_backorders,
            default_max_wait=settings.max_wait,
        )

    await _sweep(runtime, "max-wait", find, handle, settings.expiry_sweep_interval_seconds)


async def sweep_lines_to_promote(runtime: Runtime) -> None:
    """Promotes lines past their aging bound one rank (see `_sweep`); nothing to do while the
    shop has a single priority tier."""
    settings = runtime.settings
    top_rank = settings.tiers.top_rank
    if not top_rank:
        return

    async def find(uow: AllocatorUnitOfWork) -> list[str]:
        return await handlers.skus_to_promote(
            uow=uow, default_aging=settings.priority_aging, top_rank=top_rank
        )

    async def handle(uow: AllocatorUnitOfWork, sku: str) -> handlers.Outcome:
        return await handlers.promote_waiting_lines(
            uow=uow,
            sku=sku,
            default_backorders=settings.default_backorders,
            default_aging=settings.priority_aging,
            top_rank=top_rank,
            retell_limit=settings.position_retell_limit,
        )

    await _sweep(runtime, "aging", find, handle, settings.aging_sweep_interval_seconds)


async def _sweep(
    runtime: Runtime,
    name: str,
    find: Callable[[AllocatorUnitOfWork], Awaitable[list[str]]],
    handle: Callable[[AllocatorUnitOfWork, str], Awaitable[handlers.Outcome]],
    interval: float,
) -> None:
    """Every `interval`: find the SKUs with work, then handle each under its own SKU lock and
    transaction, so replicas share the work. A SKU that fails is logged and left for the next
    round: it never holds up the others."""

    async def round_() -> None:
        async with _unit_of_work(runtime) as uow:
            skus = await find(uow)
        for sku in skus:
            try:
                async with _unit_of_work(runtime) as uow:
                    outcome = await handle(uow, sku)
                    await uow.commit()
                _count(runtime, outcome)
            except Exception as error:
                log.warning(
                    "%s sweep failed for SKU %s: %s",
                    name,
                    sku,
                    error,
                    exc_info=not is_transient(error),
                )

    await repeat(f"{name} sweep", round_, interval=interval)

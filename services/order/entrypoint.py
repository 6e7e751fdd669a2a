"""Where order messages enter: upstream orders and cancels, and the allocator's decisions."""

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from faststream import Context
from faststream.kafka import KafkaMessage, KafkaRouter

from services.order import handlers
from services.order.domain import fitting
from services.order.unit_of_work import OrderUnitOfWork
from shared.contracts.inputs import CancelRequested, OrderPlaced, SubstitutionRequested
from shared.contracts.internal import (
    AllocateLine,
    CancelLine,
    LineAllocationChanged,
    SubstituteLine,
)
from shared.contracts.outputs import OrderStatusChanged
from shared.contracts.topics import (
    ALLOCATION_COMMANDS,
    LINE_ALLOCATION_CHANGED,
    ORDERS_CANCEL_REQUESTED,
    ORDERS_PLACED,
    ORDERS_STATUS_CHANGED,
    ORDERS_SUBSTITUTION_REQUESTED,
)
from shared.messaging.connection import kafka_options
from shared.messaging.errors import is_transient
from shared.messaging.position import SourcePosition
from shared.messaging.progress import read_until
from shared.messaging.records import Delivered, delivered
from shared.messaging.subscriptions import consumes, group_id
from shared.runtime import Runtime

SERVICE = "order"
log = logging.getLogger(__name__)
router = KafkaRouter()

# The outbox relay sends these; declared here so the AsyncAPI document shows them.
status_changed = router.publisher(
    ORDERS_STATUS_CHANGED.name,
    schema=OrderStatusChanged,
    description=ORDERS_STATUS_CHANGED.description,
)
allocation_commands = router.publisher(
    ALLOCATION_COMMANDS.name,
    schema=AllocateLine | CancelLine | SubstituteLine,
    title=f"{ALLOCATION_COMMANDS.name}:order",
    description="Lines to allocate, to cancel and to substitute, keyed by SKU.",
)


@consumes(router, ORDERS_PLACED, service=SERVICE)
async def on_orders_placed(
    orders: list[OrderPlaced], message: KafkaMessage, runtime: Runtime = Context()
) -> None:
    placed = delivered(orders, message)
    async with _unit_of_work(runtime) as uow:
        await uow.orders.open([order.order_id for order in orders], with_early_cancels=True)
        await uow.orders.read_purchases(order.customer.id for order in orders)
        for item in placed:
            with item.handling():
                await handlers.place_order(
                    item.body,
                    uow=uow,
                    picture_limit=_picture_limit(runtime),
                    tiers=runtime.settings.tiers,
                )
        # How far orders were read decides when an early cancel's order "did not arrive".
        for newest in _newest_per_partition(placed):
            await uow.record_progress(consumer=SERVICE, topic=ORDERS_PLACED.name, position=newest)
        await uow.commit()


@consumes(router, ORDERS_CANCEL_REQUESTED, service=SERVICE)
async def on_cancels_requested(
    requests: list[CancelRequested], message: KafkaMessage, runtime: Runtime = Context()
) -> None:
    async with _unit_of_work(runtime) as uow:
        await uow.orders.open([request.order_id for request in requests])
        for item in delivered(requests, message):
            record = item.record
            with item.handling():
                await handlers.request_cancellation(
                    item.body,
                    uow=uow,
                    cause=item.cause,
                    requested_at=datetime.fromtimestamp(record.timestamp / 1000, UTC),
                    key=record.key,
                    value=record.value,
                    headers=list(record.headers),
                )
        await uow.commit()


@consumes(router, ORDERS_SUBSTITUTION_REQUESTED, service=SERVICE)
async def on_substitutions_requested(
    requests: list[SubstitutionRequested], message: KafkaMessage, runtime: Runtime = Context()
) -> None:
    async with _unit_of_work(runtime) as uow:
        await uow.orders.open([request.order_id for request in requests])
        for item in delivered(requests, message):
            with item.handling():
                await handlers.request_substitution(
                    item.body, uow=uow, picture_limit=_picture_limit(runtime)
                )
        await uow.commit()


@consumes(router, LINE_ALLOCATION_CHANGED, service=SERVICE)
async def on_line_allocations_changed(
    changes: list[LineAllocationChanged], message: KafkaMessage, runtime: Runtime = Context()
) -> None:
    async with _unit_of_work(runtime) as uow:
        await handlers.open_for_allocation_news(changes, uow=uow)
        for item in delivered(changes, message):
            with item.handling():
                await handlers.record_allocation(
                    item.body,
                    uow=uow,
                    picture_limit=_picture_limit(runtime),
                    tiers=runtime.settings.tiers,
                )
        await uow.commit()


def _unit_of_work(runtime: Runtime) -> OrderUnitOfWork:
    return OrderUnitOfWork(runtime.session_factory, source=runtime.service, outbox=runtime.outbox)


def _newest_per_partition(placed: list[Delivered[OrderPlaced]]) -> list[SourcePosition]:
    newest: dict[int, SourcePosition] = {}
    for item in placed:
        position = item.position
        if position.partition not in newest or position.supersedes(newest[position.partition]):
            newest[position.partition] = position
    return list(newest.values())


def _picture_limit(runtime: Runtime) -> int:
    """What every consumer of orders.status-changed accepts, less room for headers."""
    return runtime.settings.max_message_bytes - fitting.HEADROOM_BYTES


async def sweep_expired_cancellations(runtime: Runtime) -> None:
    """Dead-letters cancels whose order never came; several instances share the work."""
    waited = timedelta(seconds=runtime.settings.cancel_wait_seconds)
    while True:
        expired = 0
        try:
            async with _unit_of_work(runtime) as uow:
                overdue = await handlers.cancellations_overdue(uow=uow, waited=waited)
            if overdue:
                expired = await _dead_letter_cancellations_whose_order_did_not_come(runtime, waited)
            if expired:
                runtime.metrics.dead_letters.labels(ORDERS_CANCEL_REQUESTED.name).inc(expired)
        except Exception as error:
            log.warning("cancel sweep failed: %s", error, exc_info=not is_transient(error))
        if not expired:
            await asyncio.sleep(runtime.settings.cancel_sweep_interval_seconds)


async def _dead_letter_cancellations_whose_order_did_not_come(
    runtime: Runtime, waited: timedelta
) -> int:
    async with _unit_of_work(runtime) as uow:
        handled = await uow.handled_timestamps(consumer=SERVICE, topic=ORDERS_PLACED.name)
    orders_read_until = await read_until(
        kafka_options(runtime.settings),
        group=group_id(SERVICE),
        topic=ORDERS_PLACED.name,
        handled_ms=handled,
        now=datetime.now(UTC),
    )
    if orders_read_until is None:
        return 0
    async with _unit_of_work(runtime) as uow:
        expired = await handlers.dead_letter_expired_cancellations(
            uow=uow, waited=waited, orders_read_until=orders_read_until
        )
        await uow.commit()
    return expired

"""Issue 21 defect 5: whether a customer counts as returning for a substitute line must not
depend on what else shares the batch. Played at the use case against the real database: two
waiting orders of one customer are each other's history, whether their swaps' news comes in
one batch or in two."""

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import BaseModel

from services.order import handlers
from services.order.domain.model import Order, OrderLine
from services.order.unit_of_work import OrderUnitOfWork
from shared.contracts.inputs import Customer
from shared.contracts.internal import AllocateLine, LineAllocationChanged
from shared.db.engine import SessionFactory
from tests.support.shop import unique

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

NOW = datetime(2026, 12, 7, tzinfo=UTC)


class RecordingUnitOfWork(OrderUnitOfWork):
    """Keeps what the use case published."""

    def __init__(self, sessions: SessionFactory) -> None:
        super().__init__(sessions, source="order")
        self.events: list[BaseModel] = []

    def publish(self, *, event: BaseModel, **more: Any) -> None:
        self.events.append(event)
        super().publish(event=event, **more)


async def two_waiting_orders(sessions: SessionFactory) -> tuple[Customer, list[str], str, str]:
    """Two orders of one customer, each with a mug line waiting that may be swapped for a cup."""
    customer = Customer(id=unique("c"), email="ada@shop.example")
    mug, cup = unique("MUG"), unique("CUP")
    order_ids = [unique("o"), unique("o")]
    async with OrderUnitOfWork(sessions, source="order") as uow:
        await uow.orders.open(order_ids)
        for order_id in order_ids:
            order = Order(order_id, customer, NOW, [OrderLine("1", mug, 2)])
            order.apply(waiting(order_id, mug))
            order.next_picture()
            uow.orders.place(order)
        await uow.commit()
    return customer, order_ids, mug, cup


def waiting(order_id: str, mug: str) -> LineAllocationChanged:
    return LineAllocationChanged(
        order_id=order_id,
        line_id="1",
        sku=mug,
        quantity=2,
        allocated=0,
        backordered=2,
        rejected=0,
        status="backordered",
        substitutes=[],
        revision=1,
        occurred_at=NOW,
    )


def swapped(order_id: str, mug: str, cup: str) -> LineAllocationChanged:
    return waiting(order_id, mug).model_copy(
        update={
            "backordered": 0,
            "status": "cancelled",
            "revision": 2,
            "substituted_by": cup,
            "substituted": 2,
        }
    )


async def returning_as_requested(
    sessions: SessionFactory, batches: list[list[LineAllocationChanged]]
) -> dict[str, bool]:
    """Each batch in one unit of work, as the order service's consumer runs it."""
    told: dict[str, bool] = {}
    for batch in batches:
        async with RecordingUnitOfWork(sessions) as uow:
            await handlers.open_for_allocation_news(batch, uow=uow)
            for change in batch:
                await handlers.record_allocation(change, uow=uow, picture_limit=200_000)
            await uow.commit()
            told |= {
                e.order_id: e.returning_customer for e in uow.events if isinstance(e, AllocateLine)
            }
    return told


async def test_each_order_counts_as_the_others_history_alone_and_in_one_batch(
    sessions: SessionFactory,
) -> None:
    _, (first, second), mug, cup = await two_waiting_orders(sessions)
    alone = await returning_as_requested(
        sessions, [[swapped(first, mug, cup)], [swapped(second, mug, cup)]]
    )
    assert alone == {first: True, second: True}
    _, (first, second), mug, cup = await two_waiting_orders(sessions)
    together = await returning_as_requested(
        sessions, [[swapped(first, mug, cup), swapped(second, mug, cup)]]
    )
    assert together == {first: True, second: True}


async def test_an_order_cancelled_earlier_in_the_batch_no_longer_counts(
    sessions: SessionFactory,
) -> None:
    _, (first, second), mug, cup = await two_waiting_orders(sessions)
    # the second order is cancelled earlier in the same batch: it no longer counts, exactly
    # as when its news came in a batch of its own
    cancelled = waiting(second, mug).model_copy(
        update={"backordered": 0, "status": "cancelled", "revision": 2}
    )
    together = await returning_as_requested(sessions, [[cancelled, swapped(first, mug, cup)]])
    assert together == {first: False}

"""`orders.status-changed` names the priority tier the order waits in: the one it asked for, or
the shop's default tier when it asked for none."""

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from services.order import handlers
from services.order.domain.fitting import size, worst_case
from shared.contracts.inputs import OrderPlaced
from shared.contracts.internal import LineAllocationChanged
from shared.contracts.outputs import OrderStatusChanged
from shared.priority import TIER_NAME_LENGTH, PriorityTiers
from tests.support.fakes.order import FakeOrderUnitOfWork
from tests.support.shop import order_placed

TIERS = PriorityTiers(("vip", "standard"))


def statuses_of(priority: str | None, tiers: PriorityTiers = TIERS) -> list[OrderStatusChanged]:
    async def run() -> list[OrderStatusChanged]:
        uow = FakeOrderUnitOfWork()
        placed = OrderPlaced.model_validate(order_placed("o1", ("SKU", 1), priority=priority))
        kwargs: dict[str, Any] = {"uow": uow, "picture_limit": 200_000}
        await handlers.place_order(placed, tiers=tiers, **kwargs)
        news = LineAllocationChanged(
            order_id="o1",
            line_id="1",
            sku="SKU",
            quantity=1,
            allocated=0,
            backordered=1,
            rejected=0,
            status="backordered",
            queue_position=1,
            revision=1,
            occurred_at=datetime.now(UTC),
        )
        await handlers.record_allocation(news, tiers=tiers, **kwargs)
        told = (event["event"] for event in uow.events)
        return [event for event in told if isinstance(event, OrderStatusChanged)]

    return asyncio.run(run())


@pytest.mark.parametrize(
    ("asked", "tiers", "named"),
    [
        ("vip", TIERS, "vip"),
        ("standard", TIERS, "standard"),
        (None, TIERS, "standard"),
        (None, PriorityTiers(("gold", "silver")), "silver"),
        (None, PriorityTiers(), "standard"),
    ],
    ids=["vip", "standard", "unsaid", "unsaid-other-default", "one-tier"],
)
def test_every_version_names_the_tier_the_order_waits_in(
    asked: str | None, tiers: PriorityTiers, named: str
) -> None:
    statuses = statuses_of(asked, tiers)
    assert [status.priority for status in statuses] == [named]
    assert statuses[0].model_dump(mode="json")["priority"] == named


def test_a_stored_order_of_a_tier_no_longer_configured_names_the_default_tier() -> None:
    assert TIERS.served("gold") == "standard"
    assert TIERS.served(None) == "standard"
    assert TIERS.served("vip") == "vip"


def test_the_largest_picture_has_room_for_the_longest_tier_name() -> None:
    placed = OrderPlaced.model_validate(order_placed("o1", ("SKU", 1)))
    largest = worst_case(placed)
    assert largest.priority is not None and len(largest.priority) == TIER_NAME_LENGTH
    assert size(largest) >= size(largest.model_copy(update={"priority": "x"}))


def test_a_version_published_before_the_tier_was_named_still_reads() -> None:
    body = {
        "order_id": "o1",
        "status": "backordered",
        "version": 1,
        "lines": [],
        "occurred_at": datetime.now(UTC).isoformat(),
    }
    assert OrderStatusChanged.model_validate(body).priority is None

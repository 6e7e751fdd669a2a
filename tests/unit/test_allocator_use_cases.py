"""The allocator's use cases through in-memory fakes: what each line's customer is told on
`allocation.line-changed` (status, units, place in the queue, expected date, reason) as stock
comes and goes, policies change, restocks are scheduled and the sweeps run. No broker, no
database."""

import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from services.allocator import handlers
from shared.contracts.internal import (
    AllocateLine,
    AllocationCommand,
    CancelLine,
    LineAllocationChanged,
    ReceiveStock,
    ScheduleRestock,
    SetSkuPolicy,
    SubstituteLine,
)
from shared.contracts.policy import SkuPolicyFields
from shared.contracts.topics import LINE_ALLOCATION_CHANGED
from shared.db.ports import Outgoing
from shared.messaging.errors import PoisonMessage
from tests.support.fakes.allocator import AllocatorTables, FakeAllocatorUnitOfWork

SKU, CUP = "MUG", "CUP"
_ids = itertools.count(1)


def allocate(
    order_id: str,
    quantity: int = 1,
    *,
    sku: str = SKU,
    customer: str | None = None,
    returning: bool = False,
    priority: str | None = None,
) -> AllocateLine:
    return AllocateLine(
        order_id=order_id,
        line_id="1",
        sku=sku,
        quantity=quantity,
        customer_id=customer,
        returning_customer=returning,
        priority=priority,
        rank=1 if priority == "vip" else 0,
    )


def cancel(order_id: str, reason: str | None = None) -> CancelLine:
    return CancelLine(order_id=order_id, line_id="1", sku=SKU, reason=reason)


def receive(quantity: int, *, sku: str = SKU, po_id: str | None = None) -> ReceiveStock:
    return ReceiveStock(receipt_id=f"r{next(_ids)}", sku=sku, quantity=quantity, po_id=po_id)


def policy(**fields: object) -> SetSkuPolicy:
    declared = SkuPolicyFields.model_validate({"backorders": "allow", **fields})
    return SetSkuPolicy(sku=SKU, policy=declared)


def restock(po_id: str, quantity: int, expected_at: datetime) -> ScheduleRestock:
    return ScheduleRestock(po_id=po_id, sku=SKU, quantity=quantity, expected_at=expected_at)


@dataclass
class Allocator:
    """The allocator's use cases as its subscriber and sweeps run them: each call one unit of
    work, committed, on the same tables."""

    tables: AllocatorTables = field(default_factory=AllocatorTables)
    default_backorders: str = "allow"

    async def handle(
        self, *commands: AllocationCommand | tuple[AllocationCommand, str]
    ) -> list[LineAllocationChanged]:
        """One batch; a command paired with a message id is delivered under that id."""
        batch = [
            handlers.Received(*c) if isinstance(c, tuple) else handlers.Received(c, new_id())
            for c in commands
        ]
        uow = FakeAllocatorUnitOfWork(self.tables)
        await handlers.handle_commands(batch, uow=uow, default_backorders=self.default_backorders)
        await uow.commit()
        return news(uow.events)

    async def expire(self, max_wait: timedelta | None = None) -> list[LineAllocationChanged]:
        async def find(uow: FakeAllocatorUnitOfWork) -> list[str]:
            return await handlers.skus_to_expire(uow=uow, default_max_wait=max_wait)

        async def handle(uow: FakeAllocatorUnitOfWork, sku: str) -> handlers.Outcome:
            return await handlers.expire_overdue_lines(
                uow=uow,
                sku=sku,
                default_backorders=self.default_backorders,
                default_max_wait=max_wait,
            )

        return await self._sweep(find, handle)

    async def promote(self, aging: timedelta | None = None) -> list[LineAllocationChanged]:
        async def find(uow: FakeAllocatorUnitOfWork) -> list[str]:
            return await handlers.skus_to_promote(uow=uow, default_aging=aging, top_rank=1)

        async def handle(uow: FakeAllocatorUnitOfWork, sku: str) -> handlers.Outcome:
            return await handlers.promote_waiting_lines(
                uow=uow,
                sku=sku,
                default_backorders=self.default_backorders,
                default_aging=aging,
                top_rank=1,
            )

        return await self._sweep(find, handle)

    async def _sweep(
        self,
        find: Callable[[FakeAllocatorUnitOfWork], Awaitable[list[str]]],
        handle: Callable[[FakeAllocatorUnitOfWork, str], Awaitable[handlers.Outcome]],
    ) -> list[LineAllocationChanged]:
        """A sweep's round: the SKUs with work, then each in a unit of work of its own."""
        told = []
        for sku in await find(FakeAllocatorUnitOfWork(self.tables)):
            uow = FakeAllocatorUnitOfWork(self.tables)
            await handle(uow, sku)
            await uow.commit()
            told += news(uow.events)
        return told


def new_id() -> str:
    return f"m{next(_ids)}"


def news(events: list[Outgoing]) -> list[LineAllocationChanged]:
    """The lines' news, each checked to go where the order service reads it: keyed by order."""
    told = []
    for event in events:
        assert (event["topic"], event["event_type"]) == (
            LINE_ALLOCATION_CHANGED.name,
            "LineAllocationChanged",
        )
        assert isinstance(event["event"], LineAllocationChanged)
        assert event["key"] == event["correlation_id"] == event["event"].order_id
        told.append(event["event"])
    return told


def statuses(told: list[LineAllocationChanged]) -> dict[str, str]:
    return {n.order_id: n.status for n in told}


def places(told: list[LineAllocationChanged]) -> dict[str, int | None]:
    return {n.order_id: n.queue_position for n in told}


def units(news: LineAllocationChanged) -> tuple[int, int, int]:
    return news.allocated, news.backordered, news.rejected


@pytest.fixture
def allocator() -> Allocator:
    return Allocator()


# --- stock and the queue -------------------------------------------------------------------


async def test_a_line_in_stock_is_allocated_at_once(allocator: Allocator) -> None:
    assert await allocator.handle(receive(5)) == []
    [told] = await allocator.handle(allocate("o1", 3))
    assert (told.order_id, told.line_id, told.sku, told.status) == ("o1", "1", SKU, "allocated")
    assert units(told) == (3, 0, 0)
    assert (told.queue_position, told.eta, told.reason, told.alternatives) == (None, None, None, [])
    assert allocator.tables.books[SKU]["available"] == 2


async def test_waiting_lines_are_filled_in_arrival_order(allocator: Allocator) -> None:
    told = [
        n
        for o, q in (("o1", 2), ("o2", 1), ("o3", 3))
        for n in await allocator.handle(allocate(o, q))
    ]
    assert statuses(told) == {"o1": "backordered", "o2": "backordered", "o3": "backordered"}
    assert places(told) == {"o1": 1, "o2": 2, "o3": 3}

    # the head is filled partly and stays at the head
    [head] = await allocator.handle(receive(1))
    assert (head.order_id, head.status, head.queue_position) == ("o1", "partially_allocated", 1)

    told = await allocator.handle(receive(3))
    assert statuses(told) == {"o1": "allocated", "o2": "allocated", "o3": "partially_allocated"}
    assert units(told[-1]) == (1, 2, 0)
    assert told[-1].queue_position == 1
    assert allocator.tables.waiting(SKU) == [("o3", "1")]


async def test_a_batch_decides_its_commands_in_the_order_they_arrived(
    allocator: Allocator,
) -> None:
    told = await allocator.handle(allocate("o1", 2), receive(3), allocate("o2", 2))
    assert [(n.order_id, n.status, n.queue_position) for n in told] == [
        ("o1", "backordered", 1),
        ("o1", "allocated", None),
        ("o2", "partially_allocated", 1),
    ]
    assert [n.revision for n in told] == [1, 2, 1]


async def test_a_cancel_passes_the_units_held_to_the_next_in_line(allocator: Allocator) -> None:
    await allocator.handle(allocate("leaver", 2), allocate("keeper", 2))
    assert statuses(await allocator.handle(receive(2))) == {"leaver": "allocated"}

    told = await allocator.handle(cancel("leaver", "too late"))
    assert statuses(told) == {"leaver": "cancelled", "keeper": "allocated"}
    assert (told[0].allocated, told[0].reason) == (0, "too late")
    assert allocator.tables.books[SKU]["available"] == 0


async def test_a_cancel_in_the_middle_of_the_queue_moves_those_behind_up(
    allocator: Allocator,
) -> None:
    await allocator.handle(allocate("o1"), allocate("o2"), allocate("o3"))
    assert statuses(await allocator.handle(cancel("o2"))) == {"o2": "cancelled"}
    # the gap it left counts for those behind it, until the head passes it
    assert places(await allocator.handle(allocate("o4"))) == {"o4": 3}
    assert statuses(await allocator.handle(receive(1))) == {"o1": "allocated"}
    assert places(await allocator.handle(allocate("o5"))) == {"o5": 3}


# --- early cancels -------------------------------------------------------------------------


async def test_a_cancel_before_its_allocate_cancels_the_line_on_arrival(
    allocator: Allocator,
) -> None:
    assert await allocator.handle(cancel("o1", "oops")) == []
    await allocator.handle(receive(1))
    [told] = await allocator.handle(allocate("o1"))
    assert (told.status, told.reason, told.allocated, told.revision) == ("cancelled", "oops", 0, 1)
    assert allocator.tables.books[SKU]["available"] == 1
    assert allocator.tables.early_cancels == {}


async def test_a_cancel_and_its_allocate_later_in_the_same_batch(allocator: Allocator) -> None:
    told = await allocator.handle(cancel("o1", "oops"), allocate("o1"), allocate("o2"))
    assert [(n.order_id, n.status, n.queue_position) for n in told] == [
        ("o1", "cancelled", None),
        ("o2", "backordered", 1),
    ]
    assert allocator.tables.early_cancels == {}


# --- policies ------------------------------------------------------------------------------


async def test_a_sku_denying_backorders_refuses_what_it_cannot_fill(allocator: Allocator) -> None:
    await allocator.handle(policy(backorders="deny"), receive(1))
    [told] = await allocator.handle(allocate("o1", 3))
    assert (told.status, units(told)) == ("allocated", (1, 0, 2))
    assert told.reason == f"backorders are not allowed for SKU {SKU}"
    [told] = await allocator.handle(allocate("o2"))
    assert (told.status, told.queue_position) == ("rejected", None)


async def test_a_cap_on_the_skus_backorders_rejects_the_excess(allocator: Allocator) -> None:
    await allocator.handle(policy(max_backorder_quantity=3))
    told = await allocator.handle(allocate("within", 3), allocate("beyond", 2))
    assert statuses(told) == {"within": "backordered", "beyond": "rejected"}
    assert told[1].reason == f"maximum backorder quantity 3 for SKU {SKU} would be exceeded"


async def test_a_customer_waits_for_at_most_the_per_customer_cap(allocator: Allocator) -> None:
    await allocator.handle(policy(max_backorder_quantity_per_customer=2))
    first = await allocator.handle(allocate("o1", 1, customer="ann"))
    # the cap counts what the customer waits for already, stored or decided in this batch
    told = await allocator.handle(
        allocate("o2", 2, customer="ann"),
        allocate("o3", 2, customer="bob"),
        allocate("o4", 1, customer="ann"),
    )
    assert statuses(first) == {"o1": "backordered"}
    assert [(n.order_id, n.status, units(n)) for n in told] == [
        ("o2", "backordered", (0, 1, 1)),
        ("o3", "backordered", (0, 2, 0)),
        ("o4", "rejected", (0, 0, 1)),
    ]
    assert told[0].reason == (
        f"maximum backorder quantity 2 per customer for SKU {SKU} would be exceeded"
    )
    # a customer whose line is filled may wait again
    await allocator.handle(receive(1))
    [again] = await allocator.handle(allocate("o5", 1, customer="ann"))
    assert again.status == "backordered"


async def test_a_discontinued_sku_rejects_new_waits_and_keeps_the_lines_waiting_already(
    allocator: Allocator,
) -> None:
    await allocator.handle(allocate("before", 2))
    await allocator.handle(policy(discontinued=True), receive(1))
    [after] = await allocator.handle(allocate("after", 2))
    assert (after.status, units(after)) == ("rejected", (0, 0, 2))
    assert after.reason == f"SKU {SKU} is discontinued and will not be restocked"
    assert allocator.tables.waiting(SKU) == [("before", "1")]
    [filled] = await allocator.handle(receive(1))
    assert (filled.order_id, filled.status) == ("before", "allocated")


async def test_only_returning_customers_may_wait_where_the_sku_says_so(
    allocator: Allocator,
) -> None:
    await allocator.handle(policy(backorders="returning_customers"))
    told = await allocator.handle(
        allocate("new", customer="ann"), allocate("known", customer="bob", returning=True)
    )
    assert statuses(told) == {"new": "rejected", "known": "backordered"}
    assert told[0].reason == (
        f"backorders for SKU {SKU} are only accepted from returning customers"
    )


async def test_a_deleted_policy_puts_the_sku_back_on_the_default() -> None:
    allocator = Allocator(default_backorders="deny")
    await allocator.handle(policy(backorders="allow"))
    assert statuses(await allocator.handle(allocate("o1"))) == {"o1": "backordered"}
    await allocator.handle(SetSkuPolicy(sku=SKU, policy=None))
    assert statuses(await allocator.handle(allocate("o2"))) == {"o2": "rejected"}
    assert allocator.tables.books[SKU]["policy"] is None


async def test_a_waiting_line_is_told_the_offer_and_the_alternatives_in_stock(
    allocator: Allocator,
) -> None:
    await allocator.handle(
        policy(alternatives=[CUP, "JUG"], delay_incentive="10% off"), receive(2, sku=CUP)
    )
    [waiting] = await allocator.handle(allocate("o1", 2))
    assert (waiting.alternatives, waiting.substitutes) == ([CUP], [CUP, "JUG"])
    assert waiting.delay_incentive == "10% off"
    [filled] = await allocator.handle(receive(2))
    assert (filled.status, filled.alternatives, filled.substitutes) == ("allocated", [], [])
    assert filled.delay_incentive is None


# --- substitution --------------------------------------------------------------------------


def substitute(order_id: str, by: str = CUP, reason: str | None = None) -> SubstituteLine:
    return SubstituteLine(order_id=order_id, line_id="1", sku=SKU, substitute=by, reason=reason)


async def test_a_waiting_line_substituted_leaves_the_queue_and_its_place_passes_on(
    allocator: Allocator,
) -> None:
    await allocator.handle(policy(alternatives=[CUP]), allocate("o1", 2), allocate("o2"))
    told = await allocator.handle(substitute("o1", reason="sooner"))
    assert [(n.order_id, n.status, n.substituted_by, n.substituted) for n in told] == [
        ("o1", "cancelled", CUP, 2)
    ]
    assert told[0].reason == f"substituted by {CUP} at the customer's request: sooner"
    assert places(await allocator.handle(receive(1))) == {"o2": None}


async def test_a_partly_allocated_line_keeps_what_it_holds_when_substituted(
    allocator: Allocator,
) -> None:
    await allocator.handle(policy(alternatives=[CUP]), allocate("o1", 3), receive(1))
    [told] = await allocator.handle(substitute("o1"))
    assert (told.status, units(told), told.substituted_by, told.substituted) == (
        "allocated",
        (1, 0, 2),
        CUP,
        2,
    )
    # a repeated request finds nothing waiting: no news
    assert await allocator.handle(substitute("o1")) == []


async def test_an_alternative_the_policy_no_longer_offers_is_refused_and_nothing_changes(
    allocator: Allocator,
) -> None:
    await allocator.handle(policy(alternatives=[CUP]), allocate("o1"))
    await allocator.handle(policy(alternatives=["JUG"]))
    stock = receive(1, sku=CUP)  # its book is decided first, in SKU order
    with pytest.raises(PoisonMessage, match=f"{CUP} is no longer an alternative of {SKU}"):
        await allocator.handle((stock, "m-1"), substitute("o1"))
    # the batch rolled back, the stock of the book decided before it too: a redelivery counts
    assert CUP not in allocator.tables.books
    assert allocator.tables.waiting(SKU) == [("o1", "1")]
    await allocator.handle((stock, "m-1"))
    assert allocator.tables.books[CUP]["available"] == 1


# --- expected dates ------------------------------------------------------------------------


DAY = datetime(2099, 1, 4, tzinfo=UTC)


def day(days: int) -> datetime:
    return DAY + timedelta(days=days)


async def test_dates_follow_the_schedule_and_a_delay_reaches_only_those_it_delays(
    allocator: Allocator,
) -> None:
    await allocator.handle(restock("po1", 2, day(1)), restock("po2", 2, day(9)))
    told = await allocator.handle(allocate("o1", 2), allocate("o2", 2), allocate("o3", 1))
    assert [(n.eta, n.eta_change) for n in told] == [(day(1), "set"), (day(9), "set"), (None, None)]

    [delayed] = await allocator.handle(restock("po2", 2, day(16)))
    assert (delayed.order_id, delayed.eta, delayed.eta_change) == ("o2", day(16), "delayed")

    # po1 arrives, naming itself: the first line is filled, the others keep their dates
    told = await allocator.handle(receive(2, po_id="po1"))
    assert statuses(told) == {"o1": "allocated"}
    assert allocator.tables.restocks == {(SKU, "po2"): (2, day(16))}


async def test_a_partial_receipt_leaves_the_rest_of_its_purchase_order_expected(
    allocator: Allocator,
) -> None:
    await allocator.handle(restock("po1", 5, day(1)))
    await allocator.handle(receive(2, po_id="po1"))
    assert allocator.tables.restocks == {(SKU, "po1"): (3, day(1))}


async def test_a_withdrawn_restock_clears_the_dates_it_gave(allocator: Allocator) -> None:
    await allocator.handle(restock("po1", 2, day(1)), allocate("o1"))
    [cleared] = await allocator.handle(restock("po1", 0, day(1)))
    assert (cleared.eta, cleared.eta_change, cleared.status) == (None, "cleared", "backordered")
    assert allocator.tables.restocks == {}


# --- duplicates ----------------------------------------------------------------------------


async def test_a_command_delivered_twice_is_handled_once(allocator: Allocator) -> None:
    stock = receive(2)
    assert await allocator.handle((stock, "m-1"), (stock, "m-1")) == []
    assert await allocator.handle((stock, "m-1")) == []
    assert allocator.tables.books[SKU]["available"] == 2
    assert allocator.tables.books[SKU]["received_total"] == 2


async def test_the_same_line_asked_for_again_is_decided_once(allocator: Allocator) -> None:
    await allocator.handle(receive(1))
    assert statuses(await allocator.handle(allocate("o1", 2))) == {"o1": "partially_allocated"}
    assert await allocator.handle(allocate("o1", 2)) == []
    assert await allocator.handle(allocate("o1", 2), allocate("o1", 2)) == []


async def test_a_line_told_again_after_a_rollback_carries_the_same_event_id(
    allocator: Allocator,
) -> None:
    """The order service drops an event id it has seen: a redelivery tells nothing twice."""
    command = allocate("o1")
    first, replay = (
        FakeAllocatorUnitOfWork(allocator.tables),
        FakeAllocatorUnitOfWork(allocator.tables),
    )
    for uow in (first, replay):  # the first never committed
        await handlers.handle_commands(
            [handlers.Received(command, "m-1")], uow=uow, default_backorders="allow"
        )
    assert [e["event_id"] for e in first.events] == [e["event_id"] for e in replay.events]
    assert len(first.events) == 1


# --- priority tiers ------------------------------------------------------------------------


async def test_a_priority_line_goes_ahead_and_those_it_passed_are_told(
    allocator: Allocator,
) -> None:
    await allocator.handle(allocate("o1"), allocate("o2"))
    told = await allocator.handle(allocate("vip", priority="vip"))
    assert places(told) == {"vip": 1, "o1": 2, "o2": 3}
    assert statuses(await allocator.handle(receive(1))) == {"vip": "allocated"}
    assert statuses(await allocator.handle(receive(1))) == {"o1": "allocated"}


# --- sweeps --------------------------------------------------------------------------------


async def test_lines_past_their_maximum_wait_expire_and_their_units_pass_on(
    allocator: Allocator,
) -> None:
    await allocator.handle(policy(max_wait=timedelta(seconds=60)), allocate("old", 2), receive(1))
    assert await allocator.expire() == []
    allocator.tables.later(timedelta(minutes=2))
    await allocator.handle(allocate("new", 1))

    told = await allocator.expire()
    assert [(n.order_id, n.status, n.allocated) for n in told] == [
        ("old", "expired", 0),
        ("new", "allocated", 1),
    ]
    assert told[0].reason == "waited longer than the maximum of 1 minute"
    assert await allocator.expire() == []


async def test_the_default_maximum_wait_applies_where_the_sku_sets_none(
    allocator: Allocator,
) -> None:
    await allocator.handle(allocate("o1"))
    allocator.tables.later(timedelta(hours=2))
    assert await allocator.expire() == []
    assert statuses(await allocator.expire(timedelta(hours=1))) == {"o1": "expired"}


async def test_a_restock_that_does_not_come_is_no_ones_date(allocator: Allocator) -> None:
    due = datetime.now(UTC) + timedelta(minutes=10)
    await allocator.handle(restock("late", 2, due), restock("later", 2, day(30)))
    told = await allocator.handle(allocate("o1", 2), allocate("o2", 2))
    assert [n.eta for n in told] == [due, day(30)]

    # (`later` moves every stored time back, the restocks' dates too)
    allocator.tables.later(timedelta(minutes=20))
    told = await allocator.expire()
    assert [(n.order_id, n.eta, n.eta_change) for n in told] == [
        ("o1", day(30) - timedelta(minutes=20), "delayed"),
        ("o2", None, "cleared"),
    ]
    assert statuses(told) == {"o1": "backordered", "o2": "backordered"}
    [third] = await allocator.handle(allocate("o3"))
    assert third.eta is None
    assert await allocator.expire() == []


async def test_aging_lifts_a_waiting_line_ahead_of_priority_lines_that_come_later(
    allocator: Allocator,
) -> None:
    await allocator.handle(policy(aging=timedelta(seconds=3)), allocate("patient"))
    await allocator.handle(allocate("early_vip", priority="vip"))
    assert await allocator.promote() == []

    allocator.tables.later(timedelta(seconds=10))
    told = await allocator.promote()
    assert places(told) == {"patient": 2}
    assert allocator.tables.waiting(SKU) == [("early_vip", "1"), ("patient", "1")]
    assert await allocator.promote() == []

    assert places(await allocator.handle(allocate("late_vip", priority="vip"))) == {"late_vip": 3}
    told = await allocator.handle(receive(2))
    assert statuses(told) == {"early_vip": "allocated", "patient": "allocated"}
    assert allocator.tables.waiting(SKU) == [("late_vip", "1")]

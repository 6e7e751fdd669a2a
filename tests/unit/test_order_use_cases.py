"""The order service's use cases through in-memory fakes: what each asks of the SKUs' books on
`allocation.commands`, which versions of an order it tells on `orders.status-changed`, and what
it dead-letters. Each batch runs in a unit of work of its own, as the consumers run them, on
tables the batches share. No broker, no database."""

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from services.order import handlers
from services.order.domain import fitting
from shared.contracts.headers import (
    DLQ_ORIGINAL_OFFSET,
    DLQ_ORIGINAL_PARTITION,
    DLQ_ORIGINAL_TOPIC,
    DLQ_REASON,
)
from shared.contracts.inputs import CancelRequested, OrderPlaced, SubstitutionRequested
from shared.contracts.internal import AllocateLine, CancelLine, LineAllocationChanged
from shared.contracts.outputs import LineStatus, OrderStatusChanged
from shared.contracts.topics import (
    ALLOCATION_COMMANDS,
    ORDERS_CANCEL_REQUESTED,
    ORDERS_STATUS_CHANGED,
)
from shared.db.ports import Outgoing
from shared.messaging.dead_letter import DeadLetter
from shared.messaging.errors import PoisonMessage
from shared.priority import PriorityTiers
from tests.support.fakes.order import FakeOrderUnitOfWork, OrderTables
from tests.support.shop import order_placed

COMMANDS, STATUSES = ALLOCATION_COMMANDS.name, ORDERS_STATUS_CHANGED.name
TIERS = PriorityTiers(("vip", "standard"))
LIMIT = 200_000
NOW = datetime(2027, 3, 1, tzinfo=UTC)
WAITED = timedelta(seconds=8)


def placed(order_id: str = "o1", *lines: tuple[str, int], **more: Any) -> OrderPlaced:
    body = order_placed(order_id, *(lines or (("MUG", 2),)), priority=more.pop("priority", None))
    body["customer"] |= more
    # One instant, so the same order placed again is the same payload.
    return OrderPlaced.model_validate(body | {"placed_at": NOW.isoformat()})


def news(
    line_id: str = "1",
    status: LineStatus = "backordered",
    *,
    order_id: str = "o1",
    sku: str = "MUG",
    revision: int = 1,
    **more: Any,
) -> LineAllocationChanged:
    quantity = more.pop("quantity", 2)
    counts = {"allocated": 0, "backordered": 0, "rejected": 0}
    counts |= {"allocated": quantity} if status == "allocated" else {}
    counts |= {"backordered": quantity} if status == "backordered" else {}
    counts |= {"rejected": quantity} if status == "rejected" else {}
    return LineAllocationChanged(
        order_id=order_id,
        line_id=line_id,
        sku=sku,
        quantity=quantity,
        status=status,
        revision=revision,
        occurred_at=NOW,
        **(counts | more),
    )


class OrderService:
    """The order service's consumers as the entrypoint runs them: each call one batch, in a
    unit of work of its own that commits only if every message of it was handled."""

    def __init__(self, tiers: PriorityTiers = TIERS) -> None:
        self.tables = OrderTables()
        self.tiers = tiers

    def unit_of_work(self) -> FakeOrderUnitOfWork:
        return FakeOrderUnitOfWork(self.tables)

    async def place(self, *orders: OrderPlaced, limit: int = LIMIT) -> FakeOrderUnitOfWork:
        uow = self.unit_of_work()
        await uow.orders.open([order.order_id for order in orders], with_early_cancels=True)
        await uow.orders.read_purchases(order.customer.id for order in orders)
        for order in orders:
            await handlers.place_order(order, uow=uow, picture_limit=limit, tiers=self.tiers)
        await uow.commit()
        return uow

    async def cancel(
        self,
        order_id: str = "o1",
        *line_ids: str,
        reason: str | None = None,
        offset: int = 7,
        requested_at: datetime = NOW,
        commit: bool = True,
    ) -> FakeOrderUnitOfWork:
        request = CancelRequested(order_id=order_id, line_ids=list(line_ids) or None, reason=reason)
        uow = self.unit_of_work()
        await handlers.request_cancellation(
            request,
            uow=uow,
            cause=f"{ORDERS_CANCEL_REQUESTED.name}/3/{offset}",
            requested_at=requested_at,
            key=order_id.encode(),
            value=request.model_dump_json().encode(),
            headers=[("event-id", b"e-" + str(offset).encode())],
        )
        if commit:
            await uow.commit()
        return uow

    async def substitute(
        self, line_id: str, sku: str, *, order_id: str = "o1", limit: int = LIMIT
    ) -> FakeOrderUnitOfWork:
        request = SubstitutionRequested(order_id=order_id, line_id=line_id, sku=sku)
        uow = self.unit_of_work()
        await handlers.request_substitution(request, uow=uow, picture_limit=limit)
        await uow.commit()
        return uow

    async def hear(self, *changes: LineAllocationChanged) -> FakeOrderUnitOfWork:
        uow = self.unit_of_work()
        await handlers.open_for_allocation_news(changes, uow=uow)
        for change in changes:
            await handlers.record_allocation(change, uow=uow, picture_limit=LIMIT, tiers=self.tiers)
        await uow.commit()
        return uow


def shape(events: list[Outgoing]) -> list[tuple[str, str, str]]:
    """Where the news goes and as what: topic, key (its partition), type."""
    return [(e["topic"], e["key"], e["event_type"]) for e in events]


def statuses(uow: FakeOrderUnitOfWork) -> list[tuple[int, str]]:
    told = [e["event"] for e in uow.events if e["topic"] == STATUSES]
    return [(s.version, s.status) for s in told if isinstance(s, OrderStatusChanged)]


def told(uow: FakeOrderUnitOfWork) -> OrderStatusChanged:
    """The latest version the batch told."""
    event = [e["event"] for e in uow.events if e["topic"] == STATUSES][-1]
    assert isinstance(event, OrderStatusChanged)
    return event


def requested(uow: FakeOrderUnitOfWork) -> list[AllocateLine]:
    return [e["event"] for e in uow.events if isinstance(e["event"], AllocateLine)]


def reason_of(letter: DeadLetter) -> str:
    return dict(letter.headers)[DLQ_REASON].decode()


# --- an order placed -----------------------------------------------------------------------


async def test_each_line_of_a_new_order_is_requested_from_its_skus_book() -> None:
    uow = await OrderService().place(placed("o1", ("MUG", 2), ("LAMP", 1)))
    assert shape(uow.events) == [
        (COMMANDS, "MUG", "AllocateLine"),
        (COMMANDS, "LAMP", "AllocateLine"),
    ], "no version before a book decided"
    assert (uow.events[0]["correlation_id"], uow.events[0]["event"]) == (
        "o1",
        AllocateLine(
            order_id="o1",
            line_id="1",
            sku="MUG",
            quantity=2,
            customer_id="c-o1",
            returning_customer=False,
            priority=None,
            rank=0,
        ),
    )


async def test_a_priority_order_asks_for_its_tiers_rank() -> None:
    uow = await OrderService().place(placed(priority="vip"))
    assert [(line.priority, line.rank) for line in requested(uow)] == [("vip", 1)]


async def test_the_same_order_again_has_the_effect_of_once() -> None:
    service, order = OrderService(), placed()
    await service.place(order)
    elsewhere = timezone(timedelta(hours=2))
    again = order.model_copy(update={"placed_at": order.placed_at.astimezone(elsewhere)})
    assert (await service.place(again)).events == []
    assert (await service.place(order, order)).events == []


async def test_the_same_order_twice_in_one_batch_is_requested_once() -> None:
    uow = await OrderService().place(placed(), placed())
    assert shape(uow.events) == [(COMMANDS, "MUG", "AllocateLine")]


@pytest.mark.parametrize(
    "other",
    [placed("o1", ("MUG", 5)), placed(priority="vip"), placed(name="Grace")],
    ids=["quantity", "priority", "customer"],
)
async def test_the_same_order_id_with_another_payload_is_a_conflict(other: OrderPlaced) -> None:
    service = OrderService()
    await service.place(placed())
    with pytest.raises(PoisonMessage, match="conflict: order o1 was already placed with a"):
        await service.place(other)
    assert service.tables.orders["o1"].lines[0].quantity == 2


async def test_an_order_whose_status_could_outgrow_a_message_is_refused() -> None:
    service = OrderService()
    with pytest.raises(PoisonMessage, match=r"order too large: .* split it into smaller orders"):
        await service.place(placed(), limit=1000)
    assert service.tables.orders == {}


async def test_an_unknown_priority_tier_is_refused_with_the_shops_tiers() -> None:
    service = OrderService()
    with pytest.raises(PoisonMessage, match=r"unknown priority tier 'gold': .* vip, standard"):
        await service.place(placed(priority="gold"))
    assert service.tables.orders == {}


async def test_a_customer_who_bought_here_before_asks_as_returning() -> None:
    service = OrderService()
    await service.place(placed("o1", id="c1"))
    await service.hear(news())  # told: backordered
    second = await service.place(placed("o2", id="c1"))
    said_no = await service.place(placed("o3", id="c1", returning=False))
    assert [line.returning_customer for line in requested(second)] == [True]
    assert [line.returning_customer for line in requested(said_no)] == [False], "the shop wins"


async def test_orders_that_got_nothing_or_are_placed_together_make_no_history() -> None:
    service = OrderService()
    await service.place(placed("o1", id="c1"))
    await service.hear(news(status="cancelled"))
    together = await service.place(placed("o2", id="c1"), placed("o3", id="c1"))
    assert [line.returning_customer for line in requested(together)] == [False, False]
    shop_says = await service.place(placed("o4", id="c2", returning=True))
    assert [line.returning_customer for line in requested(shop_says)] == [True]


# --- a cancel before its order -------------------------------------------------------------


async def test_a_cancel_before_its_order_waits_for_it_and_cancels_it_on_arrival() -> None:
    service = OrderService()
    early = await service.cancel(reason="oops")
    assert early.events == [] and early.dead_letters == []
    uow = await service.place(placed("o1", ("MUG", 2), ("LAMP", 1)))
    assert shape(uow.events) == [(STATUSES, "o1", "OrderStatusChanged")], "no book is asked"
    assert (told(uow).version, told(uow).status, told(uow).reason) == (1, "cancelled", "oops")
    assert service.tables.pending == {}, "taken with its order"


async def test_a_cancel_of_some_lines_before_the_order_spares_the_others() -> None:
    service = OrderService()
    await service.cancel("o1", "2")
    uow = await service.place(placed("o1", ("MUG", 2), ("LAMP", 1)))
    assert shape(uow.events) == [(COMMANDS, "MUG", "AllocateLine")]
    answered = await service.hear(news("1", "allocated"))
    assert [(line.line_id, line.status) for line in told(answered).lines] == [
        ("1", "allocated"),
        ("2", "cancelled"),
    ]


async def test_a_cancel_redelivered_before_its_order_is_kept_once() -> None:
    service = OrderService()
    await service.cancel("o1", "7")
    await service.cancel("o1", "7")
    assert len(service.tables.pending) == 1
    uow = await service.place(placed())
    assert len(uow.dead_letters) == 1


async def test_an_early_cancel_naming_lines_the_order_lacks_is_dead_lettered_as_it_came() -> None:
    service = OrderService()
    cancelled = await service.cancel("o1", "7", offset=42)
    value = CancelRequested(order_id="o1", line_ids=["7"]).model_dump_json().encode()
    uow = await service.place(placed())
    (letter,) = uow.dead_letters
    assert (letter.topic, letter.key, letter.value) == (ORDERS_CANCEL_REQUESTED.dlq, b"o1", value)
    headers = dict(letter.headers)
    assert reason_of(letter) == "order o1 has no line(s) 7"
    assert headers["event-id"] == b"e-42", "the original headers stay"
    assert (
        headers[DLQ_ORIGINAL_TOPIC],
        headers[DLQ_ORIGINAL_PARTITION],
        headers[DLQ_ORIGINAL_OFFSET],
    ) == (ORDERS_CANCEL_REQUESTED.name.encode(), b"3", b"42")
    assert shape(uow.events) == [(COMMANDS, "MUG", "AllocateLine")], "the order goes on"
    assert cancelled.dead_letters == []


async def test_a_cancel_kept_in_a_batch_that_failed_is_not_kept() -> None:
    service = OrderService()
    await service.cancel(commit=False)
    assert service.tables.pending == {}
    assert shape((await service.place(placed())).events) == [(COMMANDS, "MUG", "AllocateLine")]


# --- a cancel after its order --------------------------------------------------------------


async def test_a_cancel_asks_each_open_line_s_book_and_tells_nothing_until_it_confirms() -> None:
    service = OrderService()
    await service.place(placed("o1", ("MUG", 2), ("LAMP", 1)))
    await service.hear(news("1"), news("2", "allocated", sku="LAMP", quantity=1))
    uow = await service.cancel(reason="changed my mind")
    assert shape(uow.events) == [(COMMANDS, "MUG", "CancelLine"), (COMMANDS, "LAMP", "CancelLine")]
    assert uow.events[0]["event"] == CancelLine(
        order_id="o1", line_id="1", sku="MUG", reason="changed my mind"
    )
    again = await service.cancel(reason="changed my mind")
    assert [e["event_id"] for e in again.events] == [e["event_id"] for e in uow.events], (
        "a line is cancelled at most once"
    )
    confirmed = await service.hear(
        news("1", "cancelled", revision=2),
        news("2", "cancelled", sku="LAMP", quantity=1, revision=2),
    )
    # each book's word is a version of its own, even in one batch
    assert statuses(confirmed) == [(2, "allocated"), (3, "cancelled")]


async def test_a_cancel_of_one_line_asks_only_its_book() -> None:
    service = OrderService()
    await service.place(placed("o1", ("MUG", 2), ("LAMP", 1)))
    uow = await service.cancel("o1", "2")
    assert shape(uow.events) == [(COMMANDS, "LAMP", "CancelLine")]
    assert service.tables.orders["o1"].lines[1].cancel_requested, "kept for a late substitute"


async def test_a_cancel_of_a_closed_line_asks_nothing() -> None:
    service = OrderService()
    await service.place(placed())
    await service.hear(news(status="rejected"))
    assert (await service.cancel()).events == []


async def test_a_cancel_naming_lines_the_order_lacks_is_refused() -> None:
    service = OrderService()
    await service.place(placed())
    with pytest.raises(PoisonMessage, match="order o1 has no line"):
        await service.cancel("o1", "1", "9")
    assert not service.tables.orders["o1"].lines[0].cancel_requested


# --- a substitution ------------------------------------------------------------------------


async def waiting_for_a_mug(service: OrderService) -> None:
    """Order o1: line 1 waits for 2 mugs (cups may stand in), line 2 has its lamp."""
    await service.place(placed("o1", ("MUG", 2), ("LAMP", 1)))
    await service.hear(
        news("1", substitutes=["CUP"]), news("2", "allocated", sku="LAMP", quantity=1)
    )


async def test_a_substitution_asks_the_waiting_line_s_book_to_let_it_go() -> None:
    service = OrderService()
    await waiting_for_a_mug(service)
    uow = await service.substitute("1", "CUP")
    assert shape(uow.events) == [(COMMANDS, "MUG", "SubstituteLine")]
    assert uow.events[0]["event"].model_dump(include={"line_id", "substitute"}) == {
        "line_id": "1",
        "substitute": "CUP",
    }


async def test_the_substitute_is_requested_and_one_version_shows_both_lines() -> None:
    service = OrderService()
    await waiting_for_a_mug(service)
    await service.substitute("1", "CUP")
    swapped = await service.hear(
        news("1", "cancelled", revision=2, substituted_by="CUP", substituted=2)
    )
    assert shape(swapped.events) == [(COMMANDS, "CUP", "AllocateLine")], "no version yet"
    assert [(line.line_id, line.sku, line.quantity) for line in requested(swapped)] == [
        ("1~CUP", "CUP", 2)
    ]
    decided = await service.hear(news("1~CUP", "allocated", sku="CUP"))
    assert statuses(decided) == [(2, "allocated")]
    assert [(line.line_id, line.status, line.substituted) for line in told(decided).lines] == [
        ("1", "substituted", 2),
        ("2", "allocated", 0),
        ("1~CUP", "allocated", 0),
    ]
    assert (await service.substitute("1", "CUP")).events == [], "a repeat changes nothing"


@pytest.mark.parametrize(
    ("order_id", "line_id", "sku", "reason"),
    [
        ("o9", "1", "CUP", "unknown order o9"),
        ("o1", "9", "CUP", "order o1 has no line 9"),
        ("o1", "2", "CUP", "line 2 of order o1 is not waiting (status allocated)"),
        ("o1", "1", "BOWL", "BOWL is not an alternative of MUG (its alternatives: CUP)"),
    ],
)
async def test_a_substitution_the_order_cannot_take_is_refused_with_the_reason(
    order_id: str, line_id: str, sku: str, reason: str
) -> None:
    service = OrderService()
    await waiting_for_a_mug(service)
    with pytest.raises(PoisonMessage) as refused:
        await service.substitute(line_id, sku, order_id=order_id)
    assert str(refused.value) == reason


async def test_a_substitution_of_a_line_being_cancelled_is_refused() -> None:
    service = OrderService()
    await waiting_for_a_mug(service)
    await service.cancel("o1", "1")
    with pytest.raises(PoisonMessage, match="line 1 of order o1 is being cancelled"):
        await service.substitute("1", "CUP")


async def test_a_substitution_that_could_outgrow_a_message_is_refused() -> None:
    service = OrderService()
    await waiting_for_a_mug(service)
    # The limit the order was placed within has no room for a third line.
    limit = fitting.size(fitting.worst_case(placed("o1", ("MUG", 2), ("LAMP", 1))))
    with pytest.raises(PoisonMessage, match="order too large: with a line for CUP"):
        await service.substitute("1", "CUP", limit=limit)


async def test_a_substitute_arriving_after_a_cancel_is_born_cancelled_and_never_requested() -> None:
    service = OrderService()
    await waiting_for_a_mug(service)
    await service.substitute("1", "CUP")
    await service.cancel(reason="changed my mind")
    uow = await service.hear(
        news("1", "cancelled", revision=2, substituted_by="CUP", substituted=2),
        news("2", "cancelled", sku="LAMP", quantity=1, revision=2),
    )
    assert requested(uow) == []
    # the lamp's book confirms after the swap's news: the lamp is still told, as allocated
    assert statuses(uow) == [(2, "allocated"), (3, "cancelled")]
    assert [(line.line_id, line.status) for line in told(uow).lines] == [
        ("1", "cancelled"),
        ("2", "cancelled"),
        ("1~CUP", "cancelled"),
    ]


# --- a customer's history for a substitute -------------------------------------------------


async def two_waiting_orders(service: OrderService) -> None:
    for order_id in ("o1", "o2"):
        await service.place(placed(order_id, id="c1"))
        await service.hear(news(order_id=order_id, substitutes=["CUP"]))


def swap(order_id: str) -> LineAllocationChanged:
    return news(
        "1", "cancelled", order_id=order_id, revision=2, substituted_by="CUP", substituted=2
    )


async def test_each_order_counts_as_the_others_history_alone_and_in_one_batch() -> None:
    alone, together = OrderService(), OrderService()
    await two_waiting_orders(alone)
    first, second = await alone.hear(swap("o1")), await alone.hear(swap("o2"))
    assert [line.returning_customer for line in requested(first) + requested(second)] == [
        True,
        True,
    ]
    await two_waiting_orders(together)
    both = await together.hear(swap("o1"), swap("o2"))
    assert [line.returning_customer for line in requested(both)] == [True, True]


async def test_an_order_is_not_its_own_history_nor_one_cancelled_earlier_in_the_batch() -> None:
    service = OrderService()
    await two_waiting_orders(service)
    cancelled = news(order_id="o2", status="cancelled", revision=2)
    uow = await service.hear(cancelled, swap("o1"))
    assert [line.returning_customer for line in requested(uow)] == [False]


async def test_a_substitute_of_a_tier_no_longer_configured_waits_in_the_default_one() -> None:
    service = OrderService()
    await service.place(placed(priority="vip"))
    await service.hear(news(substitutes=["CUP"]))
    service.tiers = PriorityTiers(("gold", "standard"))
    uow = await service.hear(swap("o1"))
    assert [(line.priority, line.rank) for line in requested(uow)] == [("vip", 0)]


# --- allocation news -----------------------------------------------------------------------


async def test_a_version_is_told_once_every_line_is_decided() -> None:
    service = OrderService()
    await service.place(placed("o1", ("MUG", 2), ("LAMP", 1)))
    first = await service.hear(news("1", "allocated"))
    assert first.events == []
    second = await service.hear(news("2", "backordered", sku="LAMP", quantity=1, queue_position=3))
    assert shape(second.events) == [(STATUSES, "o1", "OrderStatusChanged")]
    assert statuses(second) == [(1, "partially_allocated")]
    assert [(line.line_id, line.status) for line in told(second).lines] == [
        ("1", "allocated"),
        ("2", "backordered"),
    ]


async def test_a_new_version_only_when_something_the_customer_sees_changed() -> None:
    service = OrderService()
    await service.place(placed())
    told_versions = [
        statuses(await service.hear(change))
        for change in (
            news(queue_position=3),
            news(queue_position=3, revision=2),  # nothing visible changed
            news(queue_position=1, revision=3),
            news(queue_position=1, revision=3),  # redelivered
            news("1", "allocated", revision=2),  # older than the one applied
            news("1", "allocated", revision=4),
        )
    ]
    assert told_versions == [
        [(1, "backordered")],
        [],
        [(2, "backordered")],
        [],
        [],
        [(3, "allocated")],
    ]


async def test_news_for_an_unknown_order_is_refused() -> None:
    with pytest.raises(PoisonMessage, match="allocation news for unknown order o9"):
        await OrderService().hear(news(order_id="o9"))


async def test_news_in_a_batch_that_failed_is_heard_again_as_news() -> None:
    service = OrderService()
    await service.place(placed())
    uow = service.unit_of_work()
    await handlers.record_allocation(news(), uow=uow, picture_limit=LIMIT)
    assert statuses(uow) == [(1, "backordered")]  # never committed: never sent
    assert statuses(await service.hear(news())) == [(1, "backordered")]


async def test_a_use_case_leaves_the_commit_to_the_batch_it_is_part_of() -> None:
    service = OrderService()
    uow = service.unit_of_work()
    await handlers.place_order(placed(), uow=uow, picture_limit=LIMIT)
    assert (len(uow.events), uow.committed, service.tables.orders) == (1, False, {})


# --- cancels whose order never came --------------------------------------------------------


async def kept_cancel(
    service: OrderService, order_id: str, *, requested: datetime | None, received: datetime
) -> None:
    """A cancel kept for `order_id`, requested and received at these times."""
    await service.cancel(order_id, requested_at=requested or NOW)
    (row,) = [row for row in service.tables.pending.values() if row.order_id == order_id]
    row.requested_at, row.received_at = requested, received


async def test_a_cancel_is_overdue_once_requested_and_received_longer_ago_than_the_wait() -> None:
    service, now = OrderService(), datetime.now(UTC)

    async def overdue() -> bool:
        return await handlers.cancellations_overdue(uow=service.unit_of_work(), waited=WAITED)

    assert not await overdue()
    await kept_cancel(service, "o1", requested=now, received=now)
    assert not await overdue()
    await kept_cancel(service, "o2", requested=now, received=now - 2 * WAITED)
    assert not await overdue(), "requested lately, by the shop's clock"
    await kept_cancel(service, "o3", requested=now - 2 * WAITED, received=now - 2 * WAITED)
    assert await overdue()


async def sweep(service: OrderService, *, orders_read_until: datetime) -> FakeOrderUnitOfWork:
    uow = service.unit_of_work()
    expired = await handlers.dead_letter_expired_cancellations(
        uow=uow, waited=WAITED, orders_read_until=orders_read_until
    )
    await uow.commit()
    assert expired == len(uow.dead_letters)
    return uow


async def test_cancels_whose_order_did_not_arrive_are_dead_lettered_once() -> None:
    service, now = OrderService(), datetime.now(UTC)
    long_ago = now - 2 * WAITED
    await kept_cancel(service, "o1", requested=long_ago, received=long_ago)
    await kept_cancel(service, "o2", requested=long_ago, received=now)  # lately, by our clock
    # requested within the wait of the orders read so far: its order may still come
    await kept_cancel(service, "o3", requested=now - WAITED / 2, received=long_ago)
    (letter,) = (await sweep(service, orders_read_until=now)).dead_letters
    assert (letter.topic, letter.key) == (ORDERS_CANCEL_REQUESTED.dlq, b"o1")
    assert reason_of(letter) == "order o1 did not arrive within 8s"
    assert dict(letter.headers)[DLQ_ORIGINAL_OFFSET] == b"7"
    assert (await sweep(service, orders_read_until=now)).dead_letters == []
    assert sorted(row.order_id for row in service.tables.pending.values()) == ["o2", "o3"]


async def test_a_cancel_kept_before_request_times_were_kept_waits_from_its_arrival() -> None:
    service, now = OrderService(), datetime.now(UTC)
    await kept_cancel(service, "o1", requested=None, received=now - 2 * WAITED)
    assert (await sweep(service, orders_read_until=now - 3 * WAITED)).dead_letters == []
    assert len((await sweep(service, orders_read_until=now)).dead_letters) == 1


async def test_an_order_after_its_cancel_was_dead_lettered_is_placed_as_it_came() -> None:
    service, long_ago = OrderService(), datetime.now(UTC) - 2 * WAITED
    await kept_cancel(service, "o1", requested=long_ago, received=long_ago)
    await sweep(service, orders_read_until=datetime.now(UTC))
    uow = await service.place(placed())
    assert shape(uow.events) == [(COMMANDS, "MUG", "AllocateLine")]

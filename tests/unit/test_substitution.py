"""Substitution by the customer: the order's rule (which requests it takes, the line it adds,
the one version that shows both) and the book's (the waiting part leaves the queue)."""

import asyncio
from datetime import UTC, datetime

import pytest

from services.allocator.domain.book import QueueState
from services.allocator.domain.eta import Schedule
from services.allocator.domain.model import Line, Policy
from services.allocator.domain.ranks import RankedBook
from services.order.domain import fitting
from services.order.domain.model import Order, OrderLine, SubstitutionRefused
from shared.contracts.inputs import Customer, OrderPlaced
from shared.contracts.inputs import OrderLine as PlacedLine
from shared.contracts.internal import LineAllocationChanged
from shared.contracts.outputs import LineStatus
from tests.support.waiting_lines import InMemoryWaitingLines

START = datetime(2026, 11, 22, tzinfo=UTC)
CUSTOMER = Customer(id="c1", email="c1@example.com")


def news(
    line_id: str,
    sku: str,
    status: LineStatus,
    *,
    quantity: int = 3,
    allocated: int = 0,
    backordered: int = 0,
    rejected: int = 0,
    revision: int = 1,
    substitutes: tuple[str, ...] = (),
    substituted_by: str | None = None,
    substituted: int = 0,
    reason: str | None = None,
) -> LineAllocationChanged:
    return LineAllocationChanged(
        order_id="o1",
        line_id=line_id,
        sku=sku,
        quantity=quantity,
        allocated=allocated,
        backordered=backordered,
        rejected=rejected,
        status=status,
        reason=reason,
        substitutes=list(substitutes),
        substituted_by=substituted_by,
        substituted=substituted,
        revision=revision,
        occurred_at=START,
    )


def waiting_order() -> Order:
    """Line 1 waits for 3 mugs (cups and jugs are the mug's alternatives); line 2 has its lamp."""
    order = Order(
        order_id="o1",
        customer=CUSTOMER,
        placed_at=START,
        lines=[OrderLine("1", "MUG", 3), OrderLine("2", "LAMP", 1)],
    )
    order.apply(news("1", "MUG", "backordered", backordered=3, substitutes=("CUP", "JUG")))
    order.apply(news("2", "LAMP", "allocated", quantity=1, allocated=1))
    assert order.next_picture() is not None
    return order


def test_a_waiting_line_may_be_swapped_for_one_of_its_alternatives() -> None:
    order = waiting_order()
    line = order.line_to_substitute("1", "CUP")
    assert line is not None and line.line_id == "1"


@pytest.mark.parametrize(
    ("line_id", "sku", "refusal"),
    [
        ("9", "CUP", "order o1 has no line 9"),
        ("2", "CUP", "line 2 of order o1 is not waiting (status allocated)"),
        ("1", "BOWL", "BOWL is not an alternative of MUG (its alternatives: CUP, JUG)"),
    ],
)
def test_a_substitution_the_order_cannot_take_is_refused_with_the_reason(
    line_id: str, sku: str, refusal: str
) -> None:
    with pytest.raises(SubstitutionRefused, match=refusal.replace("(", r"\(").replace(")", r"\)")):
        waiting_order().line_to_substitute(line_id, sku)


def test_a_line_whose_waiting_part_closed_is_not_waiting_any_more() -> None:
    order = waiting_order()
    order.apply(news("1", "MUG", "cancelled", revision=2, reason="changed mind"))
    with pytest.raises(SubstitutionRefused, match="not waiting"):
        order.line_to_substitute("1", "CUP")


def substituted(order: Order) -> None:
    """The mug's book closed line 1's waiting part for cups."""
    order.apply(
        news(
            "1",
            "MUG",
            "cancelled",
            revision=2,
            substituted_by="CUP",
            substituted=3,
            reason="substituted by CUP at the customer's request",
        )
    )


def test_the_closed_waiting_part_adds_a_line_for_the_alternative_and_one_version_shows_both() -> (
    None
):
    order = waiting_order()
    substituted(order)
    assert [(ln.line_id, ln.sku, ln.quantity, ln.replaces) for ln in order.lines[2:]] == [
        ("1~CUP", "CUP", 3, "1")
    ]
    # the cup line is yet to be decided: nothing is published in between
    assert order.next_picture() is None
    order.apply(news("1~CUP", "CUP", "allocated", allocated=3))
    picture = order.next_picture()
    assert picture is not None and order.version == 2
    assert [(ln.line_id, ln.status, ln.reason) for ln in picture.lines] == [
        ("1", "substituted", "substituted by CUP at the customer's request"),
        ("2", "allocated", None),
        ("1~CUP", "allocated", None),
    ]
    assert (picture.lines[0].substituted, picture.lines[0].substituted_by) == (3, "CUP")
    assert picture.lines[0].rejected == 0
    assert picture.status == "allocated"


def test_a_partly_allocated_line_keeps_what_it_holds_and_its_swapped_units_are_not_refused() -> (
    None
):
    order = Order(
        order_id="o1", customer=CUSTOMER, placed_at=START, lines=[OrderLine("1", "MUG", 3)]
    )
    order.apply(
        news("1", "MUG", "partially_allocated", allocated=1, backordered=2, substitutes=("CUP",))
    )
    order.apply(
        news(
            "1",
            "MUG",
            "allocated",
            allocated=1,
            rejected=2,
            revision=2,
            substituted_by="CUP",
            substituted=2,
            reason="substituted by CUP at the customer's request",
        )
    )
    order.apply(news("1~CUP", "CUP", "allocated", quantity=2, allocated=2))
    picture = order.next_picture()
    assert picture is not None
    mug = picture.lines[0]
    assert (mug.status, mug.allocated, mug.rejected, mug.substituted, mug.substituted_by) == (
        "allocated",
        1,
        0,
        2,
        "CUP",
    )


def test_a_repeated_request_or_repeated_news_changes_nothing() -> None:
    order = waiting_order()
    substituted(order)
    assert order.line_to_substitute("1", "CUP") is None
    substituted(order)  # the same news again
    assert [line.line_id for line in order.lines] == ["1", "2", "1~CUP"]


def test_the_order_placed_again_is_still_the_same_order_after_a_substitution() -> None:
    placed = OrderPlaced(
        order_id="o1",
        customer=CUSTOMER,
        lines=[PlacedLine(line_id="1", sku="MUG", quantity=3)],
        placed_at=START,
    )
    order = Order.place(placed)
    order.apply(news("1", "MUG", "backordered", backordered=3, substitutes=("CUP",)))
    substituted(order)
    assert order.same_as(placed)


def book_with(*lines: Line, available: int = 0) -> RankedBook:
    book = RankedBook(
        sku="MUG",
        policy=Policy(alternatives=("CUP",)),
        lanes=[QueueState(available=available)],
        schedule=Schedule(()),
        waiting=InMemoryWaitingLines(),
    )

    async def request() -> None:
        for line in lines:
            await book.request(line, START)
        await book.told()

    asyncio.run(request())
    return book


def test_closing_a_waiting_part_keeps_what_the_line_holds_and_moves_the_next_one_up() -> None:
    first = Line(order_id="first", line_id="1", quantity=3)
    second = Line(order_id="second", line_id="1", quantity=2)
    book = book_with(first, second, available=1)

    async def close_then_receive() -> tuple[int | None, list[tuple[str, int | None]]]:
        await book.close_waiting(first, "substituted by CUP at the customer's request")
        told = [(t.line.order_id, t.position) for t in await book.told()]
        await book.receive(1)
        await book.told()
        return await book.position(second), told

    position, told = asyncio.run(close_then_receive())
    assert (first.allocated, first.rejected, first.short, first.status) == (1, 2, 0, "allocated")
    assert told == [("first", None)]
    # the next customer stands first, and the next unit is theirs
    assert (second.allocated, position) == (1, 1)


def test_closing_a_waiting_part_in_a_higher_rank_lets_the_lower_rank_be_served() -> None:
    vip = Line(order_id="vip", line_id="1", quantity=2, rank=1)
    standard = Line(order_id="standard", line_id="1", quantity=1)
    book = book_with(standard, vip, available=0)

    async def close_then_receive() -> None:
        await book.close_waiting(vip, "substituted by CUP at the customer's request")
        await book.receive(1)
        await book.told()

    asyncio.run(close_then_receive())
    assert (vip.rejected, vip.short, vip.status) == (2, 0, "rejected")
    assert standard.status == "allocated"


# Issue 21 defect 1: a whole-order cancel that reaches the order before the book's news of a
# substitution must cover the substitute still on its way.
def test_a_substitute_of_a_line_cancelled_meanwhile_is_born_cancelled_and_never_requested() -> None:
    order = waiting_order()
    assert order.line_to_substitute("1", "CUP") is not None  # the swap is asked for
    cancelled = order.request_cancel(None, "changed my mind")  # then the whole order
    # line 2 is allocated, still open: a cancel passes its units on
    assert [line.line_id for line in cancelled] == ["1", "2"]
    substituted(order)  # the mug's book had closed line 1's waiting part before the cancel
    cup = order.line("1~CUP")
    assert cup is not None
    assert (cup.status, cup.reason, cup.allocated) == ("cancelled", "changed my mind", 0)
    assert order.undecided() == []  # nothing is requested from the cup's book
    picture = order.next_picture()
    assert picture is not None
    assert [(ln.line_id, ln.status) for ln in picture.lines] == [
        ("1", "cancelled"),
        ("2", "allocated"),
        ("1~CUP", "cancelled"),
    ]


def test_a_line_being_cancelled_cannot_be_swapped() -> None:
    order = waiting_order()
    order.request_cancel(["1"], None)
    with pytest.raises(SubstitutionRefused, match="is being cancelled"):
        order.line_to_substitute("1", "CUP")


def test_cancelling_a_line_cancels_the_substitute_that_replaced_its_waiting_part() -> None:
    order = waiting_order()
    substituted(order)
    order.apply(news("1~CUP", "CUP", "backordered", backordered=3))
    assert [line.line_id for line in order.lines_to_cancel(["1"])] == ["1~CUP"]


def swap_back_and_forth(order: Order, times: int) -> list[str]:
    """Swaps the newest line between MUG and CUP, which name each other as alternatives."""
    line_id, sku, revision = "1", "MUG", 1
    for _ in range(times):
        other = "CUP" if sku == "MUG" else "MUG"
        order.apply(
            news(
                line_id,
                sku,
                "backordered",
                backordered=3,
                revision=revision + 1,
                substitutes=(other,),
            )
        )
        assert order.line_to_substitute(line_id, other) is not None
        order.apply(
            news(
                line_id,
                sku,
                "cancelled",
                revision=revision + 2,
                substituted_by=other,
                substituted=3,
            )
        )
        line_id, sku, revision = order.lines[-1].line_id, other, 0
    return [line.line_id for line in order.lines]


# Issue 21 defect 2: ids stayed the concatenation of every swap, so they grew without bound.
def test_substitute_line_ids_stay_bounded_however_often_the_customer_swaps() -> None:
    order = waiting_order()
    ids = swap_back_and_forth(order, 12)
    assert ids[2:5] == ["1~CUP", "1~2~MUG", "1~3~CUP"]
    assert ids[-1] == "1~12~MUG"
    assert len(set(ids)) == len(ids)
    assert max(len(line_id) for line_id in ids) == len("1~12~MUG")


def test_a_swap_that_could_make_the_picture_too_large_is_refused() -> None:
    long_id = "x" * 120
    order = Order(
        order_id="o1",
        customer=CUSTOMER,
        placed_at=START,
        lines=[OrderLine(f"{long_id}{n:03}", "MUG", 3) for n in range(200)],
    )
    first = order.lines[0].line_id
    order.apply(
        LineAllocationChanged(
            order_id="o1",
            line_id=first,
            sku="MUG",
            quantity=3,
            allocated=0,
            backordered=3,
            rejected=0,
            status="backordered",
            substitutes=["CUP"],
            revision=1,
            occurred_at=START,
        )
    )
    limit = fitting.size(
        fitting.worst_case_of(
            "o1", CUSTOMER, [(ln.line_id, ln.sku, ln.quantity) for ln in order.lines]
        )
    )
    assert order.line_to_substitute(first, "CUP", picture_limit=limit * 2) is not None
    with pytest.raises(SubstitutionRefused, match="order too large: with a line for CUP"):
        order.line_to_substitute(first, "CUP", picture_limit=limit)


def test_a_waiting_line_shows_every_alternative_it_may_take_with_its_stock() -> None:
    """Issue 21: `alternatives` names only those in stock, yet any may be requested."""
    order = Order(
        order_id="o1", customer=CUSTOMER, placed_at=START, lines=[OrderLine("1", "MUG", 3)]
    )
    waiting = news("1", "MUG", "backordered", backordered=3, substitutes=("CUP", "JUG"))
    order.apply(waiting.model_copy(update={"alternatives": ["JUG"]}))
    picture = order.next_picture()
    assert picture is not None
    assert [(s.sku, s.in_stock) for s in picture.lines[0].substitutes] == [
        ("CUP", False),
        ("JUG", True),
    ]
    order.apply(news("1", "MUG", "allocated", allocated=3, revision=2))
    filled = order.next_picture()
    assert filled is not None and filled.lines[0].substitutes == []
    assert "substitutes" not in filled.lines[0].model_dump(mode="json")

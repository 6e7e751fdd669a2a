"""Expected dates against a straightforward reference: hand out scheduled units one by one.
A restock whose date has passed (overdue) is nobody's expected date."""

import asyncio
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from services.allocator.domain.book import QueueState
from services.allocator.domain.eta import Restock, Schedule, expected_dates
from services.allocator.domain.model import Line, Policy
from services.allocator.domain.ranks import RankedBook
from shared.contracts.outputs import eta_change as change
from tests.support.waiting_lines import InMemoryWaitingLines

DAY0 = datetime(2026, 12, 1, tzinfo=UTC)


def reference(needs: list[int], restocks: list[Restock]) -> list[datetime | None]:
    units = [
        r.expected_at
        for r in sorted(restocks, key=lambda r: (r.expected_at, r.po_id))
        for _ in range(r.quantity)
    ]
    dates: list[datetime | None] = []
    handed_out = 0
    for need in needs:
        handed_out += need
        dates.append(units[handed_out - 1] if need and handed_out <= len(units) else None)
    return dates


restocks = st.lists(
    st.builds(
        Restock,
        po_id=st.text("abc", min_size=1, max_size=3),
        quantity=st.integers(0, 6),
        expected_at=st.integers(0, 30).map(lambda d: DAY0 + timedelta(days=d)),
    ),
    max_size=8,
)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.integers(1, 6), max_size=15), restocks)
def test_dates_match_the_unit_by_unit_reference(needs: list[int], plan: list[Restock]) -> None:
    assert expected_dates(needs, plan) == reference(needs, plan)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 6), max_size=15), restocks)
def test_a_later_line_never_expects_stock_before_an_earlier_one(
    needs: list[int], plan: list[Restock]
) -> None:
    dates = expected_dates(needs, plan)
    known = [d for d in dates if d is not None]
    assert known == sorted(known)
    # once a line has no date, no later line has one
    if None in dates:
        assert all(d is None for d in dates[dates.index(None) :])


def test_example_from_the_issue() -> None:
    plan = [Restock("po-2", 5, DAY0 + timedelta(days=9)), Restock("po-1", 2, DAY0)]
    assert expected_dates([1, 2, 3, 4], plan) == [
        DAY0,
        DAY0 + timedelta(days=9),
        DAY0 + timedelta(days=9),
        None,
    ]


def test_change_names_the_direction() -> None:
    later = DAY0 + timedelta(days=1)
    assert [change(DAY0, later), change(later, DAY0), change(None, DAY0), change(DAY0, None)] == [
        "delayed",
        "earlier",
        "set",
        "cleared",
    ]
    assert change(DAY0, DAY0) is None


def days(n: int) -> datetime:
    return DAY0 + timedelta(days=n)


def test_an_overdue_restock_is_not_promised_to_anyone() -> None:
    # po-1 was due on day 0 and has not come; it is day 3. The queue expects po-2 alone, and
    # the line po-1 would have covered is the first to expect po-2: never a date gone by.
    plan = [Restock("po-1", 2, days(0)), Restock("po-2", 5, days(9))]
    now = days(3)
    assert expected_dates([1, 2, 3, 4], plan, now=now) == [days(9), days(9), None, None]
    schedule = Schedule(plan, now=now)
    assert [schedule.date_for(need) for need in (1, 5, 6)] == [days(9), days(9), None]
    assert schedule.overdue == [plan[0]]
    # due today, later today: not overdue yet
    assert expected_dates([2], plan, now=days(0)) == [days(0)]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(1, 6), max_size=15), restocks, st.integers(0, 31))
def test_dates_never_lie_in_the_past(needs: list[int], plan: list[Restock], today: int) -> None:
    now = days(today)
    dates = expected_dates(needs, plan, now=now)
    assert all(d is None or d >= now for d in dates)
    assert dates == reference(needs, [r for r in plan if r.expected_at >= now])
    schedule = Schedule(plan, now=now)
    cumulative = [sum(needs[: i + 1]) for i in range(len(needs))]
    assert [schedule.date_for(c) for c in cumulative] == dates


def test_a_date_that_passes_is_retold_and_a_later_order_gets_no_past_date() -> None:
    """What the sweep does once po-1's day is gone: the lines are told again from the
    restocks still to come, and an order placed afterwards is never told po-1's day."""
    plan = [Restock("po-1", 2, days(0)), Restock("po-2", 2, days(9))]
    book = RankedBook(
        sku="MUG",
        policy=Policy(),
        lanes=[QueueState()],
        schedule=Schedule(plan, now=days(-1)),
        waiting=InMemoryWaitingLines(),
    )
    first = Line(order_id="first", line_id="1", quantity=2)
    second = Line(order_id="second", line_id="1", quantity=2)

    async def scenario() -> None:
        await book.request(first, days(-1))
        await book.request(second, days(-1))
        assert [first.eta, second.eta] == [days(0), days(9)]
        await book.told()
        # day 3: po-1 has not come
        await book.reschedule(Schedule(plan, now=days(3)))
        told = {item.line.order_id: item for item in await book.told()}
        assert set(told) == {"first", "second"}
        assert (first.eta, change(told["first"].eta_before, first.eta)) == (days(9), "delayed")
        assert (second.eta, change(told["second"].eta_before, second.eta)) == (None, "cleared")
        third = Line(order_id="third", line_id="1", quantity=1)
        await book.request(third, days(3))
        assert third.eta is None
        # po-1 is given a new date: it is supply again
        await book.reschedule(Schedule([Restock("po-1", 2, days(5)), plan[1]], now=days(3)))
        assert [first.eta, second.eta, third.eta] == [days(5), days(9), None]

    asyncio.run(scenario())

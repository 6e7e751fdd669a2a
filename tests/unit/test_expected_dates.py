"""Expected dates against a straightforward reference: hand out scheduled units one by one."""

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from services.allocator.domain.eta import Restock, expected_dates
from shared.contracts.outputs import eta_change as change

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

"""Random histories of one SKU: never oversold, never out of arrival order, never idle stock."""

from hypothesis import given, settings
from hypothesis import strategies as st

from services.allocator.domain.model import Line, Policy
from services.allocator.domain.reference import ReferenceBook as SkuBook

request = st.tuples(st.just("request"), st.integers(1, 8))
receive = st.tuples(st.just("receive"), st.integers(1, 12))
cancel = st.tuples(st.just("cancel"), st.integers(0, 1_000))
history = st.lists(st.one_of(request, receive, cancel), max_size=60)
policies = st.builds(
    Policy,
    backorders=st.sampled_from(["allow", "deny"]),
    max_backorder_quantity=st.none() | st.integers(0, 20),
)


@settings(max_examples=400, deadline=None)
@given(history, policies)
def test_any_history_keeps_the_invariants(steps: list[tuple[str, int]], policy: Policy) -> None:
    book = SkuBook(sku="SKU", policy=policy)
    lines: list[Line] = []
    received = 0
    for kind, amount in steps:
        if kind == "request":
            line = Line(order_id=f"o{len(lines)}", line_id="1", quantity=amount)
            lines.append(line)
            book.request(line)
        elif kind == "receive":
            received += amount
            book.receive(amount)
        elif lines:
            book.cancel(lines[amount % len(lines)], "cancelled")

        held = sum(line.allocated for line in lines)
        # never oversold, and every unit is either held or on the shelf
        assert held + book.available == received
        # no idle stock while someone waits
        assert book.available == 0 or not book.queue
        # the queue holds exactly the lines still short, in arrival order
        waiting = [line for line in lines if line.short > 0]
        assert book.queue == waiting
        # nobody behind the head holds units of a later arrival while the head is short:
        # only the head of the queue may be partly filled
        assert all(line.allocated == 0 for line in book.queue[1:])
        for line in lines:
            assert 0 <= line.allocated + line.rejected <= line.quantity
            if line.cancelled:
                assert line.allocated == 0 and line not in book.queue


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(1, 5), min_size=1, max_size=20), st.lists(st.integers(1, 9), max_size=20)
)
def test_stock_goes_to_lines_in_arrival_order(quantities: list[int], receipts: list[int]) -> None:
    book = SkuBook(sku="SKU")
    lines = [Line(order_id=f"o{i}", line_id="1", quantity=q) for i, q in enumerate(quantities)]
    for line in lines:
        book.request(line)
    for amount in receipts:
        book.receive(amount)
    # filled lines form a prefix of the arrival order, then at most one partly filled line
    states = ["full" if ln.short == 0 else "part" if ln.allocated else "none" for ln in lines]
    first_short = next((i for i, s in enumerate(states) if s != "full"), len(states))
    assert all(s == "none" for s in states[first_short + 1 :])
    assert sum(ln.allocated for ln in lines) == min(sum(receipts), sum(quantities))

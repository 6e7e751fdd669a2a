"""Random histories of one SKU with several customers, under returning-customer and
per-customer policies: no customer ever waits for more than the cap, nobody who is not returning
ever waits where only returning customers may, and the book the service decides with agrees
with the specification on every line, saved and read back in random batches."""

import asyncio
from dataclasses import replace
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from services.allocator.domain.admission import Applicant
from services.allocator.domain.book import QueueState, SkuBook
from services.allocator.domain.eta import Schedule
from services.allocator.domain.model import Line, Policy
from services.allocator.domain.reference import ReferenceBook
from tests.support.waiting_lines import InMemoryWaitingLines

NOW = datetime(2027, 1, 1, tzinfo=UTC)
CUSTOMERS = 3

request = st.tuples(st.just("request"), st.integers(0, CUSTOMERS - 1), st.integers(1, 6))
receive = st.tuples(st.just("receive"), st.integers(1, 9), st.just(0))
cancel = st.tuples(st.just("cancel"), st.integers(0, 1_000), st.just(0))
# True: the incremental book is saved and read back before the step, as a new batch would.
history = st.lists(
    st.tuples(st.one_of(request, request, receive, cancel), st.booleans()), max_size=50
)
policies = st.builds(
    Policy,
    backorders=st.sampled_from(["allow", "returning_customers"]),
    max_backorder_quantity=st.none() | st.integers(0, 25),
    max_backorder_quantity_per_customer=st.none() | st.integers(0, 8),
)
returning = st.lists(st.booleans(), min_size=CUSTOMERS, max_size=CUSTOMERS)


async def run(
    steps: list[tuple[tuple[str, int, int], bool]], policy: Policy, known: list[bool]
) -> None:
    spec = ReferenceBook(sku="SKU", policy=policy)
    store, state = InMemoryWaitingLines(), QueueState()
    book: SkuBook | None = None
    # Each line as the incremental book was given it, the specification's own copy, and whose.
    lines: list[tuple[Line, Line, Applicant]] = []
    received = 0
    for (kind, first, second), save_first in steps:
        if book is None or save_first:
            if book is not None:
                store.save(book.lines())
                state = replace(book.state, gaps=dict(book.state.gaps))
            book = SkuBook(
                sku="SKU", policy=policy, state=state, schedule=Schedule([]), waiting=store
            )
        if kind == "request":
            applicant = Applicant(f"c{first}", returning=known[first])
            line = Line(order_id=f"o{len(lines)}", line_id="1", quantity=second)
            theirs = replace(line)
            lines.append((line, theirs, applicant))
            spec.request(theirs, applicant)
            await book.request(line, NOW, applicant)
            assert (line.allocated, line.rejected, line.reason) == (
                theirs.allocated,
                theirs.rejected,
                theirs.reason,
            )
        elif kind == "receive":
            received += first
            spec.receive(first)
            await book.receive(first)
        elif lines:
            target, theirs, _ = lines[first % len(lines)]
            mine = await book.find(target.order_id, "1")
            assert mine is not None
            spec.cancel(theirs, "cancelled")
            await book.cancel(mine, "cancelled")
        await book.told()

        current = {}
        for line, _, applicant in lines:
            found = await book.find(line.order_id, "1")
            assert found is not None
            current[line.order_id] = (found, applicant)
        waiting_of: dict[str, int] = {}
        for found, applicant in current.values():
            assert found.short >= 0
            if found.short:
                assert applicant.returning or not policy.returning_customers_only
                assert applicant.customer_id is not None
                waiting_of[applicant.customer_id] = (
                    waiting_of.get(applicant.customer_id, 0) + found.short
                )
        cap = policy.max_backorder_quantity_per_customer
        assert cap is None or all(units <= cap for units in waiting_of.values())
        # the incremental book agrees with the specification on what waits, for whom
        assert [(q.order_id, q.short) for q in spec.queue] == sorted(
            ((found.order_id, found.short) for found, _ in current.values() if found.short),
            key=lambda item: int(item[0][1:]),
        )
        held = sum(found.allocated for found, _ in current.values())
        assert held + book.available == received == held + spec.available


@settings(max_examples=300, deadline=None)
@given(history, policies, returning)
def test_customer_policies_hold_on_any_history(
    steps: list[tuple[tuple[str, int, int], bool]], policy: Policy, known: list[bool]
) -> None:
    asyncio.run(run(steps, policy, known))

"""The book the service decides with, held to the specification on random histories.

Both books see the same requests, receipts (some naming their purchase order), cancels,
expiries, policy changes and restock changes. After every step they must agree on every line's
allocation, status and reason, on the position and expected date of every waiting line, on the
units on the shelf, and on which lines the step told the order service about. The incremental
book is saved and read back between steps in random groups, as a batch would be."""

import asyncio
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from services.allocator.domain.book import Key, QueueState, SkuBook
from services.allocator.domain.eta import Restock, Schedule, expected_dates
from services.allocator.domain.model import Line, Policy
from services.allocator.domain.reference import ReferenceBook
from tests.support.waiting_lines import InMemoryWaitingLines

START = datetime(2027, 1, 1, tzinfo=UTC)
POS = ("po-a", "po-b", "po-c")
Step = tuple[Any, ...]

request = st.tuples(st.just("request"), st.integers(1, 6))
restock = st.tuples(st.just("restock"), st.integers(0, 2), st.integers(0, 12), st.integers(1, 20))
step = st.one_of(
    request,
    request,
    request,
    st.tuples(st.just("receive"), st.integers(1, 9)),
    st.tuples(st.just("receive-po"), st.integers(0, 2), st.integers(1, 9)),
    st.tuples(st.just("cancel"), st.integers(0, 1_000)),
    st.tuples(st.just("later"), st.integers(0, 72)),
    st.tuples(st.just("expire"), st.sampled_from([None, 24, 48])),
    st.tuples(st.just("policy"), st.booleans(), st.none() | st.integers(0, 30)),
    restock,
    restock,
)
# True: the incremental book is saved and read back before this step.
history = st.lists(st.tuples(step, st.booleans()), min_size=4, max_size=80)


@dataclass
class Specified:
    """The reference book, with the dates it last told and the restocks it was given."""

    book: ReferenceBook = field(default_factory=lambda: ReferenceBook(sku="SKU"))
    restocks: dict[str, Restock] = field(default_factory=dict)
    told_eta: dict[Key, datetime | None] = field(default_factory=dict)
    # The reference tracks lines by identity: its own object for each line.
    lines: dict[Key, Line] = field(default_factory=dict)

    def request(self, line: Line) -> list[Line]:
        self.lines[line.key] = line
        return self.book.request(line)

    def dates(self) -> dict[Key, datetime | None]:
        restocks = list(self.restocks.values())
        found = expected_dates([line.short for line in self.book.queue], restocks)
        return {(ln.order_id, ln.line_id): d for ln, d in zip(self.book.queue, found, strict=True)}

    def tell(self, changed: list[Line]) -> set[Key]:
        """The lines a step changed, and the waiting lines whose date moved."""
        told = {(line.order_id, line.line_id) for line in changed}
        dates = self.dates()
        for key, date in dates.items():
            if self.told_eta.get(key) != date:
                told.add(key)
            self.told_eta[key] = date
        for key in told - dates.keys():
            self.told_eta[key] = None
        return told


@dataclass
class Incremental:
    store: InMemoryWaitingLines = field(default_factory=InMemoryWaitingLines)
    state: QueueState = field(default_factory=QueueState)
    policy: Policy = field(default_factory=Policy)
    restocks: dict[str, Restock] = field(default_factory=dict)
    book: SkuBook | None = None

    def open(self) -> SkuBook:
        if self.book is None:
            self.book = SkuBook(
                sku="SKU",
                policy=self.policy,
                state=replace(self.state, gaps=dict(self.state.gaps)),
                schedule=Schedule(list(self.restocks.values())),
                waiting=self.store,
            )
        return self.book

    def save(self) -> None:
        if self.book is not None:
            self.store.save(self.book.lines())
            self.state = replace(self.book.state, gaps=dict(self.book.state.gaps))
            self.policy = self.book.policy
            self.book = None


async def run(steps: list[tuple[Step, bool]], policy: Policy) -> None:
    spec, inc = Specified(), Incremental(policy=policy)
    spec.book.policy = policy
    lines: list[Line] = []
    now = START
    for action, save_first in steps:
        if save_first:
            inc.save()
        book = inc.open()
        kind = action[0]
        changed: list[Line] = []
        if kind == "request":
            line = Line(order_id=f"o{len(lines)}", line_id="1", quantity=action[1])
            lines.append(line)
            mirror = replace(line, requested_at=now)
            changed = spec.request(mirror)
            await book.request(line, now)
        elif kind in ("receive", "receive-po"):
            quantity = action[-1]
            if kind == "receive-po":
                po = POS[action[1]]
                for restocks in (spec.restocks, inc.restocks):
                    if po in restocks:
                        left = restocks[po].quantity - quantity
                        if left > 0:
                            restocks[po] = replace(restocks[po], quantity=left)
                        else:
                            del restocks[po]
                book.schedule = Schedule(list(inc.restocks.values()))
            changed = spec.book.receive(quantity)
            await book.receive(quantity)
        elif kind == "cancel" and lines:
            index = action[1] % len(lines)
            target = await book.find(lines[index].order_id, "1")
            assert target is not None
            changed = spec.book.cancel(spec.lines[lines[index].key], "cancelled")
            await book.cancel(target, "cancelled")
        elif kind == "later":
            now += timedelta(hours=action[1])
        elif kind == "expire":
            hours = action[1]
            default = None if hours is None else timedelta(hours=hours)
            changed = spec.book.expire(now, default)
            await book.expire(now, default)
        elif kind == "policy":
            max_wait = timedelta(hours=36) if action[1] else None
            quantity = action[2]
            new_policy = Policy(
                backorders="allow" if bool(action[1]) or quantity is None else "deny",
                max_backorder_quantity=None if quantity is None else quantity,
                max_wait=max_wait,
            )
            spec.book.policy = new_policy
            book.policy = new_policy
        elif kind == "restock":
            po = POS[action[1]]
            quantity, day = action[2], action[3]
            for restocks in (spec.restocks, inc.restocks):
                if quantity:
                    restocks[po] = Restock(po, quantity, START + timedelta(days=day))
                else:
                    restocks.pop(po, None)
            await book.reschedule(Schedule(list(inc.restocks.values())))

        told = await book.told()
        assert {t.line.key for t in told} == spec.tell(changed), action
        assert book.available == spec.book.available
        await agree(spec, inc, lines)


async def agree(spec: Specified, inc: Incremental, lines: list[Line]) -> None:
    book = inc.open()
    dates = spec.dates()
    for line in lines:
        mine = await book.find(line.order_id, line.line_id)
        theirs = spec.lines[line.key]
        assert mine is not None
        assert (mine.allocated, mine.rejected, mine.status, mine.reason) == (
            theirs.allocated,
            theirs.rejected,
            theirs.status,
            theirs.reason,
        )
        assert await book.position(mine) == spec.book.position(theirs)
        if mine.short:
            assert mine.eta == dates[line.key]


@settings(max_examples=1000, deadline=None)
@given(
    history,
    st.builds(
        Policy,
        backorders=st.sampled_from(["allow", "allow", "allow", "deny"]),
        max_backorder_quantity=st.none() | st.none() | st.integers(0, 25),
        max_wait=st.none() | st.sampled_from([timedelta(hours=12), timedelta(days=2)]),
    ),
)
def test_the_incremental_book_agrees_with_the_specification(
    steps: list[tuple[Step, bool]], policy: Policy
) -> None:
    asyncio.run(run(steps, policy))


def test_a_restock_that_grows_moves_the_lines_at_the_end_of_its_run_to_its_date() -> None:
    steps: list[Step] = [("request", 2), ("request", 2), ("request", 2)]
    steps += [("restock", 0, 2, 1), ("restock", 1, 10, 5), ("restock", 0, 4, 1)]
    asyncio.run(run([(step, True) for step in steps], Policy()))


def test_a_cancel_in_the_middle_brings_the_lines_behind_it_to_an_earlier_restock() -> None:
    steps: list[Step] = [("restock", 0, 4, 1), ("restock", 1, 10, 5)]
    steps += [("request", 2), ("request", 2), ("request", 2), ("request", 2), ("cancel", 1)]
    asyncio.run(run([(step, True) for step in steps], Policy()))

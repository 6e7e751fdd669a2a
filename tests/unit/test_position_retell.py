"""What a waiting line is told of its place when lines of a higher rank go ahead of it: the
lines whose position worsened are retold, the first `retell_limit` of them per decision in
queue order, so that what a customer was told is never better than the truth for those, and a
decision still costs the same on a long queue as on a short one."""

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from services.allocator.domain.book import QueueState
from services.allocator.domain.eta import Restock, Schedule
from services.allocator.domain.model import Line, Policy
from services.allocator.domain.ranks import POSITION_RETELL_LIMIT, RankedBook
from tests.unit.test_priority_ranks import CountingLines

START = datetime(2027, 1, 1, tzinfo=UTC)
AGING = timedelta(hours=10)


@dataclass
class Shelf:
    """A SKU's book saved and read back between decisions, as batches would."""

    store: CountingLines
    lanes: list[QueueState]
    limit: int
    schedule: Schedule

    @classmethod
    def new(cls, limit: int = POSITION_RETELL_LIMIT, schedule: Schedule | None = None) -> "Shelf":
        return cls(CountingLines(), [QueueState()], limit, schedule or Schedule(()))

    def open(self) -> RankedBook:
        return RankedBook(
            sku="SKU",
            policy=Policy(),
            lanes=[QueueState(**{**lane.__dict__, "gaps": dict(lane.gaps)}) for lane in self.lanes],
            schedule=self.schedule,
            waiting=self.store,
            retell_limit=self.limit,
        )

    async def decide(
        self, *lines: Line, now: datetime = START, age: int | None = None
    ) -> list[tuple[str, int | None]]:
        """Requests the lines (or ages the book, `age` its top rank) in one decision each and
        returns what the last decision told: (order id, position)."""
        told: list[tuple[str, int | None]] = []
        for line in lines or (None,):
            book = self.open()
            if line is None:
                await book.age(now, AGING, age or 1)
            else:
                await book.request(line, now)
            told = [(t.line.order_id, t.position) for t in await book.told()]
            self.store.save(book.lines())
            self.lanes = [book.state, *book.higher_lanes()]
        return told


def standard(name: str) -> Line:
    return Line(order_id=name, line_id="1", quantity=1)


def vip(name: str, rank: int = 1) -> Line:
    return Line(order_id=name, line_id="1", quantity=1, rank=rank)


def test_a_standard_line_told_position_1_is_retold_position_2_when_a_vip_joins_ahead() -> None:
    async def run() -> tuple[list[tuple[str, int | None]], list[tuple[str, int | None]]]:
        shelf = Shelf.new()
        first = await shelf.decide(standard("standard"))
        return first, await shelf.decide(vip("vip"))

    first, after_vip = asyncio.run(run())
    assert first == [("standard", 1)]
    assert sorted(after_vip) == [("standard", 2), ("vip", 1)]


def test_the_retell_is_bounded_to_the_first_lines_of_the_lower_lanes() -> None:
    async def run() -> list[tuple[str, int | None]]:
        shelf = Shelf.new(limit=3)
        await shelf.decide(*(standard(f"s{index}") for index in range(10)))
        return await shelf.decide(vip("vip"))

    told = asyncio.run(run())
    # the vip first, then only the first three standard lines, each one place further back
    assert sorted(told) == [("s0", 2), ("s1", 3), ("s2", 4), ("vip", 1)]


def test_with_three_ranks_the_retell_walks_the_lower_lanes_highest_first() -> None:
    async def run() -> list[tuple[str, int | None]]:
        shelf = Shelf.new(limit=3)
        await shelf.decide(standard("s0"), standard("s1"), vip("v0"), vip("v1"))
        return await shelf.decide(vip("top", rank=2))

    told = asyncio.run(run())
    # the rank-1 lines stand ahead of the standard ones: they are the first retold
    assert sorted(told) == [("s0", 4), ("top", 1), ("v0", 2), ("v1", 3)]


def test_a_limit_of_zero_retells_nobody() -> None:
    async def run() -> list[tuple[str, int | None]]:
        shelf = Shelf.new(limit=0)
        await shelf.decide(standard("s0"))
        return await shelf.decide(vip("vip"))

    assert asyncio.run(run()) == [("vip", 1)]


def test_a_promotion_past_a_line_of_its_new_rank_retells_that_line() -> None:
    """Three ranks. `patient` (standard) waits from the start; `fresh` (rank 1) joins at 15 h;
    a late sweep at 16 h lifts `patient` into rank 1 behind `fresh`. At 21 h `patient` has
    waited past two bounds and rises again, ahead of `fresh`, who has not: `fresh` is one
    place further back and is told so."""

    async def run() -> list[tuple[str, int | None]]:
        shelf = Shelf.new()
        await shelf.decide(standard("patient"), now=START)
        await shelf.decide(vip("fresh"), now=START + timedelta(hours=15))
        assert await shelf.decide(now=START + timedelta(hours=16), age=2) == [("patient", 2)]
        return await shelf.decide(now=START + timedelta(hours=21), age=2)

    assert sorted(asyncio.run(run())) == [("fresh", 2), ("patient", 1)]


def test_a_vip_order_costs_the_same_reads_on_a_short_and_a_long_queue() -> None:
    async def cost(waiting: int) -> tuple[int, int, int]:
        restock = Restock("po", waiting // 2, START + timedelta(days=3))
        shelf = Shelf.new(limit=100, schedule=Schedule([restock]))
        book = shelf.open()
        for index in range(waiting):
            await book.request(standard(f"s{index}"), START)
        await book.told()
        shelf.store.save(book.lines())
        shelf.lanes = [book.state]
        shelf.store.queries = shelf.store.read = 0
        told = await shelf.decide(vip("vip"))
        return shelf.store.queries, shelf.store.read, len(told)

    short, long = asyncio.run(cost(1_000)), asyncio.run(cost(20_000))
    # the vip, the first hundred standard lines, and the one the restock's run no longer covers
    assert short[2] == long[2] == 102
    assert short[:2] == long[:2], (short, long)

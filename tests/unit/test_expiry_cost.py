"""An expiry that withdraws a whole queue at once (a hot SKU whose lines all passed their
maximum wait together) reads each stored line a bounded number of times, not once per line
withdrawn before it: 4,000 such lines took the sweep 112 s and held up every other SKU's."""

import asyncio
from datetime import UTC, datetime, timedelta

from services.allocator.domain.book import QueueState, SkuBook
from services.allocator.domain.eta import Restock, Schedule
from services.allocator.domain.model import Line, Policy
from tests.support.waiting_lines import InMemoryWaitingLines

LONG_AGO = datetime(2026, 1, 1, tzinfo=UTC)
NOW = LONG_AGO + timedelta(days=1)
LINES = 300


class CountingLines(InMemoryWaitingLines):
    """Counts the stored lines the book reads, as the database would hand them out."""

    def __init__(self) -> None:
        super().__init__()
        self.read = 0

    async def waiting_from(self, seq: int, limit: int) -> list[Line]:
        page = await super().waiting_from(seq, limit)
        self.read += len(page)
        return page

    async def waiting_down_from(self, seq: int, limit: int) -> list[Line]:
        page = await super().waiting_down_from(seq, limit)
        self.read += len(page)
        return page


def test_expiring_a_whole_queue_reads_each_line_a_bounded_number_of_times() -> None:
    async def scenario() -> tuple[int, int]:
        store, state = CountingLines(), QueueState()
        # A restock to come, so every withdrawal moves the dates the others are told.
        schedule = Schedule([Restock("po-1", LINES * 2, NOW + timedelta(days=9))], now=NOW)

        def open_book() -> SkuBook:
            return SkuBook(
                sku="MUG", policy=Policy(), state=state, schedule=schedule, waiting=store
            )

        book = open_book()
        for n in range(LINES):
            await book.request(Line(order_id=f"o{n}", line_id="1", quantity=1), LONG_AGO)
        await book.told()
        store.save(book.lines())
        store.read = 0
        book = open_book()  # the sweep's batch: every line is read from the store
        await book.expire(NOW, timedelta(hours=1))
        expired = sum(1 for item in await book.told() if item.line.expired)
        return expired, store.read

    expired, read = asyncio.run(scenario())
    assert expired == LINES
    assert read <= 10 * LINES, f"{read} line reads to expire {LINES} lines"

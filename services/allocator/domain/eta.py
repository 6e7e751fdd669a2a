"""Expected dates for waiting lines: pure, no I/O.

Walk the queue in arrival order against the scheduled restocks in date order: a line's date is
the `expected_at` of the restock whose cumulative quantity first covers everything the queue
needs up to and including that line. No date when nothing scheduled covers it.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Restock:
    po_id: str
    quantity: int
    expected_at: datetime


def expected_dates(needs: Sequence[int], restocks: Sequence[Restock]) -> list[datetime | None]:
    """`needs`: the units each waiting line still lacks, in queue order."""
    supply = sorted((r for r in restocks if r.quantity > 0), key=lambda r: (r.expected_at, r.po_id))
    dates: list[datetime | None] = []
    covered, next_restock, wanted = 0, 0, 0
    for need in needs:
        wanted += need
        while covered < wanted and next_restock < len(supply):
            covered += supply[next_restock].quantity
            next_restock += 1
        dates.append(supply[next_restock - 1].expected_at if covered >= wanted and need else None)
    return dates

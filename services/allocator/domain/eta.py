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


@dataclass(frozen=True)
class Run:
    """Waiting lines whose cumulative need falls in (after, through] expect `date`."""

    after: int
    through: int | None  # None: no end, beyond every scheduled unit
    date: datetime | None


class Schedule:
    """The restocks of one SKU as runs of cumulative need: the same dates as `expected_dates`,
    found for one line from its cumulative need alone."""

    def __init__(self, restocks: Sequence[Restock]) -> None:
        self.restocks = sorted(
            (r for r in restocks if r.quantity > 0), key=lambda r: (r.expected_at, r.po_id)
        )
        self.runs: list[Run] = []
        covered = 0
        for restock in self.restocks:
            self.runs.append(Run(covered, covered + restock.quantity, restock.expected_at))
            covered += restock.quantity
        self.runs.append(Run(covered, None, None))

    def date_for(self, cumulative_need: int) -> datetime | None:
        for run in self.runs:
            if run.through is None or cumulative_need <= run.through:
                return run.date
        return None  # unreachable: the last run has no end

    def behind(self, units: int) -> "Schedule":
        """The same restocks for lines that have `units` waiting ahead of all of them (a lower
        priority lane): a line's date then follows its need counted within its own lane."""
        shifted = Schedule(())
        shifted.restocks = self.restocks
        shifted.runs = [
            Run(
                max(0, run.after - units),
                None if run.through is None else run.through - units,
                run.date,
            )
            for run in self.runs
            if run.through is None or run.through > units
        ]
        return shifted

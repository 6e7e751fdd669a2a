"""Expected dates for waiting lines: pure, no I/O.

Walk the queue in arrival order against the scheduled restocks in date order: a line's date is
the `expected_at` of the restock whose cumulative quantity first covers everything the queue
needs up to and including that line. No date when nothing scheduled covers it.

Overdue restocks: a restock whose `expected_at` lies before `now` (the time of the decision)
has not come when it was due. It stays scheduled until it is received or withdrawn (or the
shop gives it a new date), but it is nobody's expected date and covers nobody: the queue is
walked against the restocks still to come, so a customer is never told a date gone by. Its
units come to the queue when they are received, like any stock.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Restock:
    po_id: str
    quantity: int
    expected_at: datetime


def split_overdue(
    restocks: Sequence[Restock], now: datetime | None
) -> tuple[list[Restock], list[Restock]]:
    """The restocks still to come, in date order, and those overdue at `now` (None: no clock,
    every restock is still to come). Withdrawn ones (no units) are neither."""
    scheduled = sorted(
        (r for r in restocks if r.quantity > 0), key=lambda r: (r.expected_at, r.po_id)
    )
    if now is None:
        return scheduled, []
    return [r for r in scheduled if r.expected_at >= now], [
        r for r in scheduled if r.expected_at < now
    ]


def expected_dates(
    needs: Sequence[int], restocks: Sequence[Restock], *, now: datetime | None = None
) -> list[datetime | None]:
    """`needs`: the units each waiting line still lacks, in queue order."""
    supply, _ = split_overdue(restocks, now)
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
    found for one line from its cumulative need alone. `now`: the time of the decision, before
    which a restock is overdue (kept in `overdue`, in no run); None only where time stands
    still (the property tests of the book)."""

    def __init__(self, restocks: Sequence[Restock], *, now: datetime | None = None) -> None:
        self.restocks, self.overdue = split_overdue(restocks, now)
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
        shifted.restocks, shifted.overdue = self.restocks, self.overdue
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

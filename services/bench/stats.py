"""Figures from raw timings: rates, percentiles, and the table that is printed."""

import math
from collections.abc import Sequence
from dataclasses import dataclass


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1))
    return ordered[rank]


@dataclass(frozen=True)
class Figure:
    """One row: a figure of the project beside the floor's, and which way is better."""

    name: str
    unit: str
    project: float
    floor: float | None
    higher_is_better: bool

    @property
    def ratio(self) -> float | None:
        """Project as a share of the floor: 1.0 is as good as the floor, below is worse."""
        if self.floor is None or not self.floor or not self.project:
            return None
        return self.project / self.floor if self.higher_is_better else self.floor / self.project


def table(figures: Sequence[Figure]) -> str:
    rows = [("figure", "project", "floor", "project / floor")]
    for f in figures:
        rows.append(
            (
                f"{f.name} ({f.unit})",
                _number(f.project),
                "" if f.floor is None else _number(f.floor),
                "" if f.ratio is None else f"{f.ratio:.1%}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"
        for row in rows
    ]
    lines.insert(1, "| " + " | ".join("-" * w for w in widths) + " |")
    return "\n".join(lines)


def _number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}"

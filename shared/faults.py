"""A fault hook for the crash proofs: `BACKORDER_FAULT=point:n` SIGKILLs the process the n-th
time it reaches `point`, the way a machine dies, with nothing flushed and no hook run.

The points are the steps of a batch's way out, in the order a batch passes them (see
`shared/messaging/outbox.py`); `tests/e2e/test_outbox_crash_proofs.py` kills a service at each
and checks that nothing is lost, doubled or reordered. Unset, a point costs one dict look-up.
"""

import os
import signal
from typing import Literal, get_args

Point = Literal[
    "before_db_commit",
    "after_db_commit",
    "before_send",
    "after_send",
    "before_offset_commit",
    "after_offset_commit",
    "before_bulk_delete",
]
POINTS: tuple[str, ...] = get_args(Point)

_armed: dict[str, int] = {}


def parse(spec: str) -> tuple[str, int]:
    """`point:n` as (point, n); raises ValueError naming what is wrong."""
    point, _, count = spec.partition(":")
    if point not in POINTS:
        raise ValueError(f"unknown fault point {point!r}; known: {', '.join(POINTS)}")
    if not count.isdigit() or int(count) < 1:
        raise ValueError(f"fault count {count!r} must be a whole number from 1 up")
    return point, int(count)


def arm(spec: str | None) -> None:
    _armed.clear()
    if spec:
        point, count = parse(spec)
        _armed[point] = count


def reached(point: Point) -> None:
    left = _armed.get(point)
    if left is None:
        return
    if left > 1:
        _armed[point] = left - 1
        return
    os.kill(os.getpid(), signal.SIGKILL)

"""What the allocator prunes, and why each horizon is safe (see shared/db/retention.py).

- `processed_message` rows of the allocator: the only thing that makes a redelivered
  `allocation.commands` message a no-op for a `receive-stock` (stock would otherwise be added
  twice), a `schedule-restock` or a `set-sku-policy`. They go after the dedupe horizon: the
  longest a record of `allocation.commands`, or its dead letter replayed, can still be
  delivered, plus `BACKORDER_RETENTION_DEDUPE_MARGIN_SECONDS`.
- Closed lines of `allocation_line`: cancelled or expired (a cancel on them does nothing), or
  wholly rejected (nothing held, nothing waiting; the order service counts a rejected line as
  closed and sends no cancel for it). A line that holds units is never closed here, however
  old: a later cancel must still pass its units on to the next in line, and nothing tells the
  allocator the units shipped. A closed line's row is also what makes a repeated
  `allocate-line` for it a no-op (`_allocate` finds the line and stops): if the row went while
  that allocate could still be redelivered and its dedupe row were gone, the line would be
  requested again and take stock. So closed lines go only after the later of the closed
  horizon and the dedupe horizon. The look-up API and `backorder queue` read waiting lines
  only; an order's lines are read from the order service's own tables.
- `allocation_early_cancel` rows: a cancel for a line whose allocate never reached the book.
  While that allocate can still come (from `allocation.commands`, or replayed from its dead
  letter), the row must stay, or the allocate would wait and take stock for a line the
  customer cancelled. The allocate cannot come after the dedupe horizon; the row goes after the
  later of both horizons. A row whose allocate came is deleted by the allocate itself.
"""

from collections.abc import Sequence

from services.allocator.handlers import CONSUMER
from shared.db.retention import Prunable, chunked_delete, later, service_horizons
from shared.settings import Settings

SERVICE = "allocator"

DEDUPE_ROWS = chunked_delete(
    "processed_message", "old.consumer = :consumer and old.processed_at < :before"
)
CLOSED_LINES = chunked_delete(
    "allocation_line",
    "(old.cancelled or (old.allocated = 0 and old.waiting = 0)) and old.updated_at < :before",
)
EARLY_CANCELS = chunked_delete("allocation_early_cancel", "old.received_at < :before")


def prunables(settings: Settings) -> Sequence[Prunable]:
    dedupe, closed = service_horizons(SERVICE, settings)
    closed_and_deduped = later(dedupe, closed)
    return [
        Prunable("processed_message", DEDUPE_ROWS, dedupe, {"consumer": CONSUMER}),
        Prunable("allocation_line", CLOSED_LINES, closed_and_deduped),
        Prunable("allocation_early_cancel", EARLY_CANCELS, closed_and_deduped),
    ]

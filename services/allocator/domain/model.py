"""What a SKU's book is made of: its policy and its order lines. Pure, no I/O."""

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Policy:
    backorders_allowed: bool = True
    # With backorders allowed: only returning customers may wait.
    returning_customers_only: bool = False
    max_backorder_quantity: int | None = None
    # Units one customer may have waiting for the SKU.
    max_backorder_quantity_per_customer: int | None = None
    # Told with the waiting lines: the shop's offer for the wait.
    delay_incentive: str | None = None
    # None: the global default applies (which may be "wait forever").
    max_wait: timedelta | None = None
    alternatives: tuple[str, ...] = ()
    # A line waiting longer than this (in its rank) is promoted one rank; None: the global one.
    aging: timedelta | None = None


@dataclass
class Line:
    order_id: str
    line_id: str
    quantity: int
    allocated: int = 0
    rejected: int = 0
    cancelled: bool = False
    reason: str | None = None
    # When the line joined the SKU's queue: its wait is measured from here.
    requested_at: datetime | None = None
    expired: bool = False
    # Where the line stands in its SKU's queue, once it joined it: its arrival number, and the
    # units queued up to and including it at that moment. Neither changes afterwards.
    seq: int | None = None
    through: int = 0
    # The expected date last told; a recomputation tells the line again only when it moves.
    eta: datetime | None = None
    # How often the line was told: the order service keeps the newest.
    revision: int = 0
    # The priority the order asked for: its tier and that tier's rank (0 the default tier,
    # higher served first). Aging may lift the rank the line waits in; this one stays.
    priority: str | None = None
    rank: int = 0
    # Whose line it is, as the order service stamped it; None on lines from before.
    customer_id: str | None = None

    @property
    def short(self) -> int:
        """Units this line still waits for."""
        return 0 if self.cancelled else self.quantity - self.allocated - self.rejected

    @property
    def status(self) -> str:
        if self.cancelled:
            return "expired" if self.expired else "cancelled"
        if self.short == 0:
            return "allocated" if self.allocated else "rejected"
        return "partially_allocated" if self.allocated else "backordered"

    @property
    def key(self) -> tuple[str, str]:
        return (self.order_id, self.line_id)


def describe_wait(wait: timedelta) -> str:
    seconds = int(wait.total_seconds())
    for unit, size in (("day", 86_400), ("hour", 3_600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} second{'s' if seconds != 1 else ''}"

"""What a SKU's book is made of: its policy and its order lines. Pure, no I/O."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import ConfigDict

from shared.contracts.policy import Backorders, SkuPolicyFields


class Policy(SkuPolicyFields):
    """The policy a SKU's book decides by: the SKU's own, or for a SKU without one the
    configured default for `backorders` and nothing else set."""

    # A keyword that is no field is a mistake here, not a newer sender's field.
    model_config = ConfigDict(extra="forbid")

    backorders: Backorders = "allow"

    @classmethod
    def of(cls, declared: SkuPolicyFields | None, *, default_backorders: str) -> "Policy":
        if declared is None:
            return cls(backorders=default_backorders)
        # Validated as it was declared: nothing to check again on every book opened.
        return cls.model_construct(**dict(declared))

    @property
    def backorders_allowed(self) -> bool:
        return self.backorders != "deny"

    @property
    def returning_customers_only(self) -> bool:
        """With backorders allowed: only returning customers may wait."""
        return self.backorders == "returning_customers"


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

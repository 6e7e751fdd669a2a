"""An order as the customer sees it: its lines' allocation and the status that follows. No I/O."""

from dataclasses import dataclass, field
from typing import Any

# Line statuses after which nothing changes; an order of only these takes the first one present.
CLOSED = ("cancelled", "expired", "rejected")


@dataclass
class OrderLine:
    line_id: str
    sku: str
    quantity: int
    allocated: int = 0
    backordered: int = 0
    rejected: int = 0
    # None until the SKU's decision point has decided on the line.
    status: str | None = None
    queue_position: int | None = None
    reason: str | None = None
    revision: int = 0
    # ISO-8601, or None: no date yet. `eta_change` says how it moved in the latest version.
    eta: str | None = None
    eta_change: str | None = None
    alternatives: list[str] = field(default_factory=list)

    @property
    def open(self) -> bool:
        return self.status not in CLOSED


@dataclass(frozen=True)
class LineDecision:
    line_id: str
    allocated: int
    backordered: int
    rejected: int
    status: str
    queue_position: int | None
    reason: str | None
    revision: int
    eta: str | None = None
    eta_change: str | None = None
    alternatives: tuple[str, ...] = ()


@dataclass
class Order:
    order_id: str
    lines: list[OrderLine]
    version: int = 0
    published: dict[str, Any] | None = field(default=None, repr=False)

    def line(self, line_id: str) -> OrderLine | None:
        return next((line for line in self.lines if line.line_id == line_id), None)

    def lines_to_cancel(self, line_ids: list[str] | None) -> list[OrderLine]:
        """The named lines (all when None) that a cancellation still affects."""
        targets = self.lines if line_ids is None else [self.line(i) for i in line_ids]
        return [line for line in targets if line is not None and line.open]

    def unknown_lines(self, line_ids: list[str] | None) -> list[str]:
        return [i for i in line_ids or [] if self.line(i) is None]

    def cancel_before_allocation(self, line_ids: list[str] | None, reason: str | None) -> None:
        """A cancel that arrived before the order: those lines never reach a queue."""
        for line in self.lines_to_cancel(line_ids):
            line.status, line.reason = "cancelled", reason

    def apply(self, decision: LineDecision) -> bool:
        """Takes the allocator's newer view of a line; an older or repeated one changes nothing."""
        line = self.line(decision.line_id)
        if line is None or decision.revision <= line.revision:
            return False
        for other in self.lines:
            other.eta_change = None  # a change of date is news only in the version that makes it
        line.allocated, line.backordered, line.rejected = (
            decision.allocated,
            decision.backordered,
            decision.rejected,
        )
        line.status, line.queue_position = decision.status, decision.queue_position
        line.reason, line.revision = decision.reason, decision.revision
        line.eta, line.eta_change = decision.eta, decision.eta_change
        line.alternatives = list(decision.alternatives)
        return True

    @property
    def decided(self) -> bool:
        return all(line.status is not None for line in self.lines)

    @property
    def status(self) -> str:
        open_lines = [line for line in self.lines if line.open]
        if not open_lines:
            present = {line.status for line in self.lines}
            return next(status for status in CLOSED if status in present)
        if all(line.status == "allocated" for line in open_lines):
            return "allocated"
        if any(line.allocated for line in open_lines):
            return "partially_allocated"
        return "backordered"

    @property
    def reason(self) -> str | None:
        """Why the order is not wholly as asked: its lines' closing reason, or why units of an
        open order were refused."""
        status = self.status
        if status in CLOSED:
            return next((ln.reason for ln in self.lines if ln.status == status and ln.reason), None)
        return next((ln.reason for ln in self.lines if ln.rejected and ln.reason), None)

    def picture(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "reason": self.reason,
            "lines": [
                {
                    "line_id": line.line_id,
                    "sku": line.sku,
                    "quantity": line.quantity,
                    "allocated": line.allocated,
                    "backordered": line.backordered,
                    "rejected": line.rejected,
                    "status": line.status,
                    "queue_position": line.queue_position,
                    "eta": line.eta,
                    "eta_change": line.eta_change,
                    "reason": line.reason,
                    "alternatives": line.alternatives,
                }
                for line in self.lines
            ],
        }

    def next_picture(self) -> dict[str, Any] | None:
        """The picture to publish as a new version, or None when nothing a customer sees changed."""
        if not self.decided:
            return None
        picture = self.picture()
        if picture == self.published:
            return None
        self.version += 1
        self.published = picture
        return picture

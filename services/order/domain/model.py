"""An order as the customer sees it: its lines' allocation, the status that follows, and the
picture a customer is shown of both. No I/O."""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from pydantic import BaseModel, ConfigDict

from services.order.domain import fitting
from shared.contracts.inputs import Customer, OrderPlaced
from shared.contracts.internal import LineAllocationChanged
from shared.contracts.outputs import (
    EtaChange,
    LineStatus,
    OrderLineState,
    OrderStatus,
    SubstituteOffer,
)

# Line statuses after which nothing changes; an order of only these takes the first one present.
CLOSED: tuple[LineStatus, ...] = ("cancelled", "expired", "rejected", "substituted")


@dataclass
class OrderLine:
    """Field names are the `order_line` table's column names: the repository maps by name."""

    line_id: str
    sku: str
    quantity: int
    allocated: int = 0
    backordered: int = 0
    rejected: int = 0
    # None until the SKU's decision point has decided on the line.
    status: LineStatus | None = None
    queue_position: int | None = None
    reason: str | None = None
    revision: int = 0
    # ISO-8601, or None: no date yet. `eta_change` says how it moved in the latest version.
    eta: str | None = None
    eta_change: EtaChange | None = None
    alternatives: list[str] = field(default_factory=list)
    delay_incentive: str | None = None
    # While the line waits: every alternative of its SKU's policy, as last told; the customer
    # may take one of them for the waiting part.
    substitutes: list[str] = field(default_factory=list)
    # On a line the customer took instead of another's waiting part: that line's id.
    replaces: str | None = None
    # The customer asked to cancel the line and its SKU's book has not said so yet: a
    # substitute of it still on its way is cancelled as it arrives, never requested.
    cancel_requested: bool = False
    cancel_reason: str | None = None

    @property
    def waiting(self) -> bool:
        return self.open and self.backordered > 0

    @property
    def open(self) -> bool:
        return self.status not in CLOSED

    def state(self, substitute: "OrderLine | None" = None) -> OrderLineState:
        """What the customer is shown of the line; `substitute`: the line taken instead of
        its waiting part, whose units are swapped, not refused."""
        assert self.status is not None, "a picture is only taken of decided lines"
        status, rejected, swapped = self.status, self.rejected, 0
        if substitute is not None and not self.cancel_requested:
            swapped = substitute.quantity
            if status == "cancelled":  # held nothing: wholly swapped
                status = "substituted"
            else:  # kept what it held; the book counted the swapped units as closed
                rejected = max(0, rejected - swapped)
        return OrderLineState(
            line_id=self.line_id,
            sku=self.sku,
            quantity=self.quantity,
            allocated=self.allocated,
            backordered=self.backordered,
            rejected=rejected,
            substituted=swapped,
            substituted_by=substitute.sku if substitute is not None and swapped else None,
            status=status,
            queue_position=self.queue_position,
            eta=datetime.fromisoformat(self.eta) if self.eta else None,
            eta_change=self.eta_change,
            reason=self.reason,
            alternatives=self.alternatives,
            substitutes=[
                SubstituteOffer(sku=sku, in_stock=sku in self.alternatives)
                for sku in self.substitutes
            ]
            if self.waiting
            else [],
            delay_incentive=self.delay_incentive,
        )


class SubstitutionRefused(Exception):
    """A substitution the order cannot take; the message says why."""


# Joins a substitute line's id from its original line's id and the SKU taken; reserved in the
# line ids an order is placed with (shared/contracts/inputs.py), so no placed line can take
# the id of a substitute.
SUBSTITUTE_SEPARATOR = "~"


class Picture(BaseModel):
    """What a customer is shown of an order; a new one is published as the next version."""

    model_config = ConfigDict(frozen=True)

    status: OrderStatus
    reason: str | None
    lines: tuple[OrderLineState, ...]


@dataclass
class Order:
    order_id: str
    customer: Customer
    placed_at: datetime
    lines: list[OrderLine]
    version: int = 0
    published: Picture | None = field(default=None, repr=False)
    # The priority tier the order asked for; None: the shop's default tier.
    priority: str | None = None

    @classmethod
    def place(cls, placed: OrderPlaced) -> "Order":
        return cls(
            order_id=placed.order_id,
            customer=placed.customer,
            placed_at=placed.placed_at,
            lines=[OrderLine(line.line_id, line.sku, line.quantity) for line in placed.lines],
            priority=placed.priority,
        )

    def same_as(self, placed: OrderPlaced) -> bool:
        """Whether `placed` is this order again; times compare as instants, whatever the offset
        they were written with."""
        customer = self.customer
        return (
            customer.id,
            str(customer.email),
            customer.name,
            customer.returning,
            self.placed_at,
            [(line.line_id, line.sku, line.quantity) for line in self.lines if not line.replaces],
            self.priority,
        ) == (
            placed.customer.id,
            str(placed.customer.email),
            placed.customer.name,
            placed.customer.returning,
            placed.placed_at,
            [(line.line_id, line.sku, line.quantity) for line in placed.lines],
            placed.priority,
        )

    def line(self, line_id: str) -> OrderLine | None:
        return next((line for line in self.lines if line.line_id == line_id), None)

    def lines_to_cancel(self, line_ids: list[str] | None) -> list[OrderLine]:
        """The named lines (all when None) that a cancellation still affects, with the
        substitutes taken for them: cancelling a line cancels what replaced its waiting part."""
        named = {line.line_id for line in self.lines} if line_ids is None else set(line_ids)
        return [
            line
            for line in self.lines
            if line.open and any(seen.line_id in named for seen in self._swapped_from(line))
        ]

    def request_cancel(self, line_ids: list[str] | None, reason: str | None) -> list[OrderLine]:
        """Marks the lines a cancellation affects, so that a substitute of one of them that
        is still on its way is cancelled when it arrives; returns them, for their SKUs' books."""
        lines = self.lines_to_cancel(line_ids)
        for line in lines:
            line.cancel_requested, line.cancel_reason = True, reason
        return lines

    def _swapped_from(self, line: OrderLine) -> Iterator[OrderLine]:
        """`line`, then the line it replaced, and so on back to the line the order was placed
        with."""
        seen: OrderLine | None = line
        while seen is not None:
            yield seen
            seen = self.line(seen.replaces) if seen.replaces else None

    def unknown_lines(self, line_ids: list[str] | None) -> list[str]:
        return [i for i in line_ids or [] if self.line(i) is None]

    def cancel_before_allocation(self, line_ids: list[str] | None, reason: str | None) -> None:
        """A cancel that arrived before the order: those lines never reach a queue."""
        for line in self.lines_to_cancel(line_ids):
            line.status, line.reason = "cancelled", reason

    def line_to_substitute(
        self, line_id: str, sku: str, *, picture_limit: int | None = None
    ) -> OrderLine | None:
        """The waiting line whose waiting part the customer swaps for `sku`, one of its SKU
        policy's alternatives; None when this swap was asked before: a repeat changes nothing.
        With `picture_limit`, a swap whose added line could make the order's picture larger
        than every consumer accepts is refused too. Raises SubstitutionRefused."""
        if any(other.replaces == line_id and other.sku == sku for other in self.lines):
            return None
        line = self.line(line_id)
        if line is None:
            raise SubstitutionRefused(f"order {self.order_id} has no line {line_id}")
        if line.cancel_requested:
            raise SubstitutionRefused(
                f"line {line_id} of order {self.order_id} is being cancelled at the "
                "customer's request"
            )
        if not line.waiting:
            raise SubstitutionRefused(
                f"line {line_id} of order {self.order_id} is not waiting "
                f"(status {line.status or 'undecided'})"
            )
        if sku not in line.substitutes:
            offered = ", ".join(line.substitutes) or "none"
            raise SubstitutionRefused(
                f"{sku} is not an alternative of {line.sku} (its alternatives: {offered})"
            )
        if picture_limit is not None:
            added = (self.substitute_line_id(line, sku), sku, line.backordered)
            lines = [(ln.line_id, ln.sku, ln.quantity) for ln in self.lines] + [added]
            largest = fitting.size(fitting.worst_case_of(self.order_id, self.customer, lines))
            if largest > picture_limit:
                raise SubstitutionRefused(
                    f"order too large: with a line for {sku} its status could take {largest} "
                    f"bytes, over the limit of {picture_limit}"
                )
        return line

    def apply(self, change: LineAllocationChanged) -> bool:
        """Takes the allocator's newer view of a line; an older or repeated one changes nothing."""
        line = self.line(change.line_id)
        if line is None or change.revision <= line.revision:
            return False
        for other in self.lines:
            other.eta_change = None  # a change of date is news only in the version that makes it
        line.allocated, line.backordered, line.rejected = (
            change.allocated,
            change.backordered,
            change.rejected,
        )
        line.status, line.queue_position = change.status, change.queue_position
        line.reason, line.revision = change.reason, change.revision
        line.eta = change.eta.isoformat() if change.eta else None
        line.eta_change = change.eta_change
        line.alternatives = list(change.alternatives)
        line.delay_incentive = change.delay_incentive
        line.substitutes = list(change.substitutes)
        if change.substituted_by and change.substituted:
            self._add_substitute(line, change.substituted_by, change.substituted)
        return True

    def _add_substitute(self, replaced: OrderLine, sku: str, quantity: int) -> None:
        """The line for the SKU taken instead: undecided, so no version is published until
        its SKU's book has decided on it, and that version shows both lines. When the customer
        cancelled the replaced line meanwhile, the substitute is born cancelled: it is never
        requested, so it holds nothing."""
        if any(line.replaces == replaced.line_id for line in self.lines):
            return
        line = OrderLine(self.substitute_line_id(replaced, sku), sku, quantity)
        line.replaces = replaced.line_id
        if replaced.cancel_requested:
            line.status, line.reason = "cancelled", replaced.cancel_reason
        self.lines.append(line)

    def substitute_line_id(self, replaced: OrderLine, sku: str) -> str:
        """`<line>~<sku>` for the first swap of a placed line; a swap of a substitute keeps
        the placed line's id and counts the swaps (`<line>~<n>~<sku>`), so ids stay bounded
        however often a customer swaps back and forth."""
        chain = list(self._swapped_from(replaced))
        root, swaps = chain[-1], len(chain)
        sep = SUBSTITUTE_SEPARATOR
        count = "" if swaps == 1 else f"{swaps}{sep}"
        line_id = f"{root.line_id}{sep}{count}{sku}"
        # Only a SKU that itself holds the separator could make two swaps meet.
        taken, n = {line.line_id for line in self.lines}, 1
        unique = line_id
        while unique in taken:
            n += 1
            unique = f"{line_id}{sep}{n}"
        return unique

    def undecided(self) -> list[OrderLine]:
        """Lines no SKU's book has been asked about yet."""
        return [line for line in self.lines if line.status is None]

    @property
    def decided(self) -> bool:
        return all(line.status is not None for line in self.lines)

    @property
    def status(self) -> OrderStatus:
        return _order_status(self.lines)

    @property
    def reason(self) -> str | None:
        """Why the order is not wholly as asked: its lines' closing reason, or why units of an
        open order were refused."""
        status = self.status
        if status in CLOSED:
            return next((ln.reason for ln in self.lines if ln.status == status and ln.reason), None)
        return next((ln.reason for ln in self.lines if ln.rejected and ln.reason), None)

    def picture(self) -> Picture:
        substitutes = {line.replaces: line for line in self.lines if line.replaces}
        lines = tuple(line.state(substitutes.get(line.line_id)) for line in self.lines)
        return Picture(status=_order_status(lines), reason=self.reason, lines=lines)

    def next_picture(self) -> Picture | None:
        """The picture to publish as a new version, or None when nothing a customer sees changed."""
        if not self.decided:
            return None
        picture = self.picture()
        if picture == self.published:
            return None
        self.version += 1
        self.published = picture
        return picture


def _order_status(lines: "Sequence[OrderLine | OrderLineState]") -> OrderStatus:
    open_lines = [line for line in lines if line.status not in CLOSED]
    if not open_lines:
        present = {line.status for line in lines}
        return next(status for status in CLOSED if status in present)
    if all(line.status == "allocated" for line in open_lines):
        return "allocated"
    if any(line.allocated for line in open_lines):
        return "partially_allocated"
    return "backordered"

"""Messages this project publishes for upstream systems."""

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, NonNegativeInt, PositiveInt, WithJsonSchema

from shared.contracts.common import Contract
from shared.contracts.inputs import Customer

# expired: cancelled because the line waited longer than its SKU's maximum wait.
# substituted: the customer took another SKU (`substituted_by`) for everything the line still
# waited for, and it held nothing; the line taken instead follows it in the order.
LineStatus = Literal[
    "allocated",
    "partially_allocated",
    "backordered",
    "rejected",
    "cancelled",
    "expired",
    "substituted",
]
OrderStatus = LineStatus
# How a line's expected date moved in this version: a later date is a delay.
EtaChange = Literal["set", "delayed", "earlier", "cleared"]


def _absent(value: object) -> bool:
    return value is None


def eta_change(before: datetime | None, after: datetime | None) -> EtaChange | None:
    """How a line's expected date moved: what a customer is told."""
    if before == after:
        return None
    if after is None:
        return "cleared"
    if before is None:
        return "set"
    return "delayed" if after > before else "earlier"


class SubstituteOffer(Contract):
    sku: str
    in_stock: bool


class OrderLineState(Contract):
    line_id: str
    sku: str
    quantity: PositiveInt
    allocated: NonNegativeInt
    backordered: NonNegativeInt
    rejected: NonNegativeInt
    status: LineStatus
    # Position in the SKU's queue when this picture was taken; 1 is filled next.
    queue_position: PositiveInt | None = None
    # Expected date while the line waits: when scheduled restocks cover it; None: no date yet.
    eta: datetime | None = None
    eta_change: EtaChange | None = None
    reason: str | None = None
    # Units the customer swapped for `substituted_by` (a line of its own in the same order);
    # never counted as `rejected`. Left out of the JSON when the line was not swapped.
    substituted: NonNegativeInt = Field(default=0, exclude_if=lambda value: not value)
    substituted_by: str | None = Field(default=None, exclude_if=_absent)
    # While the line waits: the SKU's alternatives that were in stock when this was decided.
    alternatives: list[str] = Field(default_factory=list)
    # While the line waits: every alternative its SKU's policy offers, which the customer may
    # take for the waiting part (`orders.substitution-requested`), in stock or not. Left out
    # of the JSON when there is none.
    substitutes: list[SubstituteOffer] = Field(
        default_factory=list, exclude_if=lambda value: not value
    )
    # While the line waits: the SKU's offer for the wait (its policy's delay_incentive). Left
    # out of the JSON when there is none, so a shop without incentives sees no new field.
    delay_incentive: str | None = Field(default=None, exclude_if=_absent)


class OrderStatusChanged(Contract):
    """`orders.status-changed`, key `order_id`: the whole order after each change."""

    order_id: str
    status: OrderStatus
    version: PositiveInt
    lines: list[OrderLineState]
    reason: str | None = None
    occurred_at: datetime
    # Who to tell; absent on versions published before it was added.
    customer: Customer | None = None
    # The priority tier the order waits in: the one it asked for, or the shop's default tier
    # when it asked for none. Absent on versions published before it was added.
    priority: str | None = None


class CustomerToldBefore(Customer):
    # Checked once, when the order was placed; the check is nine tenths of what validating a
    # whole status change costs, and nothing but this project writes orders.status-changed.
    email: Annotated[str, WithJsonSchema({"type": "string", "format": "email"})]


class OrderStatusChangedReadBack(OrderStatusChanged):
    """`OrderStatusChanged` as this project reads its own output back (the notifier): the same
    fields and schema, without checking the customer's e-mail address a second time."""

    customer: CustomerToldBefore | None = None

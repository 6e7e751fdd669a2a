"""Messages between the services.

Everything that changes one SKU's book travels on `allocation.commands`, keyed by SKU, so the
SKU's partition is its single decision point and fixes the arrival order of its queue.
"""

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, NonNegativeInt, PositiveInt, model_validator

from shared.contracts.common import Contract
from shared.contracts.outputs import EtaChange, LineStatus
from shared.contracts.policy import SkuPolicyFields


class AllocateLine(Contract):
    type: Literal["allocate-line"] = "allocate-line"
    order_id: str
    line_id: str
    sku: str
    quantity: PositiveInt
    # Stamped by the order service: whose line it is (per-customer caps) and whether that
    # customer counts as returning (returning_customers policies). Absent on commands sent
    # before they were stamped: an unknown, non-returning customer.
    customer_id: str | None = None
    returning_customer: bool = False
    # The order's priority tier and its rank (0: the default tier), as the order service
    # resolved them from its configured tiers.
    priority: str | None = None
    rank: NonNegativeInt = 0


class CancelLine(Contract):
    type: Literal["cancel-line"] = "cancel-line"
    order_id: str
    line_id: str
    sku: str
    reason: str | None = None


class SubstituteLine(Contract):
    """Keyed by the line's SKU: its waiting part leaves the queue for `substitute`."""

    type: Literal["substitute-line"] = "substitute-line"
    order_id: str
    line_id: str
    sku: str
    substitute: str
    reason: str | None = None


class ReceiveStock(Contract):
    type: Literal["receive-stock"] = "receive-stock"
    receipt_id: str
    sku: str
    quantity: PositiveInt
    po_id: str | None = None


class ScheduleRestock(Contract):
    type: Literal["schedule-restock"] = "schedule-restock"
    po_id: str
    sku: str
    # 0 withdraws the restock.
    quantity: NonNegativeInt
    expected_at: datetime


# The names the flat commands gave the policy's durations, which they carried in seconds.
_RENAMED = {"max_wait_seconds": "max_wait", "aging_seconds": "aging"}


class SetSkuPolicy(Contract):
    type: Literal["set-policy"] = "set-policy"
    sku: str
    # None: the SKU's policy was deleted, so the configured defaults apply again.
    policy: SkuPolicyFields | None

    @model_validator(mode="before")
    @classmethod
    def _nest_a_flat_policy(cls, data: Any) -> Any:
        """Commands written before the policy was nested (still in the topic, in an outbox or
        in a dead-letter topic when this version starts) carry its fields beside `sku`, the
        durations in seconds, and a deleted policy as `backorders: null`."""
        if not isinstance(data, dict) or "policy" in data or "backorders" not in data:
            return data
        fields = {
            _RENAMED.get(name, name): value
            for name, value in data.items()
            if name not in ("type", "sku")
        }
        kept = {name: data[name] for name in ("type", "sku") if name in data}
        return kept | {"policy": fields if fields["backorders"] is not None else None}


AllocationCommand = Annotated[
    AllocateLine | CancelLine | SubstituteLine | ReceiveStock | SetSkuPolicy | ScheduleRestock,
    Field(discriminator="type"),
]


class LineAllocationChanged(Contract):
    """`allocation.line-changed`, key `order_id`: the allocator's view of one line."""

    order_id: str
    line_id: str
    sku: str
    quantity: PositiveInt
    allocated: NonNegativeInt
    backordered: NonNegativeInt
    rejected: NonNegativeInt
    status: LineStatus
    queue_position: PositiveInt | None = None
    # When the scheduled restocks are expected to cover the line; None: no date yet.
    eta: datetime | None = None
    eta_change: EtaChange | None = None
    reason: str | None = None
    alternatives: list[str] = Field(default_factory=list)
    # While the line waits: the SKU policy's offer for the wait, if it has one.
    delay_incentive: str | None = Field(default=None, exclude_if=lambda value: value is None)
    # While the line waits: every alternative of the SKU's policy, in stock or not, which the
    # customer may take for the waiting part (orders.substitution-requested).
    substitutes: list[str] = Field(default_factory=list, exclude_if=lambda value: not value)
    # Set once, in the change that closed the line's waiting part at the customer's request:
    # the SKU taken instead and the units it is to be requested for.
    substituted_by: str | None = Field(default=None, exclude_if=lambda value: value is None)
    substituted: NonNegativeInt = Field(default=0, exclude_if=lambda value: not value)
    # Grows with every change of the line, so a stale or repeated event is recognised.
    revision: PositiveInt
    occurred_at: datetime

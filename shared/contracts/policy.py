"""A SKU's policy, declared once.

Every other shape of it is this one: the shop's message (`inputs.SkuPolicy`) adds the SKU, the
command to the SKU's book (`internal.SetSkuPolicy`) carries it, the inventory's and the
allocator's tables store it whole (one JSONB column each, read back through this model), the
allocator's domain decides by it (`services.allocator.domain.model.Policy` adds the defaults)
and the operator's views show it. So a new rule is a field here and its use in the domain.
"""

from typing import Literal

from pydantic import Field, NonNegativeInt

from shared.contracts.common import INCENTIVE_MAX_LENGTH, Contract, Duration, IncentiveText, Sku

Backorders = Literal["allow", "deny", "returning_customers"]


class SkuPolicyFields(Contract):
    """What the shop allows for a SKU's backorders."""

    backorders: Backorders = Field(
        description="returning_customers: only customers who bought before may wait; the "
        "missing part of anyone else's line is rejected."
    )
    max_backorder_quantity: NonNegativeInt | None = None
    max_backorder_quantity_per_customer: NonNegativeInt | None = Field(
        default=None,
        description="Units one customer may have waiting for the SKU; the part of a line "
        "beyond it is rejected, the rest waits.",
    )
    # ISO 8601 ("P14D") or seconds. A line waiting longer is cancelled; None: the global default.
    max_wait: Duration | None = None
    aging: Duration | None = Field(
        default=None,
        description='ISO 8601 ("P3D") or seconds: a line that waited longer than this in its '
        "priority tier is promoted one tier. Absent: BACKORDER_PRIORITY_AGING.",
    )
    # Offered in backorder and delay messages while they are in stock.
    alternatives: list[Sku] = Field(default_factory=list, max_length=20)
    delay_incentive: IncentiveText | None = Field(
        default=None,
        description="One line offered for the wait in backordered and date-changed notices "
        f'(e.g. "10% off your next order with code WAIT10"), up to {INCENTIVE_MAX_LENGTH} '
        "characters.",
    )
    discontinued: bool = Field(
        default=False,
        strict=True,
        description="The shop no longer restocks the SKU: the part of a new line that stock "
        "does not cover is rejected instead of waiting; lines already waiting keep waiting "
        "until cancelled or expired.",
    )

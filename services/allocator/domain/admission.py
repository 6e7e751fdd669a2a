"""Who may wait for a SKU, and for how many units: the policy's rules for the part of a line
that stock does not cover. Pure, no I/O; both books ask it.

The rules apply in this order, and the first that refuses everything decides the reason:

1. `discontinued` refuses every missing unit: the shop no longer restocks the SKU, so a
   new line would wait for nothing (lines already waiting are not new: they keep waiting
   until cancelled or expired);
2. `backorders: deny` refuses every missing unit;
3. `backorders: returning_customers` refuses every missing unit of a customer who is not
   returning (the order service says who is: the shop's word, else this system's history);
4. `max_backorder_quantity_per_customer` refuses the units that would take the customer's
   waiting units for the SKU over it: the rest of the line may wait;
5. `max_backorder_quantity` refuses every unit still missing when the SKU's waiting units
   would go over it (as it always has: all or nothing).
"""

from dataclasses import dataclass

from services.allocator.domain.model import Policy


@dataclass(frozen=True)
class Applicant:
    """The customer behind a line, as the order service stamped it."""

    customer_id: str | None = None
    returning: bool = False


@dataclass(frozen=True)
class Admission:
    """Of a line's missing units: how many are refused, and why (None: none refused)."""

    refused: int = 0
    reason: str | None = None


def admit(
    *,
    policy: Policy,
    sku: str,
    applicant: Applicant,
    missing: int,
    sku_waiting: int,
    customer_waiting: int,
) -> Admission:
    """`sku_waiting`: units every line of the SKU waits for now; `customer_waiting`: those of
    this applicant's lines (0 when the policy sets no per-customer cap)."""
    if policy.discontinued:
        return Admission(missing, f"SKU {sku} is discontinued and will not be restocked")
    if not policy.backorders_allowed:
        return Admission(missing, f"backorders are not allowed for SKU {sku}")
    if policy.returning_customers_only and not applicant.returning:
        return Admission(
            missing, f"backorders for SKU {sku} are only accepted from returning customers"
        )
    refused, reason = 0, None
    per_customer = policy.max_backorder_quantity_per_customer
    if per_customer is not None:
        refused = max(0, min(missing, customer_waiting + missing - per_customer))
        if refused:
            reason = (
                f"maximum backorder quantity {per_customer} per customer for SKU {sku}"
                " would be exceeded"
            )
    limit = policy.max_backorder_quantity
    if limit is not None and missing > refused and sku_waiting + missing - refused > limit:
        return Admission(
            missing, f"maximum backorder quantity {limit} for SKU {sku} would be exceeded"
        )
    return Admission(refused, reason)

"""Messages published by upstream shop systems."""

from typing import Annotated

from pydantic import EmailStr, Field, model_validator

from shared.contracts.common import (
    AwareDatetime,
    Contract,
    Identifier,
    LineReference,
    PlacedLineId,
    PriorityTier,
    Quantity,
    ShortText,
    Sku,
)
from shared.contracts.policy import SkuPolicyFields


class Customer(Contract):
    id: Identifier
    email: EmailStr
    name: ShortText | None = None
    # The shop's word on whether the customer bought before; it wins over this system's own
    # history either way. None: the history decides (see README, "Who may backorder").
    returning: bool | None = Field(
        default=None,
        strict=True,
        # Left out of the JSON when not said, so status pictures stay as they were.
        exclude_if=lambda value: value is None,
        description="Whether the customer bought before, as the shop knows it; wins over this "
        "system's own history either way. Absent: an earlier order here that was not wholly "
        "rejected, cancelled or expired makes the customer returning.",
    )


class OrderLine(Contract):
    line_id: PlacedLineId = Field(
        description="Unique within the order; `~` is reserved for the lines substitutions add."
    )
    sku: Sku
    quantity: Quantity


class OrderPlaced(Contract):
    """`orders.placed`, key `order_id`."""

    order_id: Identifier
    customer: Customer
    lines: list[OrderLine] = Field(min_length=1, max_length=200)
    placed_at: AwareDatetime
    priority: PriorityTier | None = Field(
        default=None,
        description="The priority tier the order's lines wait in: one of the shop's "
        "BACKORDER_PRIORITY_TIERS (an unknown one is dead-lettered). Absent: the default tier. "
        "Higher tiers are served first, each in arrival order.",
    )

    @model_validator(mode="after")
    def _line_ids_are_unique(self) -> "OrderPlaced":
        ids = [line.line_id for line in self.lines]
        if len(ids) != len(set(ids)):
            raise ValueError("duplicate line_id in lines")
        return self


class CancelRequested(Contract):
    """`orders.cancel-requested`, key `order_id`; no `line_ids` cancels every line."""

    order_id: Identifier
    line_ids: list[LineReference] | None = Field(default=None, min_length=1, max_length=200)
    reason: ShortText | None = None

    @model_validator(mode="after")
    def _line_ids_are_unique(self) -> "CancelRequested":
        if self.line_ids is not None and len(self.line_ids) != len(set(self.line_ids)):
            raise ValueError("duplicate line_id in line_ids")
        return self


class SubstitutionRequested(Contract):
    """`orders.substitution-requested`, key `order_id`: the customer takes `sku`, one of the
    line's SKU policy alternatives, for the part of the line still waiting."""

    order_id: Identifier
    line_id: LineReference
    sku: Sku = Field(description="The alternative SKU the customer takes instead.")
    reason: ShortText | None = None


class StockReceived(Contract):
    """`inventory.stock-received`, key `sku`; `po_id` names the scheduled restock it fulfils."""

    receipt_id: Identifier
    sku: Sku
    quantity: Quantity
    received_at: AwareDatetime
    po_id: Identifier | None = None


class RestockScheduled(Contract):
    """`inventory.restock-scheduled`, key `sku`: a later message for a `po_id` replaces the
    earlier one; quantity 0 withdraws it."""

    po_id: Identifier
    sku: Sku
    quantity: Annotated[int, Field(ge=0, le=1_000_000, strict=True)]
    expected_at: AwareDatetime


class SkuPolicy(SkuPolicyFields):
    """`inventory.sku-policy`, key `sku`, compacted: the latest message per SKU is its policy."""

    sku: Sku

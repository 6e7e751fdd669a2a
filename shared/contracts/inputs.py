"""Messages published by upstream shop systems."""

from typing import Annotated, Literal

from pydantic import EmailStr, Field, NonNegativeInt, model_validator

from shared.contracts.common import (
    AwareDatetime,
    Contract,
    Duration,
    Identifier,
    Quantity,
    ShortText,
    Sku,
)


class Customer(Contract):
    id: Identifier
    email: EmailStr
    name: ShortText | None = None


class OrderLine(Contract):
    line_id: Identifier
    sku: Sku
    quantity: Quantity


class OrderPlaced(Contract):
    """`orders.placed`, key `order_id`."""

    order_id: Identifier
    customer: Customer
    lines: list[OrderLine] = Field(min_length=1, max_length=200)
    placed_at: AwareDatetime

    @model_validator(mode="after")
    def _line_ids_are_unique(self) -> "OrderPlaced":
        ids = [line.line_id for line in self.lines]
        if len(ids) != len(set(ids)):
            raise ValueError("duplicate line_id in lines")
        return self


class CancelRequested(Contract):
    """`orders.cancel-requested`, key `order_id`; no `line_ids` cancels every line."""

    order_id: Identifier
    line_ids: list[Identifier] | None = Field(default=None, min_length=1, max_length=200)
    reason: ShortText | None = None

    @model_validator(mode="after")
    def _line_ids_are_unique(self) -> "CancelRequested":
        if self.line_ids is not None and len(self.line_ids) != len(set(self.line_ids)):
            raise ValueError("duplicate line_id in line_ids")
        return self


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


class SkuPolicy(Contract):
    """`inventory.sku-policy`, key `sku`, compacted: the latest message per SKU is its policy."""

    sku: Sku
    backorders: Literal["allow", "deny"]
    max_backorder_quantity: NonNegativeInt | None = None
    # ISO 8601 ("P14D") or seconds. A line waiting longer is cancelled; None: the global default.
    max_wait: Duration | None = None
    # Offered in backorder and delay messages while they are in stock.
    alternatives: list[Sku] = Field(default_factory=list, max_length=20)

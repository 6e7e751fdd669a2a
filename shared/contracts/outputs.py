"""Messages this project publishes for upstream systems."""

from datetime import datetime
from typing import Literal

from pydantic import NonNegativeInt, PositiveInt

from shared.contracts.common import Contract

LineStatus = Literal["allocated", "partially_allocated", "backordered", "rejected", "cancelled"]
OrderStatus = LineStatus
# How a line's expected date moved in this version: a later date is a delay.
EtaChange = Literal["set", "delayed", "earlier", "cleared"]


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


class OrderStatusChanged(Contract):
    """`orders.status-changed`, key `order_id`: the whole order after each change."""

    order_id: str
    status: OrderStatus
    version: PositiveInt
    lines: list[OrderLineState]
    reason: str | None = None
    occurred_at: datetime

"""Typed views of orders, SKU queues and demand: what the queries return, the look-up API
answers (as its response models) and the command line shows."""

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from shared.contracts.policy import SkuPolicyFields


class _View(BaseModel):
    # Built from database rows by attribute; never changed once read.
    model_config = ConfigDict(from_attributes=True, frozen=True)


class OrderLineView(_View):
    line_id: str
    sku: str
    quantity: int
    allocated: int
    backordered: int
    rejected: int
    status: str | None
    queue_position: int | None
    eta: datetime | None
    reason: str | None


class OrderView(_View):
    """An order as the look-up API shows it: no personal data."""

    order_id: str
    status: str | None
    version: int
    placed_at: datetime
    # The priority tier the order asked for; None: the shop's default tier.
    priority: str | None = None
    lines: list[OrderLineView]


class OrderState(OrderView):
    """An order as operators see it: the public view and whom to contact about it."""

    customer_email: str

    def public(self) -> OrderView:
        # From its fields: validating the instance itself would hand back this subclass.
        return OrderView.model_validate(self.model_dump())


class QueuedLineView(_View):
    position: int
    order_id: str
    line_id: str
    quantity: int
    allocated: int
    waiting: int
    placed_at: datetime | None
    # The tier the order asked for (None: the default), and the rank the line waits in now:
    # the tier's rank, raised by one for each aging promotion.
    priority: str | None = None
    rank: int = 0


class _SkuQueueBase(_View):
    sku: str
    available: int
    received_total: int
    # The SKU's own policy, every field of it; None: it has none, the service's defaults apply.
    policy: SkuPolicyFields | None = None
    queue: list[QueuedLineView]


class SkuQueueView(_SkuQueueBase):
    """A SKU's stock, policy and queue in arrival order; `backorders` is the rule in force: the
    SKU policy's, or the service's default."""

    backorders: str


class SkuBook(_SkuQueueBase):
    """A SKU's queue as its tables hold it."""

    def in_force(self, *, default_backorders: str) -> SkuQueueView:
        backorders = default_backorders if self.policy is None else self.policy.backorders
        return SkuQueueView.model_validate({**dict(self), "backorders": backorders})


class DemandRow(_View):
    sku: str
    waiting_lines: int
    waiting_units: int
    oldest_since: datetime
    # Units of the purchase orders still to come, and the earliest of their dates.
    scheduled_supply: int
    next_expected: datetime | None
    # Units waiting that no purchase order still to come covers: overdue ones do not count.
    shortfall: int
    # Purchase orders whose expected date passed without their receipt: how many, their units,
    # and the earliest date they were due (None: none overdue).
    overdue_pos: int = 0
    overdue_units: int = 0
    overdue_since: datetime | None = None

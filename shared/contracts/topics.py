"""The one declaration of every topic: who writes it, who reads it, its key and its schema.

`docs/topics.md` and the topic set-up are generated from this list.
"""

from dataclasses import dataclass, field

from pydantic import BaseModel

from shared.contracts import inputs, internal, outputs

DLQ_SUFFIX = ".dlq"


@dataclass(frozen=True)
class Topic:
    name: str
    key: str
    producer: str
    consumers: tuple[str, ...]
    schema: type[BaseModel] | str
    description: str
    compacted: bool = False
    dead_letter: bool = True
    config: dict[str, str] = field(default_factory=dict)

    @property
    def dlq(self) -> str:
        return self.name + DLQ_SUFFIX


ORDERS_PLACED = Topic(
    name="orders.placed",
    key="order_id",
    producer="upstream shop",
    consumers=("order",),
    schema=inputs.OrderPlaced,
    description="A customer placed an order.",
)
ORDERS_CANCEL_REQUESTED = Topic(
    name="orders.cancel-requested",
    key="order_id",
    producer="upstream shop",
    consumers=("order",),
    schema=inputs.CancelRequested,
    description="A customer asked to cancel an order or some of its lines.",
)
STOCK_RECEIVED = Topic(
    name="inventory.stock-received",
    key="sku",
    producer="upstream warehouse",
    consumers=("inventory",),
    schema=inputs.StockReceived,
    description="Units of a SKU arrived and can be allocated.",
)
SKU_POLICY = Topic(
    name="inventory.sku-policy",
    key="sku",
    producer="upstream catalogue",
    consumers=("inventory",),
    schema=inputs.SkuPolicy,
    description="Whether a SKU may be backordered, and how much.",
    compacted=True,
    config={"cleanup.policy": "compact"},
)
ALLOCATION_COMMANDS = Topic(
    name="allocation.commands",
    key="sku",
    producer="order, inventory",
    consumers=("allocator",),
    schema="AllocateLine | CancelLine | ReceiveStock | SetSkuPolicy (field `type`)",
    description="Everything that changes a SKU's book, in the order its partition fixes.",
)
LINE_ALLOCATION_CHANGED = Topic(
    name="allocation.line-changed",
    key="order_id",
    producer="allocator",
    consumers=("order",),
    schema=internal.LineAllocationChanged,
    description="The allocator's new view of one order line.",
)
ORDERS_STATUS_CHANGED = Topic(
    name="orders.status-changed",
    key="order_id",
    producer="order",
    consumers=("notifier", "upstream shop"),
    schema=outputs.OrderStatusChanged,
    description="The whole current picture of an order, after each change.",
)

ALL_TOPICS: tuple[Topic, ...] = (
    ORDERS_PLACED,
    ORDERS_CANCEL_REQUESTED,
    STOCK_RECEIVED,
    SKU_POLICY,
    ALLOCATION_COMMANDS,
    LINE_ALLOCATION_CHANGED,
    ORDERS_STATUS_CHANGED,
)


def topic_names() -> list[str]:
    """Every topic to create, dead-letter topics included."""
    names: list[str] = []
    for topic in ALL_TOPICS:
        names.append(topic.name)
        if topic.dead_letter:
            names.append(topic.dlq)
    return names

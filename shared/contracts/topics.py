"""The one declaration of every topic: who writes it, who reads it, its key and its schema.

`docs/topics.md` and the topic set-up are generated from this list.
"""

from dataclasses import dataclass

from pydantic import BaseModel

from shared.contracts import inputs, internal, outputs

DLQ_SUFFIX = ".dlq"
DAY_MS = 24 * 60 * 60 * 1000
# The largest message the consumers decode (the default of BACKORDER_MAX_MESSAGE_BYTES). Topics
# that upstream systems write declare it as their `max.message.bytes`, so that the broker
# refuses, to the producer, what the consumers would refuse anyway.
MAX_MESSAGE_BYTES = 262_144
# A dead letter is the input's record plus the `dlq-*` headers; its topic takes this much more.
DEAD_LETTER_HEADROOM_BYTES = 16_384


def dead_letter_max_bytes(max_message_bytes: int = MAX_MESSAGE_BYTES) -> int:
    """The `max.message.bytes` of every dead-letter topic: what a dead letter may weigh."""
    return max_message_bytes + DEAD_LETTER_HEADROOM_BYTES


@dataclass(frozen=True)
class TopicSpec:
    """A topic as the cluster holds it: what `backorder topics apply` creates and compares."""

    name: str
    partitions: int
    replication_factor: int
    config: dict[str, str]


@dataclass(frozen=True)
class Topic:
    name: str
    key: str
    producer: str
    consumers: tuple[str, ...]
    schema: type[BaseModel] | str
    description: str
    compacted: bool = False
    # Records stamped by the broker when appended, not by the producer: for topics where the
    # newer word on a thing wins, its order must not rest on producers' clocks.
    broker_timestamps: bool = False
    dead_letter: bool = True
    # Written by a system outside this project: the broker bounds its records at what the
    # consumers accept (`max.message.bytes`). Internal topics are bounded where they are
    # written (the outbox parks what the broker refuses).
    upstream: bool = False
    # Keyed topics: more partitions later move existing keys, so declare enough up front.
    partitions: int = 3
    replication_factor: int = 1
    retention_days: int = 7
    dead_letter_retention_days: int = 30

    @property
    def dlq(self) -> str:
        return self.name + DLQ_SUFFIX

    def specs(
        self, *, replication_factor: int | None = None, max_message_bytes: int = MAX_MESSAGE_BYTES
    ) -> list[TopicSpec]:
        """The topic and its dead-letter topic, as they must exist on a cluster.

        `max_message_bytes`: what the consumers accept (BACKORDER_MAX_MESSAGE_BYTES)."""
        replicas = replication_factor or self.replication_factor
        config = (
            {"cleanup.policy": "compact"}
            if self.compacted
            else {"cleanup.policy": "delete", "retention.ms": str(self.retention_days * DAY_MS)}
        )
        if self.broker_timestamps:
            config["message.timestamp.type"] = "LogAppendTime"
        if self.upstream:
            config["max.message.bytes"] = str(max_message_bytes)
        specs = [TopicSpec(self.name, self.partitions, replicas, config)]
        if self.dead_letter:
            retention = str(self.dead_letter_retention_days * DAY_MS)
            specs.append(
                TopicSpec(
                    self.dlq,
                    self.partitions,
                    replicas,
                    {
                        "cleanup.policy": "delete",
                        "retention.ms": retention,
                        "max.message.bytes": str(dead_letter_max_bytes(max_message_bytes)),
                    },
                )
            )
        return specs


ORDERS_PLACED = Topic(
    name="orders.placed",
    key="order_id",
    producer="upstream shop",
    upstream=True,
    consumers=("order",),
    schema=inputs.OrderPlaced,
    description="A customer placed an order.",
)
ORDERS_CANCEL_REQUESTED = Topic(
    name="orders.cancel-requested",
    key="order_id",
    producer="upstream shop",
    upstream=True,
    consumers=("order",),
    schema=inputs.CancelRequested,
    description="A customer asked to cancel an order or some of its lines.",
)
ORDERS_SUBSTITUTION_REQUESTED = Topic(
    name="orders.substitution-requested",
    key="order_id",
    producer="upstream shop",
    upstream=True,
    consumers=("order",),
    schema=inputs.SubstitutionRequested,
    description="A customer takes one of a waiting line's alternatives for its waiting part.",
)
STOCK_RECEIVED = Topic(
    name="inventory.stock-received",
    key="sku",
    producer="upstream warehouse",
    upstream=True,
    consumers=("inventory",),
    schema=inputs.StockReceived,
    description="Units of a SKU arrived and can be allocated.",
)
RESTOCK_SCHEDULED = Topic(
    name="inventory.restock-scheduled",
    key="sku",
    producer="upstream purchasing",
    upstream=True,
    consumers=("inventory",),
    schema=inputs.RestockScheduled,
    description="A purchase order expected to restock a SKU; quantity 0 withdraws it.",
    broker_timestamps=True,
)
SKU_POLICY = Topic(
    name="inventory.sku-policy",
    key="sku",
    producer="upstream catalogue",
    upstream=True,
    consumers=("inventory",),
    schema=inputs.SkuPolicy,
    description="Whether a SKU may be backordered, by whom, how much, and what a wait earns.",
    compacted=True,
    broker_timestamps=True,
)
ALLOCATION_COMMANDS = Topic(
    name="allocation.commands",
    key="sku",
    producer="order, inventory",
    consumers=("allocator",),
    schema="AllocateLine | CancelLine | SubstituteLine | ReceiveStock | SetSkuPolicy | "
    "ScheduleRestock (`type`)",
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
    ORDERS_SUBSTITUTION_REQUESTED,
    STOCK_RECEIVED,
    RESTOCK_SCHEDULED,
    SKU_POLICY,
    ALLOCATION_COMMANDS,
    LINE_ALLOCATION_CHANGED,
    ORDERS_STATUS_CHANGED,
)


def all_specs(
    *, replication_factor: int | None = None, max_message_bytes: int = MAX_MESSAGE_BYTES
) -> list[TopicSpec]:
    """Every topic the project uses, dead-letter topics included."""
    return [
        spec
        for topic in ALL_TOPICS
        for spec in topic.specs(
            replication_factor=replication_factor, max_message_bytes=max_message_bytes
        )
    ]

"""How every business consumer subscribes: one place, so none can drift to at-most-once."""

from collections.abc import Callable
from itertools import chain
from typing import TYPE_CHECKING, Any, TypeVar, cast

from aiokafka import AIOKafkaConsumer
from faststream import AckPolicy
from faststream.kafka import KafkaBroker, KafkaRouter
from faststream.kafka.subscriber.usecase import BatchSubscriber

from shared.contracts.topics import Topic
from shared.messaging.assignments import CountAssignments

if TYPE_CHECKING:
    from aiokafka.structs import ConsumerRecord

Handler = TypeVar("Handler", bound=Callable[..., Any])


def group_id(service: str) -> str:
    return f"backorder-{service}"


# A batch is what one poll returns, up to this many records: one transaction for all of them.
# The wait applies only when nothing is there to read.
BATCH_MAX_RECORDS = 500
BATCH_WAIT_MS = 100
# A member learns of a rebalance at its next heartbeat, and a start joins one consumer per
# topic, each join a rebalance: at aiokafka's default of 3 s, a service's start stalled for
# seconds per topic. A dead member is noticed after the session timeout (aiokafka's default).
HEARTBEAT_INTERVAL_MS = 500
SESSION_TIMEOUT_MS = 10_000


def consumes(router: KafkaRouter, topic: Topic, *, service: str) -> Callable[[Handler], Handler]:
    """In the service's consumer group, from the earliest offset of a new group, with the offset
    committed only after the handler returned (its transaction committed): never ACK_FIRST.

    Handlers take a batch: a list of messages, and the `KafkaMessage` whose `raw_message` holds
    their records in the same order (see `batch.py`)."""
    return cast(
        "Callable[[Handler], Handler]",
        router.subscriber(
            topic.name,
            group_id=group_id(service),
            ack_policy=AckPolicy.NACK_ON_ERROR,
            auto_offset_reset="earliest",
            batch=True,
            max_records=BATCH_MAX_RECORDS,
            batch_timeout_ms=BATCH_WAIT_MS,
            heartbeat_interval_ms=HEARTBEAT_INTERVAL_MS,
            session_timeout_ms=SESSION_TIMEOUT_MS,
            listener=CountAssignments(),
            description=topic.description,
        ),
    )


def join_as_static_members(broker: KafkaBroker, *, instance_id: str) -> None:
    """Names every consumer of this process in its group (static membership, KIP-345), one name
    per topic since each subscriber is a consumer of its own: a process killed and started again
    under the same `instance_id` rejoins with its old assignment, and the group does not stall
    for a rebalance (which waits for the dead member's session to time out).

    FastStream takes `group_instance_id` only where the subscriber is declared, at import, before
    settings are read; its consumer arguments are filled in here instead, before the start."""
    for subscriber in broker.subscribers:
        # Kafka takes [A-Za-z0-9._-] in a group instance id.
        topics = "_".join(sorted(subscriber.topic_names))  # type: ignore[attr-defined]
        subscriber._connection_args["group_instance_id"] = f"{instance_id}.{topics}"  # type: ignore[attr-defined]


class _EagerBatchSubscriber(BatchSubscriber):
    """FastStream 0.7.8's batch subscriber, without its nap: after a `getmany` that waited
    `batch_timeout_ms` for records and found none, it sleeps as long again before the next one,
    so a record that arrives then waits for the nap to end (up to 100 ms a hop, on every hop of
    an order's way when traffic is light). `getmany` itself returns as soon as records come."""

    __slots__ = ()

    async def get_msg(self, consumer: AIOKafkaConsumer) -> "tuple[ConsumerRecord[Any, Any], ...]":
        batches = await consumer.getmany(
            timeout_ms=self.batch_timeout_ms, max_records=self.max_records
        )
        return tuple(chain.from_iterable(batches.values()))


def read_without_naps(broker: KafkaBroker) -> None:
    for subscriber in broker.subscribers:
        if type(subscriber) is BatchSubscriber:
            subscriber.__class__ = _EagerBatchSubscriber

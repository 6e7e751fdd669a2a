"""How every business consumer subscribes: one place, so none can drift to at-most-once."""

from collections.abc import Callable
from typing import Any, TypeVar, cast

from faststream import AckPolicy
from faststream.kafka import KafkaRouter

from shared.contracts.topics import Topic

Handler = TypeVar("Handler", bound=Callable[..., Any])


def group_id(service: str) -> str:
    return f"backorder-{service}"


# A batch is what one poll returns, up to this many records: one transaction for all of them.
# The wait applies only when nothing is there to read.
BATCH_MAX_RECORDS = 500
BATCH_WAIT_MS = 100


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
            description=topic.description,
        ),
    )

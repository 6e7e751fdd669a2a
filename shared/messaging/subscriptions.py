"""How every business consumer subscribes: one place, so none can drift to at-most-once."""

from collections.abc import Callable
from typing import Any, TypeVar, cast

from faststream import AckPolicy
from faststream.kafka import KafkaRouter

from shared.contracts.topics import Topic

Handler = TypeVar("Handler", bound=Callable[..., Any])


def group_id(service: str) -> str:
    return f"backorder-{service}"


def consumes(router: KafkaRouter, topic: Topic, *, service: str) -> Callable[[Handler], Handler]:
    """In the service's consumer group, from the earliest offset of a new group, with the offset
    committed only after the handler returned (its transaction committed): never ACK_FIRST."""
    return cast(
        "Callable[[Handler], Handler]",
        router.subscriber(
            topic.name,
            group_id=group_id(service),
            ack_policy=AckPolicy.NACK_ON_ERROR,
            auto_offset_reset="earliest",
            description=topic.description,
        ),
    )

"""Every consumer commits its offset only after its handler's transaction, in its own group."""

import pytest
from faststream import AckPolicy

from services.bootstrap import SERVICES
from shared.contracts.topics import ALL_TOPICS

SUBSCRIBERS = [
    (name, subscriber) for name, spec in SERVICES.items() for subscriber in spec.router.subscribers
]


@pytest.mark.parametrize(("service", "subscriber"), SUBSCRIBERS, ids=lambda v: str(v)[:40])
def test_no_subscriber_acknowledges_before_processing(service: str, subscriber: object) -> None:
    assert subscriber.ack_policy is AckPolicy.NACK_ON_ERROR  # type: ignore[attr-defined]
    assert subscriber.group_id == f"backorder-{service}"  # type: ignore[attr-defined]


def test_every_declared_topic_has_its_consumers() -> None:
    consumed = {
        (service, topic.name)
        for service, subscriber in SUBSCRIBERS
        for topic in subscriber.topics  # type: ignore[attr-defined]
    }
    for topic in ALL_TOPICS:
        for consumer in topic.consumers:
            if consumer in SERVICES:
                assert (consumer, topic.name) in consumed, (consumer, topic.name)

"""Every consumer commits its offset only after its handler's transaction, in its own group."""

import anyio
import pytest
from faststream import AckPolicy

from services.bootstrap import SERVICES, create_app
from shared.contracts.topics import ALL_TOPICS
from shared.settings import Settings

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


@pytest.mark.asyncio  # the app's Kafka clients want a running loop
@pytest.mark.parametrize("service", list(SERVICES))
async def test_a_named_instance_joins_under_names_of_its_own(service: str) -> None:
    """With BACKORDER_INSTANCE_ID every consumer of the process is a static member under a name
    that is the same on every start (so a restart takes the old place back) and differs from its
    other consumers' (one name per member of the group)."""

    async def names(instance_id: str | None) -> list[object]:
        app = create_app(service, Settings(instance_id=instance_id))
        assert app.broker is not None
        found = [
            sub._connection_args.get("group_instance_id")  # type: ignore[attr-defined]
            for sub in app.broker.subscribers
        ]
        await app.context.get("runtime").producer.stop()  # never started, but owns a client
        return found

    first = await names(f"{service}-7")
    assert len(set(first)) == len(first)
    assert all(str(name).startswith(f"{service}-7.") for name in first)
    assert await names(f"{service}-7") == first
    assert set(await names(f"{service}-8")).isdisjoint(first)


class _EmptyTopic:
    """A consumer whose wait for records ran out with nothing to read."""

    async def getmany(
        self, *, timeout_ms: int, max_records: int | None
    ) -> dict[object, list[object]]:
        return {}


@pytest.mark.asyncio
@pytest.mark.parametrize("service", list(SERVICES))
async def test_a_consumer_that_found_nothing_asks_again_at_once(
    service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FastStream's batch subscriber slept another `batch_timeout_ms` after each empty read, and
    a record arriving meanwhile waited for the nap to end, on every hop of an order's way."""

    async def nap(seconds: float) -> None:
        raise AssertionError(f"napped {seconds}s after an empty read")

    monkeypatch.setattr(anyio, "sleep", nap)  # what the batch subscriber napped with
    app = create_app(service, Settings())
    assert app.broker is not None
    try:
        for subscriber in app.broker.subscribers:
            assert await subscriber.get_msg(_EmptyTopic()) == ()  # type: ignore[attr-defined]
    finally:
        await app.context.get("runtime").producer.stop()

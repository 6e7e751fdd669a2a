"""A service that does not trace still passes an upstream trace on to the events it causes."""

from aiokafka.structs import ConsumerRecord
from opentelemetry import propagate

from shared.messaging.records import Delivered

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def _record(headers: list[tuple[str, bytes]]) -> "ConsumerRecord[bytes, bytes]":
    return ConsumerRecord(
        topic="orders.placed", partition=0, offset=7, timestamp=0, timestamp_type=0,
        key=b"o-1", value=b"{}", checksum=None, serialized_key_size=3,
        serialized_value_size=2, headers=headers,
    )  # fmt: skip


def test_an_upstream_trace_reaches_the_events_a_message_causes_with_tracing_off() -> None:
    item: Delivered[dict[str, str]] = Delivered(
        {}, _record([("traceparent", TRACEPARENT.encode())])
    )
    carrier: dict[str, str] = {}
    with item.handling():
        propagate.inject(carrier)
    assert carrier["traceparent"].split("-")[1] == "4bf92f3577b34da6a3ce929d0e0e4736"
    after: dict[str, str] = {}
    propagate.inject(after)
    assert "traceparent" not in after


def test_a_message_without_a_trace_starts_none() -> None:
    carrier: dict[str, str] = {}
    with Delivered({}, _record([])).handling():
        propagate.inject(carrier)
    assert "traceparent" not in carrier

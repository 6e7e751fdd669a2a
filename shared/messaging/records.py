"""The Kafka records behind a batch, each beside the message decoded from it."""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from aiokafka.structs import ConsumerRecord
from faststream.message import StreamMessage
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace

from shared.contracts.headers import CORRELATION_ID
from shared.logs import correlation_id
from shared.messaging.position import SourcePosition

# The process's tracer provider once the runtime set one; spans go nowhere until then.
_tracer = trace.get_tracer("backorder")


class _Tracing:
    on = False


_tracing = _Tracing()
_TRACEPARENT = "traceparent"


def trace_each_message() -> None:
    """Called by the runtime when it sets a tracer provider: from then on each message of a
    batch is handled in a span of its own."""
    _tracing.on = True


Body = TypeVar("Body")


def records_of(message: StreamMessage[Any]) -> "tuple[ConsumerRecord[bytes, bytes], ...]":
    raw = message.raw_message
    return tuple(raw) if isinstance(raw, tuple) else (raw,)


@dataclass(frozen=True)
class Delivered(Generic[Body]):
    body: Body
    record: "ConsumerRecord[bytes, bytes]"

    @property
    def cause(self) -> str:
        """Where the message sits in the log: the same on every redelivery of it."""
        return f"{self.record.topic}/{self.record.partition}/{self.record.offset}"

    @property
    def position(self) -> SourcePosition:
        record = self.record
        return SourcePosition(record.partition, record.offset, record.timestamp)

    def header(self, name: str) -> str | None:
        return next((v.decode() for k, v in self.record.headers if k == name), None)

    @contextmanager
    def handling(self) -> Iterator[None]:
        """While one message of a batch is handled: its own trace is the current one, so the
        events it causes continue that trace (a batch's span only links to its messages), and
        its correlation id is on every log line. Without a tracer provider (tracing off) only
        the correlation id is set: a span per message that goes nowhere is work per message."""
        if not _tracing.on:
            token = correlation_id.set(self.header(CORRELATION_ID) or correlation_id.get())
            # A trace begun upstream still passes through to the events this message causes,
            # for the services down the line that do trace.
            parent = self.header(_TRACEPARENT)
            attached = (
                otel_context.attach(propagate.extract({_TRACEPARENT: parent})) if parent else None
            )
            try:
                yield
            finally:
                if attached is not None:
                    otel_context.detach(attached)
                correlation_id.reset(token)
            return
        headers = {name: value.decode(errors="replace") for name, value in self.record.headers}
        token = correlation_id.set(headers.get(CORRELATION_ID) or correlation_id.get())
        try:
            with _tracer.start_as_current_span(
                f"{self.record.topic} handle",
                context=propagate.extract(headers),
                kind=trace.SpanKind.CONSUMER,
            ):
                yield
        finally:
            correlation_id.reset(token)


def delivered(bodies: Sequence[Body], message: StreamMessage[Any]) -> list[Delivered[Body]]:
    """A batch's messages, in order, each with its record."""
    return [Delivered(b, r) for b, r in zip(bodies, records_of(message), strict=True)]

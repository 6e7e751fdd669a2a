"""OpenTelemetry tracing of every consumed and published message, switched by configuration."""

import json

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

from shared.settings import Settings


def _span_line(span: ReadableSpan) -> str:
    """One JSON line per span. FastStream records the Kafka key as bytes, which the SDK's own
    console format cannot serialise, so values that are not JSON are shown by repr."""
    context = span.get_span_context()
    return (
        json.dumps(
            {
                "span": span.name,
                "trace_id": f"{context.trace_id:032x}" if context else None,
                "span_id": f"{context.span_id:016x}" if context else None,
                "parent_id": f"{span.parent.span_id:016x}" if span.parent else None,
                "kind": span.kind.name,
                "attributes": dict(span.attributes or {}),
            },
            default=repr,
        )
        + "\n"
    )


def make_tracer_provider(settings: Settings, *, service: str) -> TracerProvider | None:
    if settings.tracing_exporter == "none":
        return None
    exporter: SpanExporter
    if settings.tracing_exporter == "console":
        exporter = ConsoleSpanExporter(formatter=_span_line)
    else:
        # Reads the standard OTEL_EXPORTER_OTLP_* variables for endpoint and headers.
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": f"backorder-{service}"}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider

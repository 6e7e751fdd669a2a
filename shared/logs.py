"""Structured logs: one JSON object per line, carrying the service and the correlation id of
the message being handled (the order id where there is one)."""

import logging
import sys
from contextvars import ContextVar
from typing import Any, Literal

from pythonjsonlogger.json import JsonFormatter

correlation_id: ContextVar[str | None] = ContextVar("correlation_id", default=None)


class JsonLines(JsonFormatter):
    """One JSON object per record: time, level, logger, message, correlation id, service."""

    def __init__(self, *, service: str) -> None:
        super().__init__(
            "{asctime}{levelname}{name}{message}{correlation_id}",
            style="{",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            static_fields={"service": service},
        )

    def process_log_record(self, log_record: dict[str, Any]) -> dict[str, Any]:
        # uvicorn adds a copy of its message with ANSI colour codes for terminals.
        log_record.pop("color_message", None)
        return log_record


class _CorrelationFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.correlation_id = correlation_id.get()
        return True


def configure_logging(
    service: str, *, fmt: Literal["json", "text"], level: int = logging.INFO
) -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.addFilter(_CorrelationFilter())
    if fmt == "json":
        handler.setFormatter(JsonLines(service=service))
    else:
        handler.setFormatter(
            logging.Formatter(
                f"%(asctime)s {service} %(levelname)s %(name)s [%(correlation_id)s] %(message)s"
            )
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # FastStream and uvicorn bring their own handlers; route them through this one.
    for name in ("faststream", "faststream.access", "uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True

"""A process fenced out of its consumer group exits, instead of living on as a zombie.

Under static membership (`BACKORDER_INSTANCE_ID`) a second process started under a live one's
name takes its place, and the broker answers the first one's heartbeats and offset commits with
FENCED_INSTANCE_ID (error 82). aiokafka 0.14 does not know that code: it calls it UnknownError,
logs "Heartbeat failed" and carries on, so the fenced process went on reading, deciding and
sending without ever committing an offset. Here the code gets its name and the process exits
with `EXIT_FENCED` and one CRITICAL line that says why.

aiokafka raises the heartbeat's error inside its own coordination task and hands FastStream
only a generic KafkaError, so the heartbeat's refusal is seen on its log record; the offset
commit's refusal arrives as the exception itself (`shared/messaging/guard.py`).
"""

import logging
import os
from typing import NoReturn

from aiokafka import errors

log = logging.getLogger(__name__)

EXIT_FENCED = 3
_name: str | None = None


class FencedInstanceIdError(errors.BrokerResponseError):  # type: ignore[misc]
    errno = 82
    message = "FENCED_INSTANCE_ID"
    description = "another process joined the consumer group under this group instance id"


def exit_fenced() -> NoReturn:
    log.critical(
        "fenced out of the consumer group: another process joined under BACKORDER_INSTANCE_ID=%s;"
        " two live processes must never share a name. Exiting with %d.",
        _name,
        EXIT_FENCED,
    )
    for handler in logging.getLogger().handlers:
        handler.flush()
    # No shutdown hooks: they would commit offsets and send as the member that was replaced.
    os._exit(EXIT_FENCED)


class _ExitWhenFenced(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        if FencedInstanceIdError.__name__ in record.getMessage():
            exit_fenced()


def recognise_fencing(instance_id: str) -> None:
    global _name
    _name = instance_id
    errors.kafka_errors.setdefault(FencedInstanceIdError.errno, FencedInstanceIdError)
    logging.getLogger("aiokafka.consumer.group_coordinator").addHandler(
        _ExitWhenFenced(level=logging.ERROR)
    )

"""How a failed message is treated: retried until it succeeds, or dead-lettered with a reason."""

import asyncio

import asyncpg
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError, NodeNotReadyError
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError


class PoisonMessage(Exception):
    """The message can never be processed as it is: dead-letter it with this reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


_TRANSIENT_DRIVER_ERRORS = (
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.exceptions.SerializationError,
    asyncpg.exceptions.DeadlockDetectedError,
    asyncpg.exceptions.LockNotAvailableError,
    asyncpg.exceptions.QueryCanceledError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.TooManyConnectionsError,
)


def is_transient(error: BaseException) -> bool:
    """Failures of the world around the message (database, broker), never of the message."""
    if isinstance(
        error,
        OSError
        | TimeoutError
        | asyncio.TimeoutError
        | KafkaConnectionError
        | KafkaTimeoutError
        | NodeNotReadyError
        | OperationalError
        | InterfaceError,
    ):
        return True
    if isinstance(error, DBAPIError):
        if error.connection_invalidated:
            return True
        return isinstance(error.orig, _TRANSIENT_DRIVER_ERRORS) or isinstance(
            getattr(error.orig, "__cause__", None), _TRANSIENT_DRIVER_ERRORS
        )
    return isinstance(error, _TRANSIENT_DRIVER_ERRORS)


def poison_reason(error: BaseException) -> str | None:
    """The dead-letter reason when the message itself is at fault, else None."""
    if isinstance(error, PoisonMessage):
        return error.reason
    if isinstance(error, ValidationError):
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '<body>'}: {e['msg']}"
            for e in error.errors()[:10]
        )
        return f"schema violation: {problems}"[:1000]
    return None

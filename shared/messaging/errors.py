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


# SQLSTATE classes and codes that describe the database's condition, not the statement:
# connection (08), transaction rollback (40: serialization, deadlock), insufficient resources
# (53: disk full, out of memory, too many connections), operator intervention (57P: shutdown,
# crash of another backend, starting up), lock not available (55P03), read-only after a
# failover (25006), query cancelled by a timeout (57014).
_TRANSIENT_SQLSTATE_PREFIXES = ("08", "40", "53", "57P")
_TRANSIENT_SQLSTATES = {"55P03", "25006", "57014"}


def _sqlstate(error: BaseException) -> str | None:
    for candidate in (error, getattr(error, "orig", None), getattr(error, "__cause__", None)):
        for source in (candidate, getattr(candidate, "__cause__", None)):
            code = getattr(source, "sqlstate", None) or getattr(source, "pgcode", None)
            if isinstance(code, str):
                return code
    return None


def is_transient(error: BaseException) -> bool:
    """Failures of the world around the message (database, broker), never of the message."""
    code = _sqlstate(error)
    if code and (code.startswith(_TRANSIENT_SQLSTATE_PREFIXES) or code in _TRANSIENT_SQLSTATES):
        return True
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

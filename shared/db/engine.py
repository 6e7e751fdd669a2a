import ssl
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.settings import Settings

SessionFactory = async_sessionmaker[AsyncSession]


def make_engine(settings: Settings, *, pool_size: int = 5) -> AsyncEngine:
    connect_args: dict[str, Any] = {
        # A handler never waits on a lock forever: a stuck peer surfaces as a retryable error.
        "server_settings": {"lock_timeout": "30s"},
        "timeout": 10,
    }
    # asyncpg's own default is "prefer": against a server that offers TLS (ours does) every
    # connection would negotiate it, even on loopback, unless told not to.
    connect_args["ssl"] = _database_tls(settings) if settings.database_ssl != "disable" else False
    return create_async_engine(
        settings.async_database_url,
        pool_size=pool_size,
        # No ping per checkout (it cost a quarter of all round trips): a connection that died
        # with a database restart fails its first statement as a disconnect, which invalidates
        # the whole pool, and the consume guard retries the batch as a transient failure.
        pool_pre_ping=False,
        # Error texts reach logs and dlq-reason headers: no customer data in them.
        hide_parameters=True,
        # JSONB columns (pictures, line states, headers) are read on every batch: the standard
        # library's json.loads was a tenth of the order service's CPU in an intake burst.
        json_serializer=_json_text,
        json_deserializer=orjson.loads,
        connect_args=connect_args,
    )


def _json_text(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def _database_tls(settings: Settings) -> ssl.SSLContext:
    if settings.database_ssl == "verify-full":
        return ssl.create_default_context(cafile=str(settings.database_ssl_rootcert))
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # "require": encrypted, certificate not checked
    return context


def make_session_factory(engine: AsyncEngine) -> SessionFactory:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)

from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.settings import Settings

SessionFactory = async_sessionmaker[AsyncSession]


def make_engine(settings: Settings, *, pool_size: int = 5) -> AsyncEngine:
    return create_async_engine(
        settings.async_database_url,
        pool_size=pool_size,
        pool_pre_ping=True,
        # A handler never waits on a lock forever: a stuck peer surfaces as a retryable error.
        connect_args={"server_settings": {"lock_timeout": "30s"}, "timeout": 10},
    )


def make_session_factory(engine: AsyncEngine) -> SessionFactory:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)

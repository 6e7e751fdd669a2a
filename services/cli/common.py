"""What several commands need: the declared topics, an admin client, one database read."""

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiokafka.admin import AIOKafkaAdminClient
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.contracts.topics import TopicSpec, all_specs
from shared.messaging.connection import kafka_options
from shared.settings import get_settings

T = TypeVar("T")


def declared_topics() -> list[TopicSpec]:
    settings = get_settings()
    return all_specs(
        replication_factor=settings.topic_replication_factor,
        max_message_bytes=settings.max_message_bytes,
    )


async def with_admin(action: Callable[[AIOKafkaAdminClient, list[TopicSpec]], Awaitable[T]]) -> T:
    admin = AIOKafkaAdminClient(**kafka_options(get_settings()))
    await admin.start()
    try:
        return await action(admin, declared_topics())
    finally:
        await admin.close()


def read_database(query: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Runs one read on a connection of its own, for a command that exits right after."""
    from shared.db.engine import make_engine, make_session_factory

    async def run() -> T:
        engine = make_engine(get_settings(), pool_size=1)
        try:
            async with make_session_factory(engine)() as session:
                return await query(session)
        finally:
            await engine.dispose()

    return asyncio.run(run())

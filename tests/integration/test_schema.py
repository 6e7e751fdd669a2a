"""The migrations build exactly the tables the code declares: a column added to a table class
without a migration (or the other way round) fails here, not at a customer's deploy."""

from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection

from services.schema import metadata
from shared.db.engine import make_engine
from shared.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


def _differences(connection: Connection) -> list[Any]:
    return list(compare_metadata(MigrationContext.configure(connection), metadata))


def _ours(difference: Any) -> bool:
    # The benchmark's floor pipeline keeps its tables beside the project's, on purpose.
    if isinstance(difference, tuple) and difference[0] == "remove_table":
        return not str(difference[1].name).startswith("bench_floor_")
    return True


async def test_the_migrated_schema_matches_the_table_classes(
    settings: Settings, migrated: None
) -> None:
    engine = make_engine(settings, pool_size=1)
    try:
        async with engine.connect() as connection:
            differences = await connection.run_sync(_differences)
    finally:
        await engine.dispose()
    assert [d for d in differences if _ours(d)] == []

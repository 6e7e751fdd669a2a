"""The retention job against the real database (issue 21, defect 6): a command redelivered within
the dedupe horizon is still recognised, rows past their horizon go, and closed rows a repeat
could still need stay until the dedupe horizon. The use cases and the pruning run in the test
process; no service is needed. Rows are made old by writing their timestamps back."""

import asyncio
import contextlib
import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import cast

import asyncpg
import pytest

from services.allocator import handlers
from services.allocator import retention as allocator_retention
from services.allocator.unit_of_work import AllocatorUnitOfWork
from services.notifier import retention as notifier_retention
from shared.contracts.internal import ReceiveStock
from shared.db.engine import SessionFactory
from shared.db.retention import prune, retention_job
from shared.observability import Metrics
from shared.runtime import Runtime
from shared.settings import Settings
from tests.support.shop import unique

pytestmark = pytest.mark.integration

HOUR = timedelta(hours=1)
# The defaults: dedupe rows after 30 days of dead letters + 7 of segment roll + 1 of margin;
# closed rows after 30 days.
SETTINGS = Settings()
DEDUPE = timedelta(days=38)
CLOSED = timedelta(days=30)


async def deliver(sessions: SessionFactory, command: ReceiveStock, message_id: str) -> None:
    """The allocator's use case, as its subscriber runs it for one delivered record."""
    async with AllocatorUnitOfWork(sessions, source="allocator") as uow:
        await handlers.handle_commands(
            [handlers.Received(command, message_id)], uow=uow, default_backorders="allow"
        )
        await uow.commit()


async def prune_allocator(sessions: SessionFactory) -> dict[str, int]:
    return await prune(
        sessions, allocator_retention.prunables(SETTINGS), now=datetime.now(UTC), chunk=2
    )


async def received_total(db: asyncpg.Connection, sku: str) -> int:
    return int(await db.fetchval("select received_total from sku_book where sku = $1", sku))


async def age_dedupe_row(db: asyncpg.Connection, message_id: str, age: timedelta) -> None:
    await db.execute(
        "update processed_message set processed_at = now() - $2::interval"
        " where consumer = 'allocator' and message_id = $1",
        message_id,
        age,
    )


async def dedupe_row_kept(db: asyncpg.Connection, message_id: str) -> bool:
    return bool(
        await db.fetchval(
            "select count(*) from processed_message"
            " where consumer = 'allocator' and message_id = $1",
            message_id,
        )
    )


def test_the_defaults_are_the_horizons_this_test_ages_rows_across() -> None:
    pruned = {p.name: p.horizon for p in allocator_retention.prunables(SETTINGS)}
    assert pruned == {
        "processed_message": DEDUPE,
        "allocation_line": DEDUPE,
        "allocation_early_cancel": DEDUPE,
    }


async def test_a_receipt_redelivered_within_the_horizon_is_still_deduplicated(
    sessions: SessionFactory, db: asyncpg.Connection
) -> None:
    sku = unique("retention-sku")
    receipt = ReceiveStock(receipt_id=unique("receipt"), sku=sku, quantity=5)
    message_id = unique("receive-stock")
    await deliver(sessions, receipt, message_id)
    assert await received_total(db, sku) == 5

    # Handled an hour short of the horizon: the oldest a redelivery of it can be.
    await age_dedupe_row(db, message_id, DEDUPE - HOUR)
    # Dedupe rows past the horizon, more than one chunk of them.
    old = [unique("old-command") for _ in range(5)]
    await db.executemany(
        "insert into processed_message (consumer, message_id, processed_at)"
        " values ('allocator', $1, now() - $2::interval)",
        [(mid, DEDUPE + HOUR) for mid in old],
    )

    pruned = await prune_allocator(sessions)

    assert pruned["processed_message"] >= len(old)
    assert not [mid for mid in old if await dedupe_row_kept(db, mid)]
    assert await dedupe_row_kept(db, message_id)
    # The broker (a consumer group reset, a rebalance, a dead letter replayed) brings it again.
    await deliver(sessions, receipt, message_id)
    assert await received_total(db, sku) == 5, "a redelivered receipt was counted twice"


async def test_past_the_horizon_the_dedupe_row_is_gone_and_only_it_stopped_a_repeat(
    sessions: SessionFactory, db: asyncpg.Connection
) -> None:
    """Why pruning must respect the horizon: the dedupe row is all that recognises a repeated
    receipt in the allocator. Past the horizon no record of it can be delivered any more; were it
    pruned earlier (as this test makes it, by ageing the row), a redelivery would add the stock
    again."""
    sku = unique("retention-sku")
    receipt = ReceiveStock(receipt_id=unique("receipt"), sku=sku, quantity=5)
    message_id = unique("receive-stock")
    await deliver(sessions, receipt, message_id)
    await age_dedupe_row(db, message_id, DEDUPE + HOUR)

    await prune_allocator(sessions)

    assert not await dedupe_row_kept(db, message_id)
    await deliver(sessions, receipt, message_id)
    assert await received_total(db, sku) == 10


async def test_closed_lines_and_early_cancels_go_after_both_horizons_live_lines_never(
    sessions: SessionFactory, db: asyncpg.Connection
) -> None:
    sku = unique("retention-sku")
    order_id = unique("retention-order")
    # (line, allocated, rejected, waiting, cancelled, age): closed lines go only once past the
    # dedupe horizon too (a redelivered allocate-line finds them and does nothing); a line that
    # holds units stays however old (a cancel would still pass them on), as does a waiting one.
    lines = {
        "cancelled-long-ago": (0, 0, 0, True, DEDUPE + HOUR),
        "rejected-long-ago": (0, 2, 0, False, DEDUPE + HOUR),
        "cancelled-past-closed-only": (0, 0, 0, True, CLOSED + HOUR),
        "allocated-long-ago": (2, 0, 0, False, timedelta(days=400)),
        "waiting-long-ago": (0, 0, 2, False, timedelta(days=400)),
        "partly-rejected-long-ago": (1, 1, 0, False, timedelta(days=400)),
    }
    await db.executemany(
        "insert into allocation_line (order_id, line_id, sku, seq, quantity, allocated, rejected,"
        " waiting, cancelled, revision, requested_at, updated_at)"
        " values ($1, $2, $3, $4, 2, $5, $6, $7, $8, 1, now() - $9::interval,"
        " now() - $9::interval)",
        [
            (order_id, line, sku, seq, *values)
            for seq, (line, values) in enumerate(lines.items(), start=1)
        ],
    )
    await db.executemany(
        "insert into allocation_early_cancel (order_id, line_id, sku, received_at)"
        " values ($1, $2, $3, now() - $4::interval)",
        [(order_id, "early-long-ago", sku, DEDUPE + HOUR), (order_id, "early", sku, CLOSED)],
    )

    pruned = await prune_allocator(sessions)

    assert pruned["allocation_line"] >= 2 and pruned["allocation_early_cancel"] >= 1
    kept_lines = await db.fetch(
        "select line_id from allocation_line where order_id = $1 order by line_id", order_id
    )
    assert [row["line_id"] for row in kept_lines] == [
        "allocated-long-ago",
        "cancelled-past-closed-only",
        "partly-rejected-long-ago",
        "waiting-long-ago",
    ]
    kept_cancels = await db.fetch(
        "select line_id from allocation_early_cancel where order_id = $1", order_id
    )
    assert [row["line_id"] for row in kept_cancels] == ["early"]


async def test_finished_notifications_go_but_the_last_one_told_stays(
    sessions: SessionFactory, db: asyncpg.Connection
) -> None:
    old, recent = unique("retention-order"), unique("retention-order")
    # name: (order, status, version, age)
    notifications = {
        "old sent-v1": (old, "sent", 1, CLOSED + HOUR),
        # The last told on its channel: what the next message is described against.
        "old sent-v2": (old, "sent", 2, CLOSED + HOUR),
        "old skipped-v3": (old, "skipped", 3, CLOSED + HOUR),
        # Its dead letter may still be replayed (send_again), until the dedupe horizon.
        "old failed-v4": (old, "failed", 4, CLOSED + HOUR),
        "old failed-v5": (old, "failed", 5, DEDUPE + HOUR),
        "old scheduled": (old, "scheduled", None, timedelta(days=400)),
        # Superseded, but within the closed horizon.
        "recent sent-v1": (recent, "sent", 1, CLOSED - HOUR),
        "recent sent-v2": (recent, "sent", 2, CLOSED - HOUR),
    }
    ids = {name: uuid.uuid4() for name in notifications}
    await db.executemany(
        "insert into notification (id, order_id, channel, status, version, attempts,"
        " next_attempt_at, created_at, updated_at)"
        " values ($1, $2, 'email', $3, $4, 1, now(), now() - $5::interval, now() - $5::interval)",
        [(ids[name], *values) for name, values in notifications.items()],
    )

    pruned = await prune(
        sessions, notifier_retention.prunables(SETTINGS), now=datetime.now(UTC), chunk=1
    )

    assert pruned["notification sent"] >= 1 and pruned["notification skipped"] >= 1
    assert pruned["notification failed"] >= 1
    kept = await db.fetch(
        "select id from notification where order_id = any($1::text[])", [old, recent]
    )
    names = {value: name for name, value in ids.items()}
    assert sorted(names[row["id"]] for row in kept) == [
        "old failed-v4",
        "old scheduled",
        "old sent-v2",
        "recent sent-v1",
        "recent sent-v2",
    ]


async def test_the_services_job_prunes_at_start_and_counts_what_it_pruned(
    sessions: SessionFactory, db: asyncpg.Connection
) -> None:
    old = [unique("old-command") for _ in range(3)]
    await db.executemany(
        "insert into processed_message (consumer, message_id, processed_at)"
        " values ('allocator', $1, now() - $2::interval)",
        [(mid, DEDUPE + HOUR) for mid in old],
    )
    metrics = Metrics()
    runtime = SimpleNamespace(
        settings=Settings(retention_chunk_size=2), session_factory=sessions, metrics=metrics
    )
    job = asyncio.create_task(retention_job(allocator_retention.prunables)(cast(Runtime, runtime)))
    try:
        async with asyncio.timeout(30):
            while [mid for mid in old if await dedupe_row_kept(db, mid)]:
                await asyncio.sleep(0.1)
    finally:
        job.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await job
    pruned = metrics.registry.get_sample_value(
        "backorder_retention_pruned_total", {"table": "processed_message"}
    )
    assert pruned is not None and pruned >= len(old)

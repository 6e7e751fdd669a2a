"""Defect 8: after a rebalance, an old owner may commit a message it retried past
`max.poll.interval.ms` after the new owner already applied newer ones. Played at the use case
against the real database: the inventory's relay then forwards what won to the allocator."""

from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from services.inventory import handlers
from services.inventory.unit_of_work import InventoryUnitOfWork
from shared.contracts.inputs import RestockScheduled, SkuPolicy
from shared.db.engine import SessionFactory
from shared.messaging.position import SourcePosition
from tests.support.checks import wait_for_value
from tests.support.shop import unique

NOW_MS = 1_800_000_000_000


# The use cases run in the test process; the inventory's relay, in the running fleet,
# forwards what they commit to the allocator.
pytestmark = pytest.mark.usefixtures("fleet")


def at(offset: int, *, partition: int = 0, seconds: int = 0) -> SourcePosition:
    return SourcePosition(partition=partition, offset=offset, timestamp_ms=NOW_MS + 1000 * seconds)


async def test_an_old_owners_late_policy_commit_does_not_undo_a_newer_policy(
    sessions: SessionFactory, db: asyncpg.Connection
) -> None:
    sku = unique("LAMP")
    older = SkuPolicy(sku=sku, backorders="allow")
    newer = SkuPolicy(sku=sku, backorders="deny")

    async def apply(policy: SkuPolicy, position: SourcePosition) -> None:
        async with InventoryUnitOfWork(sessions, source="inventory") as uow:
            await handlers.set_policy(sku=sku, policy=policy, position=position, uow=uow)
            await uow.commit()

    await apply(older, at(10))  # the new owner applies P1
    await apply(newer, at(11, seconds=1))  # then P2
    await apply(older, at(10))  # the old owner's retry of P1 commits last
    assert (
        await db.fetchval("select policy ->> 'backorders' from sku_policy where sku = $1", sku)
        == "deny"
    )
    await wait_for_value(
        db, "select policy ->> 'backorders' from sku_book where sku = $1", sku, expected="deny"
    )
    commands = await db.fetchval(
        "select revision from sku_policy where sku = $1", sku
    )  # one revision per policy that was applied, none for the stale one
    assert commands == 2


async def test_a_late_commit_of_an_older_restock_does_not_undo_a_newer_one(
    sessions: SessionFactory, db: asyncpg.Connection
) -> None:
    sku, po = unique("LAMP"), unique("po")
    first = datetime(2027, 4, 1, tzinfo=UTC)

    async def apply(days: int, position: SourcePosition) -> None:
        restock = RestockScheduled(
            po_id=po, sku=sku, quantity=5, expected_at=first + timedelta(days=days)
        )
        async with InventoryUnitOfWork(sessions, source="inventory") as uow:
            await handlers.schedule_restock(restock, position=position, uow=uow)
            await uow.commit()

    await apply(0, at(20))
    await apply(7, at(21, seconds=1))
    await apply(0, at(20))
    expected = first + timedelta(days=7)
    assert (
        await db.fetchval("select expected_at from restock_schedule where po_id = $1", po)
        == expected
    )
    await wait_for_value(
        db, "select expected_at from scheduled_restock where po_id = $1", po, expected=expected
    )


async def test_a_moved_purchase_order_read_in_the_wrong_order_stays_where_it_moved(
    sessions: SessionFactory, db: asyncpg.Connection
) -> None:
    """PO-1 on SKU A, then on SKU B: the two SKUs' messages sit on different partitions, so
    B's may be read first. The broker's append time says which is the newer word."""
    first_sku, second_sku, po = unique("A"), unique("B"), unique("po")
    expected = datetime(2027, 4, 1, tzinfo=UTC)

    async def apply(sku: str, position: SourcePosition) -> None:
        restock = RestockScheduled(po_id=po, sku=sku, quantity=5, expected_at=expected)
        async with InventoryUnitOfWork(sessions, source="inventory") as uow:
            await handlers.schedule_restock(restock, position=position, uow=uow)
            await uow.commit()

    await apply(second_sku, at(7, partition=2, seconds=1))  # the newer word, read first
    await apply(first_sku, at(40, partition=0))  # the older one, read last
    assert await db.fetchval("select sku from restock_schedule where po_id = $1", po) == second_sku
    await wait_for_value(
        db, "select count(*) from scheduled_restock where po_id = $1", po, expected=1
    )
    assert await db.fetchval("select sku from scheduled_restock where po_id = $1", po) == second_sku

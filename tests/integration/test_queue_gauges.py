"""The allocator's queue gauges (Defect 7): read from the books' counters and one head probe per
lane, so they agree with the waiting lines without reading them. The use cases run in the test
process against the real database; no service is needed."""

import json
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text

from services.allocator import handlers
from services.allocator.domain.book import LANE_BITS
from services.allocator.repository import queue_figures
from services.allocator.unit_of_work import AllocatorUnitOfWork
from shared.contracts.internal import AllocateLine, AllocationCommand, CancelLine, ReceiveStock
from shared.db.engine import SessionFactory
from tests.support.shop import unique

pytestmark = pytest.mark.integration


class UntoldUnitOfWork(AllocatorUnitOfWork):
    """Keeps the decisions' news out of the outbox: the test's orders exist nowhere else, and
    a running order service would dead-letter hundreds of news about them, slowing the tests
    that share it."""

    def publish_raw(
        self, *, topic: str, key: bytes | None, value: bytes, headers: Sequence[tuple[str, bytes]]
    ) -> None:
        pass


async def decide(sessions: SessionFactory, commands: Sequence[AllocationCommand]) -> None:
    batch = [handlers.Received(command, str(uuid.uuid4())) for command in commands]
    async with UntoldUnitOfWork(sessions, source="allocator") as uow:
        await handlers.handle_commands(batch, uow=uow, default_backorders="allow")
        await uow.commit()


async def promote_every_waiting_line(sessions: SessionFactory, sku: str) -> None:
    async with UntoldUnitOfWork(sessions, source="allocator") as uow:
        await handlers.promote_waiting_lines(
            uow=uow,
            sku=sku,
            default_backorders="allow",
            default_aging=timedelta(microseconds=1),
            top_rank=1,
        )
        await uow.commit()


async def figures(sessions: SessionFactory, db: asyncpg.Connection) -> list[Any]:
    # Every SKU, so that the one under test is among them whatever else the database holds.
    every_sku = await db.fetchval("select count(*) from sku_book")
    async with sessions() as session:
        return await queue_figures.top_queues(session, limit=max(1, every_sku))


async def assert_gauges_agree_with_lines(
    sessions: SessionFactory, db: asyncpg.Connection, sku: str
) -> None:
    """What the gauges show for the SKU is what its waiting lines add up to."""
    lines = await db.fetch(
        "select seq, waiting, requested_at from allocation_line"
        " where sku = $1 and waiting > 0 order by seq",
        sku,
    )
    heads: dict[int, datetime] = {}
    for line in lines:
        heads.setdefault(line["seq"] >> LANE_BITS, line["requested_at"])
    shown = {row.sku: row for row in await figures(sessions, db)}
    if not lines:
        assert sku not in shown
        return
    row = shown[sku]
    assert (row.units, row.lines) == (sum(line["waiting"] for line in lines), len(lines))
    longest = (datetime.now(UTC) - min(heads.values())).total_seconds()
    assert longest - 5 <= row.oldest_wait <= longest + 1


def allocate(sku: str, quantity: int, *, vip: bool = False) -> AllocateLine:
    return AllocateLine(
        order_id=unique("o"),
        line_id="1",
        sku=sku,
        quantity=quantity,
        priority="vip" if vip else "standard",
        rank=1 if vip else 0,
    )


def cancel(line: AllocateLine) -> CancelLine:
    return CancelLine(order_id=line.order_id, line_id=line.line_id, sku=line.sku)


def every(lines: list[AllocateLine], step: int, start: int = 0) -> Iterator[AllocateLine]:
    return iter(lines[start::step])


async def test_queue_gauges_add_up_through_fills_cancels_and_promotions(
    sessions: SessionFactory, db: asyncpg.Connection
) -> None:
    sku = unique("GAUGE")
    standard = [allocate(sku, 1 + i % 4) for i in range(120)]
    vip = [allocate(sku, 2, vip=True) for _ in range(12)]
    await decide(sessions, [*standard[:60], *vip, *standard[60:]])
    await assert_gauges_agree_with_lines(sessions, db, sku)

    # stock reaches the vip lane first, then the standard lane's head, one partly
    await decide(sessions, [ReceiveStock(receipt_id=unique("r"), sku=sku, quantity=31)])
    await assert_gauges_agree_with_lines(sessions, db, sku)

    # lines leave both lanes from the middle: gaps
    await decide(sessions, [cancel(line) for line in [*every(standard, 7, 3), vip[-2]]])
    await assert_gauges_agree_with_lines(sessions, db, sku)

    # every standard line ages into the vip lane, behind the vip lines: the standard lane
    # empties, its gaps fold, and the vip lane's head is no longer its oldest line
    await promote_every_waiting_line(sessions, sku)
    await assert_gauges_agree_with_lines(sessions, db, sku)

    later = [allocate(sku, 3) for _ in range(40)]
    await decide(sessions, later)
    await decide(
        sessions,
        [
            *(cancel(line) for line in every(later, 5, 2)),
            ReceiveStock(receipt_id=unique("r"), sku=sku, quantity=45),
            *(cancel(line) for line in every(standard, 9, 40)),
        ],
    )
    await assert_gauges_agree_with_lines(sessions, db, sku)

    # served to the end: the SKU leaves the gauges
    await decide(sessions, [ReceiveStock(receipt_id=unique("r"), sku=sku, quantity=10_000)])
    await assert_gauges_agree_with_lines(sessions, db, sku)


async def test_queue_gauges_read_one_head_per_lane_not_the_waiting_lines(
    sessions: SessionFactory, db: asyncpg.Connection
) -> None:
    """However long the queues, the statement reads from the lines table one row per lane of
    the SKUs shown: it never scans or aggregates the waiting lines."""
    sku = unique("GAUGE")
    lines = [allocate(sku, 2) for _ in range(400)] + [allocate(sku, 1, vip=True) for _ in range(50)]
    await decide(sessions, lines)
    await decide(sessions, [cancel(line) for line in every(lines, 11, 5)])
    every_sku = max(1, await db.fetchval("select count(*) from sku_book"))
    waiting_lines = await db.fetchval("select count(*) from allocation_line where waiting > 0")
    assert waiting_lines >= 400  # the SKU's own, and whatever else waits
    # A book's default lane and each higher lane it keeps counters for: what may be probed.
    lanes = await db.fetchval("select count(*) + sum(jsonb_array_length(lanes)) from sku_book")

    async with sessions() as session:
        explain = text("explain (analyze, format json) " + queue_figures._TOP_QUEUES.text)
        explained = (await session.execute(explain, {"limit": every_sku})).scalar()
    plan = explained if isinstance(explained, list) else json.loads(str(explained))
    on_lines = [node for node in _nodes(plan[0]["Plan"]) if _reads(node, "allocation_line")]
    assert on_lines, plan
    assert not [node for node in on_lines if node["Node Type"] == "Seq Scan"], on_lines
    # One probe per lane, each at most one row ("Actual Rows" is a rounded mean per loop, so
    # the bound is on each probe and on the number of probes, not on their rounded product).
    assert all(node["Actual Rows"] <= 1 for node in on_lines), on_lines
    probes = sum(node["Actual Loops"] for node in on_lines)
    assert probes <= lanes, on_lines


def _nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", ()):
        yield from _nodes(child)


def _reads(node: dict[str, Any], table: str) -> bool:
    return bool(node.get("Relation Name") == table)

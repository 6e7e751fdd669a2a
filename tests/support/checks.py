"""Reads the system's state straight from PostgreSQL, to check what must always hold."""

import asyncio
from collections.abc import Callable, Iterable
from typing import Any

import asyncpg

from services.allocator.domain.book import lane_of
from shared.messaging.client import TopicTail


def latest(tail: TopicTail, order_id: str) -> dict[str, Any] | None:
    versions = tail.values(key=order_id)
    return max(versions, key=lambda v: v["version"]) if versions else None


def latest_line(tail: TopicTail, order_id: str, index: int = 0) -> dict[str, Any]:
    picture = latest(tail, order_id)
    assert picture is not None, f"nothing published for {order_id}"
    line: dict[str, Any] = picture["lines"][index]
    return line


async def wait_for_statuses(
    tail: TopicTail, expected: dict[str, str], *, timeout: float = 60.0
) -> dict[str, dict[str, Any]]:
    """Waits until each order's newest published version has the expected status."""

    def reached(_: list[Any]) -> bool:
        return all(
            (last := latest(tail, oid)) is not None and last["status"] == status
            for oid, status in expected.items()
        )

    try:
        await tail.wait_for(reached, timeout=timeout)
    except TimeoutError:
        seen = {oid: (latest(tail, oid) or {}).get("status") for oid in expected}
        raise AssertionError(f"expected {expected}, newest seen {seen}") from None
    return {oid: latest(tail, oid) or {} for oid in expected}


async def assert_books_consistent(db: asyncpg.Connection, skus: Iterable[str]) -> None:
    """For each SKU: nothing oversold, no idle stock while someone waits, arrival order kept
    within each priority rank (a rank's lane counts its seqs from rank << LANE_BITS)."""
    for sku in skus:
        book = await db.fetchrow("select * from sku_book where sku = $1", sku)
        assert book is not None, sku
        lines = await db.fetch(
            "select * from allocation_line where sku = $1 and not cancelled order by seq", sku
        )
        receipts = await db.fetchval(
            "select coalesce(sum(quantity), 0) from stock_receipt where sku = $1", sku
        )
        held = sum(line["allocated"] for line in lines)
        assert book["received_total"] == receipts, f"{sku}: receipts lost or doubled"
        assert held + book["available"] == receipts, f"{sku}: units appeared or vanished"
        waiting = [line for line in lines if line["waiting"] > 0]
        assert book["available"] == 0 or not waiting, f"{sku}: idle stock while lines wait"
        assert not _served_past_a_head(lines, waiting), f"{sku}: queue jumped"


def _served_past_a_head(lines: list[Any], waiting: list[Any]) -> list[str]:
    """Lines holding units behind the first line still waiting in their lane. A lane's head
    waited since before each line that joined the lane after it, so stock could reach those
    only past the head: none of them may hold units. A line aging lifted into the lane is the
    exception, as it keeps what it held in its former rank. (Lower lanes may hold units that
    came before a higher-ranked line joined ahead of them: the state cannot tell.)"""
    heads: dict[int, int] = {}
    for line in waiting:
        heads.setdefault(lane_of(line["seq"]), line["seq"])
    return [
        line["order_id"]
        for line in lines
        if line["seq"] > heads.get(lane_of(line["seq"]), line["seq"])
        and line["priority_rank"] == lane_of(line["seq"])
        and line["allocated"] > 0
    ]


async def wait_for_value(
    db: asyncpg.Connection, query: str, *args: object, expected: object, timeout: float = 60.0
) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while (value := await db.fetchval(query, *args)) != expected:
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{query} {args}: {value!r}, expected {expected!r}")
        await asyncio.sleep(0.1)


async def wait_for_available(db: asyncpg.Connection, sku: str, units: int) -> None:
    """Stock and orders travel through different services: let the stock land first."""
    await wait_for_value(db, "select available from sku_book where sku = $1", sku, expected=units)


async def eventually(
    condition: Callable[[], bool], *, what: str | Callable[[], str], timeout: float = 60.0
) -> None:
    """Waits for something a receiver or the database shows; `what` describes it on failure
    (a callable is asked then, so it can show the state at the end of the wait)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not within {timeout:g}s: {what() if callable(what) else what}")
        await asyncio.sleep(0.1)

"""The retention job's horizons and chunking, without a database (tests/integration/
test_retention.py runs the same deletes against PostgreSQL)."""

import asyncio
from collections.abc import Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any, cast

import pytest
from pydantic import ValidationError

from services.allocator import retention as allocator_retention
from services.bootstrap import SERVICES
from services.notifier import retention as notifier_retention
from shared.contracts.topics import (
    ALLOCATION_COMMANDS,
    ORDERS_STATUS_CHANGED,
    SKU_POLICY,
    Topic,
)
from shared.db.engine import SessionFactory
from shared.db.retention import (
    DEFAULT_SEGMENT_MS,
    Prunable,
    chunked_delete,
    dedupe_horizon,
    later,
    prune,
    readable_for,
)
from shared.periodic import repeat
from shared.settings import Settings

DAY = timedelta(days=1)
SEGMENT = timedelta(milliseconds=DEFAULT_SEGMENT_MS)


def test_a_record_is_readable_for_its_dead_letters_retention_and_a_segment_roll() -> None:
    # allocation.commands keeps 7 days, its dead letters 30; a replayed dead letter comes
    # with its event id, and the broker drops a segment only once its newest record is past
    # retention.
    assert readable_for(ALLOCATION_COMMANDS) == 30 * DAY + SEGMENT
    without_dlq = Topic("t", "k", "p", ("x",), "s", "d", dead_letter=False, retention_days=3)
    assert readable_for(without_dlq) == 3 * DAY + SEGMENT
    assert readable_for(SKU_POLICY) is None  # compacted: a key's latest record stays for ever


def test_the_dedupe_horizon_is_the_longest_input_plus_the_margin() -> None:
    short = Topic("a", "k", "p", ("x",), "s", "d", dead_letter=False, retention_days=1)
    long = Topic("b", "k", "p", ("x",), "s", "d", dead_letter=False, retention_days=9)
    margin = timedelta(hours=5)
    assert dedupe_horizon([short, long], margin=margin) == 9 * DAY + SEGMENT + margin
    # A compacted input can redeliver anything at any time: dedupe rows are never pruned.
    assert dedupe_horizon([short, SKU_POLICY], margin=margin) is None
    assert dedupe_horizon([], margin=margin) is None


def test_later_keeps_rows_the_longest() -> None:
    assert later(DAY, 3 * DAY) == 3 * DAY
    assert later(DAY, None) is None
    assert later() is None


def _by_name(prunables: Any) -> dict[str, Prunable]:
    return {p.name: p for p in prunables}


def test_the_allocator_prunes_closed_lines_only_after_its_dedupe_horizon() -> None:
    settings = Settings(retention_dedupe_margin_seconds=3600, retention_closed_seconds=86_400)
    dedupe = 30 * DAY + SEGMENT + timedelta(hours=1)
    pruned = _by_name(allocator_retention.prunables(settings))
    assert pruned["processed_message"].horizon == dedupe
    assert pruned["processed_message"].params == {"consumer": "allocator"}
    # Closed after one day, but a redelivered allocate-line would re-open a line whose row was
    # gone while its dedupe row is gone too: both wait for the dedupe horizon.
    assert pruned["allocation_line"].horizon == dedupe
    assert pruned["allocation_early_cancel"].horizon == dedupe
    longer = Settings(retention_closed_seconds=90 * 86_400)
    assert _by_name(allocator_retention.prunables(longer))["allocation_line"].horizon == 90 * DAY


def test_the_allocator_never_prunes_a_line_that_holds_or_awaits_units() -> None:
    where = str(allocator_retention.CLOSED_LINES)
    assert "old.cancelled or (old.allocated = 0 and old.waiting = 0)" in where


def test_the_notifier_keeps_failed_notifications_while_their_dead_letter_can_be_replayed() -> None:
    settings = Settings(retention_dedupe_margin_seconds=0, retention_closed_seconds=86_400)
    pruned = _by_name(notifier_retention.prunables(settings))
    assert readable_for(ORDERS_STATUS_CHANGED) == 30 * DAY + SEGMENT
    assert pruned["notification failed"].horizon == 30 * DAY + SEGMENT
    assert pruned["notification skipped"].horizon == DAY
    assert pruned["notification sent"].horizon == DAY
    assert {p.table for p in pruned.values()} == {"notification"}


def test_each_service_with_history_runs_a_retention_job() -> None:
    names = {
        service: [getattr(task, "__name__", "") for task in spec.background]
        for service, spec in SERVICES.items()
    }
    assert "retention" in names["allocator"]
    assert "retention" in names["notifier"]


def test_a_chunk_deletes_by_address_and_skips_rows_others_hold() -> None:
    statement = str(chunked_delete("t", "old.x < :before"))
    assert statement == (
        "delete from t where ctid = any(array(select old.ctid from t as old"
        " where old.x < :before limit :chunk for update of old skip locked))"
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("BACKORDER_RETENTION_CHUNK_SIZE", "0"),
        ("BACKORDER_RETENTION_CHUNK_SIZE", "1000000"),
        ("BACKORDER_RETENTION_DEDUPE_MARGIN_SECONDS", "-1"),
        ("BACKORDER_RETENTION_DEDUPE_MARGIN_SECONDS", "nan"),
        ("BACKORDER_RETENTION_CLOSED_SECONDS", "soon"),
        ("BACKORDER_RETENTION_CLOSED_SECONDS", "10"),
        ("BACKORDER_RETENTION_INTERVAL_SECONDS", "0"),
    ],
)
def test_a_bad_retention_setting_stops_the_start(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        Settings()


@dataclass
class FakeResult:
    rowcount: int


@dataclass
class FakeDatabase:
    """Rows per statement, deleted `chunk` at a time; records each transaction's statements."""

    rows: dict[str, int]
    transactions: list[list[dict[str, Any]]] = field(default_factory=list)

    def __call__(self) -> "FakeSession":
        return FakeSession(self)


@dataclass
class FakeSession:
    database: FakeDatabase

    async def __aenter__(self) -> "FakeSession":
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    def begin(self) -> AbstractAsyncContextManager[None]:
        @asynccontextmanager
        async def transaction() -> Any:
            self.database.transactions.append([])
            yield

        return transaction()

    async def execute(self, statement: Any, params: dict[str, Any]) -> FakeResult:
        table = str(statement).split()[2]
        deleted = min(params["chunk"], self.database.rows[table])
        self.database.rows[table] -= deleted
        self.database.transactions[-1].append({"table": table, **params})
        return FakeResult(deleted)


class FakeCounter:
    def __init__(self) -> None:
        self.counts: dict[str, float] = {}
        self._label = ""

    def labels(self, table: str) -> "FakeCounter":
        self._label = table
        return self

    def inc(self, amount: float = 1) -> None:
        self.counts[self._label] = self.counts.get(self._label, 0) + amount


def _prunable(table: str, horizon: timedelta | None) -> Prunable:
    return Prunable(table, chunked_delete(table, "old.at < :before"), horizon, {"extra": 1})


async def test_prune_deletes_in_chunks_each_its_own_transaction_until_one_comes_back_short() -> (
    None
):
    database = FakeDatabase({"a": 2_500, "b": 1_000, "c": 7})
    counter = FakeCounter()
    now = datetime(2026, 12, 7, tzinfo=UTC)
    pruned = await prune(
        cast(SessionFactory, database),
        [_prunable("a", DAY), _prunable("b", 2 * DAY), _prunable("c", None)],
        now=now,
        chunk=1_000,
        counter=counter,
    )
    assert pruned == {"a": 2_500, "b": 1_000, "c": 0}
    assert counter.counts == {"a": 2_500, "b": 1_000}
    assert database.rows == {"a": 0, "b": 0, "c": 7}  # no horizon: never touched
    # a: 1000, 1000, 500 (short: done); b: 1000, then 0 to learn it is done.
    chunks = [(t[0]["table"], t[0]["before"]) for t in database.transactions]
    assert [len(t) for t in database.transactions] == [1] * 5
    assert chunks == [("a", now - DAY)] * 3 + [("b", now - 2 * DAY)] * 2
    assert all(t[0]["chunk"] == 1_000 and t[0]["extra"] == 1 for t in database.transactions)


async def test_prune_refuses_an_empty_chunk() -> None:
    with pytest.raises(ValueError, match="chunk"):
        await prune(cast(SessionFactory, FakeDatabase({})), [], now=datetime.now(UTC), chunk=0)


async def test_repeat_goes_again_at_once_while_there_is_more_and_survives_a_failure() -> None:
    outcomes: Iterator[bool | Exception] = iter([True, True, RuntimeError("boom"), False, True])
    rounds: list[float] = []
    loop = asyncio.get_running_loop()
    done = asyncio.Event()

    async def round_() -> bool:
        rounds.append(loop.time())
        outcome = next(outcomes, None)
        if outcome is None:
            done.set()
            await asyncio.Event().wait()
        if isinstance(outcome, Exception):
            raise outcome
        return bool(outcome)

    task = asyncio.create_task(repeat("test", round_, interval=0.2))
    await asyncio.wait_for(done.wait(), timeout=5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    gaps = [later_ - earlier for earlier, later_ in pairwise(rounds)]
    # more, more: at once; failure, nothing more: after the interval; more: at once.
    assert [gap >= 0.19 for gap in gaps] == [False, False, True, True, False]

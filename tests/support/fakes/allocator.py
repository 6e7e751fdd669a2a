"""The allocator's repositories in memory, with the semantics of the SQL ones: a book opened is
created when never seen; its row, gaps and told lines are written back by `save` in the shapes
`sku_books` writes them (`book_row`, `line_row`: a line keeps the customer, priority and time it
was first stored with, and is read back without its customer); waiting lines are served by seq
(a lane's seqs start at `rank << LANE_BITS`); a restock is replaced, fulfilled or withdrawn per
SKU and purchase order; an early cancel is kept once per line and taken once; a message id is
handled once per consumer. A unit of work works on a copy of the tables, which replaces them
only when it commits: one left uncommitted changed nothing, as a transaction rolled back."""

import copy
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from services.allocator.domain.book import LANE_BITS, Key, lane_of
from services.allocator.domain.eta import Restock
from services.allocator.domain.model import Line
from services.allocator.domain.ranks import POSITION_RETELL_LIMIT
from services.allocator.repository.early_cancellations import EarlyCancel
from services.allocator.repository.sku_books import (
    UPDATED_BY_DECISIONS,
    OpenBook,
    book_row,
    line_row,
    open_book,
)
from services.allocator.repository.stored_lines import stored_line
from services.allocator.repository.sweep_probes import _LONGEST
from services.allocator.tables import SkuBookRow
from shared.contracts.internal import CancelLine
from tests.support.fakes.unit_of_work import FakeUnitOfWork

_HIGHER_LANES = 1 << LANE_BITS


@dataclass
class AllocatorTables:
    """What the allocator's tables hold, as committed: shared by the units of work of a test,
    one after the other. Rows are column dicts, as the SQL repositories read and write them."""

    books: dict[str, dict[str, Any]] = field(default_factory=dict)
    gaps: dict[str, dict[int, int]] = field(default_factory=dict)
    lines: dict[Key, dict[str, Any]] = field(default_factory=dict)
    # By SKU and purchase order: units and expected date.
    restocks: dict[tuple[str, str], tuple[int, datetime]] = field(default_factory=dict)
    early_cancels: dict[Key, CancelLine] = field(default_factory=dict)
    processed: set[tuple[str, str]] = field(default_factory=set)

    def later(self, delta: timedelta) -> None:
        """As if `delta` had passed: every time stored lies that much further back."""
        for line in self.lines.values():
            line["requested_at"] -= delta
            if line["eta"] is not None:
                line["eta"] -= delta
        for row in self.books.values():
            if row["newest_requested_at"] is not None:
                row["newest_requested_at"] -= delta
            for lane in row["lanes"]:
                if lane["newest_requested_at"]:
                    newest = datetime.fromisoformat(lane["newest_requested_at"]) - delta
                    lane["newest_requested_at"] = newest.isoformat()
        for where, (quantity, expected_at) in self.restocks.items():
            self.restocks[where] = (quantity, expected_at - delta)

    # What a test looks at.

    def line(self, order_id: str, line_id: str = "1") -> Line:
        return _line(self.lines[order_id, line_id])

    def waiting(self, sku: str) -> list[Key]:
        """The SKU's waiting lines in the order they are served: highest lane first."""
        rows = sorted(self.waiting_rows(sku), key=lambda row: -lane_of(row["seq"]))
        return [(row["order_id"], row["line_id"]) for row in rows]

    # What the SQL's queue indexes give: a SKU's waiting lines by seq, and the heads.

    def waiting_rows(self, sku: str) -> list[dict[str, Any]]:
        rows = [row for row in self.lines.values() if row["sku"] == sku and row["waiting"] > 0]
        return sorted(rows, key=lambda row: int(row["seq"]))

    def default_lane_head(self, sku: str) -> dict[str, Any] | None:
        return next((r for r in self.waiting_rows(sku) if r["seq"] < _HIGHER_LANES), None)

    def in_higher_lanes(self, sku: str) -> list[dict[str, Any]]:
        return [r for r in self.waiting_rows(sku) if r["seq"] >= _HIGHER_LANES]


class FakeStoredLines:
    """The `WaitingLines` port over `AllocatorTables.lines`, as `StoredLines` queries them: a
    line is found by its key alone, whatever its SKU."""

    def __init__(self, tables: AllocatorTables, sku: str) -> None:
        self._tables = tables
        self._sku = sku

    async def find(self, key: Key) -> Line | None:
        row = self._tables.lines.get(key)
        return None if row is None else _line(row)

    async def waiting_from(self, seq: int, limit: int) -> list[Line]:
        rows = self._tables.waiting_rows(self._sku)
        return [_line(row) for row in rows if row["seq"] >= seq][:limit]

    async def waiting_down_from(self, seq: int, limit: int) -> list[Line]:
        rows = reversed(self._tables.waiting_rows(self._sku))
        return [_line(row) for row in rows if row["seq"] <= seq][:limit]

    async def first_waiting_beyond(self, through: int) -> Line | None:
        beyond = [r for r in self._tables.waiting_rows(self._sku) if r["through"] > through]
        return _line(min(beyond, key=lambda row: int(row["through"]))) if beyond else None

    async def waiting_of(self, customer_id: str) -> list[tuple[Key, int]]:
        return [
            ((row["order_id"], row["line_id"]), row["waiting"])
            for row in self._tables.waiting_rows(self._sku)
            if row["customer_id"] == customer_id
        ]


def _line(row: dict[str, Any]) -> Line:
    return stored_line(SimpleNamespace(**row))


class FakeBooksRepository:
    def __init__(self, tables: AllocatorTables) -> None:
        self._tables = tables

    async def open(
        self,
        skus: Iterable[str],
        *,
        default_backorders: str,
        retell_limit: int = POSITION_RETELL_LIMIT,
        lines: Mapping[str, Sequence[Key]] | None = None,
        customers: Mapping[str, set[str]] | None = None,
    ) -> dict[str, OpenBook]:
        # Nothing writes the lines before `save`: reading them ahead would change no answer.
        now = datetime.now(UTC)
        opened = {}
        for sku in sorted(set(skus)):
            row = self._tables.books.setdefault(
                sku, SkuBookRow(sku=sku, updated_at=now).model_dump()
            )
            opened[sku] = open_book(
                copy.deepcopy(row),
                gaps=dict(self._tables.gaps.get(sku, {})),
                restocks=_restocks_of(self._tables, sku),
                waiting=FakeStoredLines(self._tables, sku),
                default_backorders=default_backorders,
                retell_limit=retell_limit,
                now=now,
            )
        return opened

    async def save(self, books: Iterable[OpenBook]) -> None:
        now = datetime.now(UTC)
        for opened in books:
            sku = opened.book.sku
            row = copy.deepcopy(book_row(opened, now=now))
            del row["book_sku"]
            self._tables.books[sku].update(row)
            stored = self._tables.gaps.setdefault(sku, {})
            gaps = opened.book.gaps()
            for seq in opened.gaps_read:
                if seq not in gaps:
                    stored.pop(seq, None)
            for seq, units in gaps.items():
                if seq not in opened.gaps_read:
                    stored[seq] = units
            for line in opened.told.values():
                told = line_row(line, sku=sku, now=now)
                if line.key in self._tables.lines:
                    self._tables.lines[line.key].update(
                        {name: told[name] for name in UPDATED_BY_DECISIONS}
                    )
                else:
                    self._tables.lines[line.key] = told
            opened.gaps_read = gaps
            opened.told = {}

    async def in_stock(self, skus: Sequence[str]) -> list[str]:
        books = self._tables.books
        return [sku for sku in skus if sku in books and books[sku]["available"] > 0]


def _restocks_of(tables: AllocatorTables, sku: str) -> list[Restock]:
    return [
        Restock(po_id, quantity, expected_at)
        for (of, po_id), (quantity, expected_at) in tables.restocks.items()
        if of == sku
    ]


class FakeRestocksRepository:
    def __init__(self, tables: AllocatorTables) -> None:
        self._tables = tables

    async def of(self, sku: str) -> list[Restock]:
        return _restocks_of(self._tables, sku)

    async def schedule(self, *, sku: str, po_id: str, quantity: int, expected_at: datetime) -> None:
        if quantity == 0:
            self._tables.restocks.pop((sku, po_id), None)
        else:
            self._tables.restocks[sku, po_id] = (quantity, expected_at)

    async def fulfil(self, *, sku: str, po_id: str, quantity: int) -> None:
        expected = self._tables.restocks.get((sku, po_id))
        if expected is None:
            return
        if expected[0] <= quantity:
            del self._tables.restocks[sku, po_id]
        else:
            self._tables.restocks[sku, po_id] = (expected[0] - quantity, expected[1])


class FakeEarlyCancelsRepository:
    def __init__(self, tables: AllocatorTables) -> None:
        self._tables = tables

    async def remember(self, command: CancelLine) -> None:
        self._tables.early_cancels.setdefault((command.order_id, command.line_id), command)

    async def take(self, keys: list[Key]) -> dict[Key, EarlyCancel]:
        taken = (self._tables.early_cancels.pop(key, None) for key in dict.fromkeys(keys))
        return {(c.order_id, c.line_id): EarlyCancel(c.reason) for c in taken if c is not None}


class FakeSweepProbes:
    """The probes' conditions, row by row; SKUs in SKU order (the SQL promises none)."""

    def __init__(self, tables: AllocatorTables) -> None:
        self._tables = tables

    async def skus_with_overdue_lines(
        self, *, now: datetime, default_max_wait: timedelta | None, limit: int
    ) -> list[str]:
        default = default_max_wait.total_seconds() if default_max_wait else None
        found = []
        for sku, row in sorted(self._tables.books.items()):
            max_wait = _coalesce(row["max_wait_seconds"], default)
            if max_wait is None:
                continue
            bound = min(max_wait, _LONGEST)
            head = self._tables.default_lane_head(sku)
            above = self._tables.in_higher_lanes(sku) if row["lanes"] else []
            if (head is not None and _waited(head, now) > bound) or any(
                _waited(line, now) > bound for line in above
            ):
                found.append(sku)
        return found[:limit]

    async def skus_with_past_dates(self, *, now: datetime, limit: int) -> list[str]:
        overdue = sorted(
            {
                sku
                for (sku, _), (quantity, expected_at) in self._tables.restocks.items()
                if expected_at < now and quantity > 0
            }
        )
        found = []
        for sku in overdue:
            head = self._tables.default_lane_head(sku)
            if (head is not None and _before(head["eta"], now)) or any(
                _before(line["eta"], now) for line in self._tables.in_higher_lanes(sku)
            ):
                found.append(sku)
        return found[:limit]

    async def skus_with_lines_to_promote(
        self, *, now: datetime, default_aging: timedelta | None, top_rank: int, limit: int
    ) -> list[str]:
        if top_rank == 0:
            return []
        default = default_aging.total_seconds() if default_aging else None
        found = []
        for sku, row in sorted(self._tables.books.items()):
            configured = _coalesce(row["aging_seconds"], default)
            if configured is None:
                continue
            aging = min(configured, _LONGEST)
            head = self._tables.default_lane_head(sku)
            above = self._tables.in_higher_lanes(sku) if row["lanes"] else []
            if (head is not None and _waited(head, now) > aging) or any(
                line["seq"] < top_rank << LANE_BITS
                and _waited(line, now) > aging * (lane_of(line["seq"]) - line["priority_rank"] + 1)
                for line in above
            ):
                found.append(sku)
        return found[:limit]


def _coalesce(value: float | None, default: float | None) -> float | None:
    return value if value is not None else default


def _waited(row: dict[str, Any], now: datetime) -> float:
    waited: timedelta = now - row["requested_at"]
    return waited.total_seconds()


def _before(moment: datetime | None, now: datetime) -> bool:
    return moment is not None and moment < now


class FakeAllocatorUnitOfWork(FakeUnitOfWork):
    """Fits `services.allocator.unit_of_work.AllocatorWork`. Units of work handed the same
    `tables` see what the ones before them committed."""

    def __init__(self, tables: AllocatorTables | None = None) -> None:
        super().__init__()
        self.tables = tables if tables is not None else AllocatorTables()
        self._working = copy.deepcopy(self.tables)
        self.books = FakeBooksRepository(self._working)
        self.restocks = FakeRestocksRepository(self._working)
        self.early_cancels = FakeEarlyCancelsRepository(self._working)
        self.sweeps = FakeSweepProbes(self._working)

    async def first_times(self, *, consumer: str, message_ids: Sequence[str]) -> set[str]:
        fresh = {mid for mid in message_ids if (consumer, mid) not in self._working.processed}
        self._working.processed.update((consumer, mid) for mid in fresh)
        return fresh

    async def commit(self) -> None:
        for table in fields(AllocatorTables):
            setattr(self.tables, table.name, copy.deepcopy(getattr(self._working, table.name)))
        await super().commit()

"""A SKU's book in PostgreSQL: its `sku_book` row (counters, lanes, policy) and its queue gaps,
opened under the SKU's row lock, and what it changed written back in set-based statements, its
told lines included. And which SKUs have units nobody holds, for a waiting line's
alternatives. `SqlBooksRepository` does it; the rows' shapes (`open_book`, `book_row`,
`line_row`) are shared with the fast tier's fake, so both read and write a book alike."""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import bindparam, delete, select, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from services.allocator.domain.book import Key, QueueState, WaitingLines, lane_of
from services.allocator.domain.eta import Restock, Schedule
from services.allocator.domain.model import Line, Policy
from services.allocator.domain.ranks import POSITION_RETELL_LIMIT, RankedBook
from services.allocator.repository.scheduled_restocks import load_restocks_of
from services.allocator.repository.stored_lines import (
    StoredLines,
    read_ahead,
    read_customers_ahead,
)
from services.allocator.tables import AllocationLineRow, QueueGapRow, SkuBookRow
from shared.contracts.policy import SkuPolicyFields


@dataclass
class OpenBook:
    """A SKU's book, locked until the transaction ends: two consumers never decide at once."""

    book: RankedBook
    row: dict[str, Any]
    gaps_read: dict[int, int]
    # Every line told since the book was opened, as it stands now: what `save` writes.
    told: dict[Key, Line] = field(default_factory=dict)

    def set_policy(self, declared: SkuPolicyFields | None, *, default_backorders: str) -> None:
        """The SKU's own policy from now on; None: it has none, the defaults apply."""
        self.row.update(policy_columns(declared))
        self.book.policy = Policy.of(declared, default_backorders=default_backorders)


def policy_columns(declared: SkuPolicyFields | None) -> dict[str, Any]:
    """The columns of a `sku_book` row that hold the SKU's own policy: the policy whole, and
    the two bounds the sweeps' SQL compares (`sweep_probes`), in seconds."""
    return {
        "policy": None if declared is None else declared.model_dump(mode="json"),
        "max_wait_seconds": _seconds(declared.max_wait if declared else None),
        "aging_seconds": _seconds(declared.aging if declared else None),
    }


def _seconds(duration: timedelta | None) -> float | None:
    return None if duration is None else duration.total_seconds()


POLICY_COLUMNS = tuple(policy_columns(None))


class BooksRepository(Protocol):
    async def open(
        self,
        skus: Iterable[str],
        *,
        default_backorders: str,
        retell_limit: int = POSITION_RETELL_LIMIT,
        lines: Mapping[str, Sequence[Key]] | None = None,
        customers: Mapping[str, set[str]] | None = None,
    ) -> dict[str, OpenBook]:
        """Locks the SKUs' books until the unit of work ends, creating those never seen.
        `lines` and `customers`: per SKU, the lines a batch's commands name and the customers
        whose waiting lines its per-customer cap counts, read ahead so that no command looks
        one up alone. `retell_limit`: how many lines whose place worsened one decision retells
        (`RankedBook`)."""
        ...

    async def save(self, books: Iterable[OpenBook]) -> None:
        """Every book's counters, gaps and told lines."""
        ...

    async def in_stock(self, skus: Sequence[str]) -> list[str]:
        """Which of `skus` have units nobody holds, in the order given."""
        ...


def _policy(row: dict[str, Any], default_backorders: str) -> Policy:
    stored = row["policy"]
    declared = None if stored is None else SkuPolicyFields.model_validate(stored)
    return Policy.of(declared, default_backorders=default_backorders)


def open_book(
    row: dict[str, Any],
    *,
    gaps: dict[int, int],
    restocks: list[Restock],
    waiting: WaitingLines,
    default_backorders: str,
    retell_limit: int,
    now: datetime,
) -> OpenBook:
    """The book of a `sku_book` row (as returned, column by column), its gaps and restocks."""
    lanes = [
        QueueState(
            available=row["available"],
            next_seq=row["next_seq"],
            queued=row["queued_units"],
            departed=row["departed_units"],
            newest_requested_at=row["newest_requested_at"],
        ),
        *(_lane_state(stored) for stored in row["lanes"] or ()),
    ]
    for seq, units in gaps.items():
        next(lane for lane in lanes if lane.lane == lane_of(seq)).gaps[seq] = units
    book = RankedBook(
        sku=row["sku"],
        policy=_policy(row, default_backorders),
        lanes=lanes,
        schedule=Schedule(restocks, now=now),
        waiting=waiting,
        retell_limit=retell_limit,
    )
    return OpenBook(book=book, row=row, gaps_read=gaps)


def _lane_state(stored: dict[str, Any]) -> QueueState:
    newest = stored.get("newest_requested_at")
    return QueueState(
        lane=stored["lane"],
        next_seq=stored["next_seq"],
        queued=stored["queued"],
        departed=stored["departed"],
        newest_requested_at=datetime.fromisoformat(newest) if newest else None,
    )


def _stored_lane(state: QueueState) -> dict[str, Any]:
    newest = state.newest_requested_at
    return {
        "lane": state.lane,
        "next_seq": state.next_seq,
        "queued": state.queued,
        "departed": state.departed,
        "newest_requested_at": newest.isoformat() if newest else None,
    }


# What an upsert of a told line changes: the rest is written when the line is first stored.
UPDATED_BY_DECISIONS = (
    "seq",
    "through",
    "allocated",
    "rejected",
    "waiting",
    "cancelled",
    "expired",
    "reason",
    "revision",
    "eta",
    "updated_at",
)


_book_table = SkuBookRow.__table__  # type: ignore[attr-defined]
_UPDATE_BOOK = (
    _book_table.update()
    .where(_book_table.c.sku == bindparam("book_sku"))
    .values(
        {
            name: bindparam(name)
            for name in (
                "available",
                "received_total",
                "next_seq",
                "queued_units",
                "departed_units",
                "newest_requested_at",
                *POLICY_COLUMNS,
                "lanes",
                "updated_at",
            )
        }
    )
)


def book_row(opened: OpenBook, *, now: datetime) -> dict[str, Any]:
    state, row = opened.book.state, opened.row
    return {
        "book_sku": opened.book.sku,
        "available": state.available,
        "received_total": row["received_total"],
        "next_seq": state.next_seq,
        "queued_units": state.queued,
        "departed_units": state.departed,
        "newest_requested_at": state.newest_requested_at,
        **{name: row[name] for name in POLICY_COLUMNS},
        "lanes": [_stored_lane(lane) for lane in opened.book.higher_lanes()],
        "updated_at": now,
    }


def line_row(line: Line, *, sku: str, now: datetime) -> dict[str, Any]:
    return {
        "order_id": line.order_id,
        "line_id": line.line_id,
        "sku": sku,
        # Written when the line is first stored, never updated: lines read back lack it.
        "customer_id": line.customer_id,
        "priority": line.priority,
        "priority_rank": line.rank,
        "seq": line.seq or 0,
        "through": line.through,
        "quantity": line.quantity,
        "allocated": line.allocated,
        "rejected": line.rejected,
        "waiting": line.short,
        "cancelled": line.cancelled,
        "expired": line.expired,
        "reason": line.reason,
        "revision": line.revision,
        "eta": line.eta,
        "requested_at": line.requested_at or now,
        "updated_at": now,
    }


class SqlBooksRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def open(
        self,
        skus: Iterable[str],
        *,
        default_backorders: str,
        retell_limit: int = POSITION_RETELL_LIMIT,
        lines: Mapping[str, Sequence[Key]] | None = None,
        customers: Mapping[str, set[str]] | None = None,
    ) -> dict[str, OpenBook]:
        """In SKU order, so that two batches never deadlock: three statements for the whole
        batch, and one for each kind of read-ahead."""
        wanted = sorted(set(skus))
        if not wanted:
            return {}
        session = self._session
        now = datetime.now(UTC)
        upsert = insert(SkuBookRow).values([{"sku": sku, "updated_at": now} for sku in wanted])
        locked = await session.execute(
            upsert.on_conflict_do_update(
                index_elements=["sku"], set_={"sku": upsert.excluded.sku}
            ).returning(*SkuBookRow.__table__.columns)  # type: ignore[attr-defined]
        )
        rows = {row["sku"]: dict(row) for row in locked.mappings()}
        gaps: dict[str, dict[int, int]] = {sku: {} for sku in wanted}
        stored_gaps = await session.execute(
            select(col(QueueGapRow.sku), col(QueueGapRow.seq), col(QueueGapRow.units)).where(
                col(QueueGapRow.sku).in_(wanted)
            )
        )
        for sku, seq, units in stored_gaps:
            gaps[sku][seq] = units
        restocks = await load_restocks_of(session, skus=wanted)
        stores = {sku: StoredLines(session, sku) for sku in wanted}
        opened = {
            sku: open_book(
                rows[sku],
                gaps=gaps[sku],
                restocks=restocks.get(sku, []),
                waiting=stores[sku],
                default_backorders=default_backorders,
                retell_limit=retell_limit,
                now=now,
            )
            for sku in wanted
        }
        await read_ahead(session, {sku: list(keys) for sku, keys in (lines or {}).items()}, stores)
        # Only a SKU capping each customer's waiting units asks for them.
        capped = {
            sku: named
            for sku, named in (customers or {}).items()
            if opened[sku].book.policy.max_backorder_quantity_per_customer is not None
        }
        await read_customers_ahead(session, capped, stores)
        return opened

    async def save(self, books: Iterable[OpenBook]) -> None:
        """Every book's counters, gaps and told lines: a statement for each kind, for all books."""
        now = datetime.now(UTC)
        books = list(books)
        if not books:
            return
        await self._session.execute(_UPDATE_BOOK, [book_row(opened, now=now) for opened in books])
        gone = [(o.book.sku, seq) for o in books for seq in o.gaps_read if seq not in o.book.gaps()]
        new = [
            {"sku": o.book.sku, "seq": seq, "units": units}
            for o in books
            for seq, units in o.book.gaps().items()
            if seq not in o.gaps_read
        ]
        if gone:
            await self._session.execute(
                delete(QueueGapRow).where(
                    tuple_(col(QueueGapRow.sku), col(QueueGapRow.seq)).in_(gone)
                )
            )
        if new:
            await self._session.execute(insert(QueueGapRow), new)
        told = [line_row(line, sku=o.book.sku, now=now) for o in books for line in o.told.values()]
        if told:
            upsert = insert(AllocationLineRow)
            await self._session.execute(
                upsert.on_conflict_do_update(
                    index_elements=["order_id", "line_id"],
                    set_={name: upsert.excluded[name] for name in UPDATED_BY_DECISIONS},
                ),
                told,
            )
        for opened in books:
            opened.gaps_read = opened.book.gaps()
            opened.told = {}

    async def in_stock(self, skus: Sequence[str]) -> list[str]:
        """Which of `skus` have units nobody holds, in the order given."""
        if not skus:
            return []
        stocked = set(
            (
                await self._session.scalars(
                    select(col(SkuBookRow.sku)).where(
                        col(SkuBookRow.sku).in_(skus), col(SkuBookRow.available) > 0
                    )
                )
            ).all()
        )
        return [sku for sku in skus if sku in stocked]

"""A SKU's book in PostgreSQL: its `sku_book` row (counters, lanes, policy) and its queue gaps,
opened under the SKU's row lock, and what it changed written back in set-based statements, its
told lines included. And which SKUs have units nobody holds, for a waiting line's
alternatives."""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, select, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from services.allocator.domain.book import Key, QueueState, lane_of
from services.allocator.domain.eta import Schedule
from services.allocator.domain.model import Line, Policy
from services.allocator.domain.ranks import POSITION_RETELL_LIMIT, RankedBook
from services.allocator.repository.scheduled_restocks import load_restocks_of
from services.allocator.repository.stored_lines import StoredLines
from services.allocator.tables import AllocationLineRow, QueueGapRow, SkuBookRow
from shared.contracts.common import MAX_DURATION

# Rows written before durations were bounded may hold more than a timedelta can: they are
# read as the longest wait a policy may set today.
_LONGEST = MAX_DURATION.total_seconds()


@dataclass
class OpenBook:
    """A SKU's book, locked until the transaction ends: two consumers never decide at once."""

    book: RankedBook
    lines: StoredLines
    row: dict[str, Any]
    gaps_read: dict[int, int]
    # Every line told since the book was opened, as it stands now: what `save` writes.
    told: dict[Key, Line] = field(default_factory=dict)


def _policy(row: dict[str, Any], default_backorders: str) -> Policy:
    max_wait, aging = row["max_wait_seconds"], row["aging_seconds"]
    backorders = row["backorders"] or default_backorders
    return Policy(
        backorders_allowed=backorders != "deny",
        returning_customers_only=backorders == "returning_customers",
        max_backorder_quantity=row["max_backorder_quantity"],
        max_backorder_quantity_per_customer=row["max_backorder_quantity_per_customer"],
        delay_incentive=row["delay_incentive"],
        max_wait=timedelta(seconds=min(max_wait, _LONGEST)) if max_wait else None,
        alternatives=tuple(row["alternatives"] or ()),
        aging=timedelta(seconds=min(aging, _LONGEST)) if aging else None,
    )


async def open_books(
    session: AsyncSession,
    *,
    skus: Iterable[str],
    default_backorders: str,
    retell_limit: int = POSITION_RETELL_LIMIT,
) -> dict[str, OpenBook]:
    """Locks the books of a batch's SKUs, in SKU order so that two batches never deadlock,
    creating those never seen: three statements for the whole batch. `retell_limit`: how many
    lines whose place worsened one decision retells (`RankedBook`)."""
    wanted = sorted(set(skus))
    if not wanted:
        return {}
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
    opened = {}
    for sku in wanted:
        row = rows[sku]
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
        for seq, units in gaps[sku].items():
            next(lane for lane in lanes if lane.lane == lane_of(seq)).gaps[seq] = units
        lines = StoredLines(session, sku)
        book = RankedBook(
            sku=sku,
            policy=_policy(row, default_backorders),
            lanes=lanes,
            schedule=Schedule(restocks.get(sku, []), now=now),
            waiting=lines,
            retell_limit=retell_limit,
        )
        opened[sku] = OpenBook(book=book, lines=lines, row=row, gaps_read=gaps[sku])
    return opened


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


def set_policy(
    opened: OpenBook,
    *,
    backorders: str | None,
    max_backorder_quantity: int | None,
    max_backorder_quantity_per_customer: int | None,
    max_wait_seconds: float | None,
    aging_seconds: float | None,
    alternatives: list[str],
    delay_incentive: str | None,
    default_backorders: str,
) -> None:
    opened.row.update(
        backorders=backorders,
        max_backorder_quantity=max_backorder_quantity,
        max_backorder_quantity_per_customer=max_backorder_quantity_per_customer,
        max_wait_seconds=max_wait_seconds,
        aging_seconds=aging_seconds,
        alternatives=alternatives,
        delay_incentive=delay_incentive,
    )
    opened.book.policy = _policy(opened.row, default_backorders)


_UPDATED_BY_DECISIONS = (
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


async def save(session: AsyncSession, books: Iterable[OpenBook]) -> None:
    """Every book's counters, gaps and told lines: a statement for each kind, for all books."""
    now = datetime.now(UTC)
    books = list(books)
    if not books:
        return
    await session.execute(_UPDATE_BOOK, [_book_row(opened, now=now) for opened in books])
    gone = [(o.book.sku, seq) for o in books for seq in o.gaps_read if seq not in o.book.gaps()]
    new = [
        {"sku": o.book.sku, "seq": seq, "units": units}
        for o in books
        for seq, units in o.book.gaps().items()
        if seq not in o.gaps_read
    ]
    if gone:
        await session.execute(
            delete(QueueGapRow).where(tuple_(col(QueueGapRow.sku), col(QueueGapRow.seq)).in_(gone))
        )
    if new:
        await session.execute(insert(QueueGapRow), new)
    told = [_line_row(line, sku=o.book.sku, now=now) for o in books for line in o.told.values()]
    if told:
        upsert = insert(AllocationLineRow)
        await session.execute(
            upsert.on_conflict_do_update(
                index_elements=["order_id", "line_id"],
                set_={name: upsert.excluded[name] for name in _UPDATED_BY_DECISIONS},
            ),
            told,
        )
    for opened in books:
        opened.gaps_read = opened.book.gaps()
        opened.told = {}


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
                "backorders",
                "max_backorder_quantity",
                "max_backorder_quantity_per_customer",
                "max_wait_seconds",
                "aging_seconds",
                "lanes",
                "alternatives",
                "delay_incentive",
                "updated_at",
            )
        }
    )
)


def _book_row(opened: OpenBook, *, now: datetime) -> dict[str, Any]:
    state, row = opened.book.state, opened.row
    return {
        "book_sku": opened.book.sku,
        "available": state.available,
        "received_total": row["received_total"],
        "next_seq": state.next_seq,
        "queued_units": state.queued,
        "departed_units": state.departed,
        "newest_requested_at": state.newest_requested_at,
        "backorders": row["backorders"],
        "max_backorder_quantity": row["max_backorder_quantity"],
        "max_backorder_quantity_per_customer": row["max_backorder_quantity_per_customer"],
        "max_wait_seconds": row["max_wait_seconds"],
        "aging_seconds": row["aging_seconds"],
        "lanes": [_stored_lane(lane) for lane in opened.book.higher_lanes()],
        "alternatives": row["alternatives"],
        "delay_incentive": row["delay_incentive"],
        "updated_at": now,
    }


def _line_row(line: Line, *, sku: str, now: datetime) -> dict[str, Any]:
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


async def in_stock(session: AsyncSession, *, skus: tuple[str, ...]) -> list[str]:
    """Which of `skus` have units nobody holds, in the order given."""
    if not skus:
        return []
    stocked = set(
        (
            await session.scalars(
                select(col(SkuBookRow.sku)).where(
                    col(SkuBookRow.sku).in_(skus), col(SkuBookRow.available) > 0
                )
            )
        ).all()
    )
    return [sku for sku in skus if sku in stocked]

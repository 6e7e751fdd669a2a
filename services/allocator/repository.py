"""Loads a SKU's book under a row lock and writes back what the domain changed."""

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, literal, select
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from services.allocator.domain.eta import Restock
from services.allocator.domain.model import Line, Policy, SkuBook
from services.allocator.tables import (
    AllocationLineRow,
    EarlyCancellationRow,
    ScheduledRestockRow,
    SkuBookRow,
)
from shared.contracts.common import MAX_DURATION
from shared.contracts.internal import CancelLine


@dataclass
class LockedBook:
    """A SKU's book, locked until the transaction ends; two consumers never decide at once."""

    book: SkuBook
    row: SkuBookRow
    lines: dict[tuple[str, str], AllocationLineRow] = field(default_factory=dict)

    def _track(self, line: Line, row: AllocationLineRow) -> None:
        self.lines[(line.order_id, line.line_id)] = row

    def row_of(self, line: Line) -> AllocationLineRow:
        return self.lines[(line.order_id, line.line_id)]


# Rows written before durations were bounded may hold more than a timedelta can: they are
# read as the longest wait a policy may set today.
_LONGEST = MAX_DURATION.total_seconds()


def _policy(row: SkuBookRow, default_backorders: str) -> Policy:
    return Policy(
        backorders_allowed=(row.backorders or default_backorders) == "allow",
        max_backorder_quantity=row.max_backorder_quantity,
        max_wait=(
            timedelta(seconds=min(row.max_wait_seconds, _LONGEST)) if row.max_wait_seconds else None
        ),
        alternatives=tuple(row.alternatives or ()),
    )


def _line(row: AllocationLineRow) -> Line:
    return Line(
        order_id=row.order_id,
        line_id=row.line_id,
        quantity=row.quantity,
        allocated=row.allocated,
        rejected=row.rejected,
        cancelled=row.cancelled,
        reason=row.reason,
        requested_at=row.requested_at,
        expired=row.expired,
    )


async def lock_book(session: AsyncSession, *, sku: str, default_backorders: str) -> LockedBook:
    now = datetime.now(UTC)
    await session.execute(
        insert(SkuBookRow).values(sku=sku, updated_at=now).on_conflict_do_nothing()
    )
    row = (
        await session.scalars(
            select(SkuBookRow)
            .where(SkuBookRow.sku == sku)  # type: ignore[arg-type]
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).one()
    queue_rows = (
        await session.scalars(
            select(AllocationLineRow)
            .where(AllocationLineRow.sku == sku, AllocationLineRow.waiting > 0)  # type: ignore[arg-type]
            .order_by(AllocationLineRow.seq)  # type: ignore[arg-type]
            .execution_options(populate_existing=True)
        )
    ).all()
    book = SkuBook(
        sku=sku, available=row.available, policy=_policy(row, default_backorders), queue=[]
    )
    locked = LockedBook(book=book, row=row)
    for line_row in queue_rows:
        line = _line(line_row)
        book.queue.append(line)
        locked._track(line, line_row)
    return locked


async def find_line(
    session: AsyncSession, locked: LockedBook, *, order_id: str, line_id: str
) -> Line | None:
    for line in locked.book.queue:
        if (line.order_id, line.line_id) == (order_id, line_id):
            return line
    row = await session.get(AllocationLineRow, (order_id, line_id), populate_existing=True)
    if row is None:
        return None
    line = _line(row)
    locked._track(line, row)
    return line


def add_line(session: AsyncSession, locked: LockedBook, *, line: Line) -> None:
    row = AllocationLineRow(
        order_id=line.order_id,
        line_id=line.line_id,
        sku=locked.book.sku,
        seq=locked.row.next_seq,
        quantity=line.quantity,
        requested_at=datetime.now(UTC),
        updated_at=datetime.now(UTC),
    )
    locked.row.next_seq += 1
    line.requested_at = row.requested_at
    session.add(row)
    locked._track(line, row)


def set_policy(
    locked: LockedBook,
    *,
    backorders: str | None,
    max_backorder_quantity: int | None,
    max_wait_seconds: float | None,
    alternatives: list[str],
    default_backorders: str,
) -> None:
    locked.row.backorders = backorders
    locked.row.max_backorder_quantity = max_backorder_quantity
    locked.row.max_wait_seconds = max_wait_seconds
    locked.row.alternatives = alternatives
    locked.book.policy = _policy(locked.row, default_backorders)


def save(locked: LockedBook, *, changed: list[Line]) -> None:
    now = datetime.now(UTC)
    book, row = locked.book, locked.row
    row.available = book.available
    row.updated_at = now
    for line in changed:
        line_row = locked.row_of(line)
        line_row.allocated = line.allocated
        line_row.rejected = line.rejected
        line_row.waiting = line.short
        line_row.cancelled = line.cancelled
        line_row.expired = line.expired
        line_row.reason = line.reason
        line_row.revision += 1
        line_row.updated_at = now


async def remember_early_cancellation(session: AsyncSession, command: CancelLine) -> None:
    await session.execute(
        insert(EarlyCancellationRow)
        .values(
            order_id=command.order_id,
            line_id=command.line_id,
            sku=command.sku,
            reason=command.reason,
            received_at=datetime.now(UTC),
        )
        .on_conflict_do_nothing()
    )


async def take_early_cancellation(
    session: AsyncSession, *, order_id: str, line_id: str
) -> EarlyCancellationRow | None:
    taken = await session.execute(
        delete(EarlyCancellationRow)
        .where(
            col(EarlyCancellationRow.order_id) == order_id,
            col(EarlyCancellationRow.line_id) == line_id,
        )
        .returning(EarlyCancellationRow)
    )
    return taken.scalars().first()


async def load_restocks(session: AsyncSession, *, sku: str) -> list[Restock]:
    rows = (
        await session.scalars(
            select(ScheduledRestockRow).where(col(ScheduledRestockRow.sku) == sku)
        )
    ).all()
    return [Restock(po_id=r.po_id, quantity=r.quantity, expected_at=r.expected_at) for r in rows]


async def schedule_restock(
    session: AsyncSession, *, sku: str, po_id: str, quantity: int, expected_at: datetime
) -> None:
    """A later word on a purchase order replaces the earlier one; 0 withdraws it."""
    if quantity == 0:
        await session.execute(
            delete(ScheduledRestockRow).where(
                col(ScheduledRestockRow.sku) == sku, col(ScheduledRestockRow.po_id) == po_id
            )
        )
        return
    values = {"quantity": quantity, "expected_at": expected_at}
    await session.execute(
        insert(ScheduledRestockRow)
        .values(sku=sku, po_id=po_id, **values)
        .on_conflict_do_update(index_elements=["sku", "po_id"], set_=values)
    )


async def fulfil_restock(session: AsyncSession, *, sku: str, po_id: str, quantity: int) -> None:
    """A receipt naming its purchase order: that much of it is no longer expected."""
    restock = await session.get(ScheduledRestockRow, (sku, po_id), populate_existing=True)
    if restock is None:
        return
    if restock.quantity <= quantity:
        await session.delete(restock)
    else:
        restock.quantity -= quantity


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


async def skus_with_overdue_lines(
    session: AsyncSession, *, now: datetime, default_max_wait: timedelta | None, limit: int
) -> list[str]:
    """SKUs where a line has waited longer than the SKU's (or the default) maximum wait.

    The wait is compared in seconds, never added to a timestamp: a maximum stored before
    durations were bounded cannot overflow the query for every SKU."""
    default = default_max_wait.total_seconds() if default_max_wait else None
    max_wait = func.coalesce(col(SkuBookRow.max_wait_seconds), default)
    waited = func.extract("epoch", literal(now) - col(AllocationLineRow.requested_at))
    overdue = (
        select(col(AllocationLineRow.sku))
        .join(SkuBookRow, col(SkuBookRow.sku) == col(AllocationLineRow.sku))
        # The same clock as the domain's expiry check, so a picked SKU has work to do.
        # (least() skips a NULL: a SKU that waits forever must not be picked.)
        .where(
            col(AllocationLineRow.waiting) > 0,
            max_wait.is_not(None),
            waited > func.least(max_wait, _LONGEST),
        )
        .distinct()
        .limit(limit)
    )
    return list((await session.scalars(overdue)).all())

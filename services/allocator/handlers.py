"""Allocator use cases: one command, one SKU lock, one transaction."""

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlmodel.ext.asyncio.session import AsyncSession

from services.allocator import repository
from services.allocator.domain.eta import expected_dates
from services.allocator.domain.model import Line
from shared.contracts.headers import event_id
from shared.contracts.internal import (
    AllocateLine,
    AllocationCommand,
    CancelLine,
    LineAllocationChanged,
    ReceiveStock,
    ScheduleRestock,
    SetSkuPolicy,
)
from shared.contracts.outputs import eta_change
from shared.contracts.topics import LINE_ALLOCATION_CHANGED
from shared.db.unit_of_work import UnitOfWork

CONSUMER = "allocator"


@dataclass(frozen=True)
class Outcome:
    """What a command changed, for the metrics recorded once it has committed."""

    statuses: list[str] = field(default_factory=list)
    units_filled: int = 0


async def handle_command(
    command: AllocationCommand, *, uow: UnitOfWork, message_id: str, default_backorders: str
) -> Outcome:
    if not await uow.first_time(consumer=CONSUMER, message_id=message_id):
        return Outcome()
    session = uow.session
    locked = await repository.lock_book(
        session, sku=command.sku, default_backorders=default_backorders
    )
    book = locked.book
    changed: list[Line] = []
    held_before = {id(line): line.allocated for line in book.queue}
    match command:
        case AllocateLine():
            known = await repository.find_line(
                session, locked, order_id=command.order_id, line_id=command.line_id
            )
            if known is None:
                line = Line(
                    order_id=command.order_id, line_id=command.line_id, quantity=command.quantity
                )
                repository.add_line(session, locked, line=line)
                early = await repository.take_early_cancellation(
                    session, order_id=command.order_id, line_id=command.line_id
                )
                changed = (
                    book.request(line)
                    if early is None
                    else book.refuse_cancelled(line, early.reason)
                )
        case CancelLine():
            line_to_cancel = await repository.find_line(
                session, locked, order_id=command.order_id, line_id=command.line_id
            )
            if line_to_cancel is None:
                # Its allocate is yet to come: remembered, so that it ends cancelled.
                await repository.remember_early_cancellation(session, command)
            else:
                changed = book.cancel(line_to_cancel, command.reason)
        case ReceiveStock():
            locked.row.received_total += command.quantity
            if command.po_id:
                await repository.fulfil_restock(
                    session, sku=book.sku, po_id=command.po_id, quantity=command.quantity
                )
            changed = book.receive(command.quantity)
        case ScheduleRestock():
            await repository.schedule_restock(
                session,
                sku=book.sku,
                po_id=command.po_id,
                quantity=command.quantity,
                expected_at=command.expected_at,
            )
        case SetSkuPolicy():
            repository.set_policy(
                locked,
                backorders=command.backorders,
                max_backorder_quantity=command.max_backorder_quantity,
                max_wait_seconds=command.max_wait_seconds,
                alternatives=command.alternatives,
                default_backorders=default_backorders,
            )
    return await _record(uow, locked, changed, held_before=held_before, cause=message_id)


async def skus_to_expire(*, uow: UnitOfWork, default_max_wait: timedelta | None) -> list[str]:
    return await repository.skus_with_overdue_lines(
        uow.session, now=datetime.now(UTC), default_max_wait=default_max_wait, limit=100
    )


async def expire_overdue_lines(
    *, uow: UnitOfWork, sku: str, default_backorders: str, default_max_wait: timedelta | None
) -> Outcome:
    """Cancels the SKU's lines that waited too long; their units go to the next in line."""
    locked = await repository.lock_book(uow.session, sku=sku, default_backorders=default_backorders)
    held_before = {id(line): line.allocated for line in locked.book.queue}
    changed = locked.book.expire(datetime.now(UTC), default_max_wait)
    return await _record(uow, locked, changed, held_before=held_before, cause="max-wait")


async def _record(
    uow: UnitOfWork,
    locked: repository.LockedBook,
    changed: list[Line],
    *,
    held_before: dict[int, int],
    cause: str,
) -> Outcome:
    """Writes the decision back and tells the order service about every line it changed."""
    session, book = uow.session, locked.book
    filled = sum(
        max(0, line.allocated - held_before.get(id(line), 0))
        for line in changed
        if not line.cancelled
    )
    etas = await _expected_dates(session, locked, changed)
    repository.save(locked, changed=changed)
    now = datetime.now(UTC)
    waiting = [line for line in changed if line.short]
    alternatives = (
        await repository.in_stock(session, skus=book.policy.alternatives) if waiting else []
    )
    for line in changed:
        eta, moved = etas.get(id(line), (None, None))
        revision = locked.row_of(line).revision
        uow.publish(
            topic=LINE_ALLOCATION_CHANGED.name,
            key=line.order_id,
            event=LineAllocationChanged(
                order_id=line.order_id,
                line_id=line.line_id,
                sku=book.sku,
                quantity=line.quantity,
                allocated=line.allocated,
                backordered=line.short,
                rejected=line.rejected,
                status=line.status,
                queue_position=book.position(line),
                eta=eta,
                eta_change=moved,
                reason=line.reason,
                alternatives=alternatives if line.short else [],
                revision=revision,
                occurred_at=now,
            ),
            event_type="LineAllocationChanged",
            event_id=event_id(CONSUMER, cause, line.order_id, line.line_id, str(revision)),
            correlation_id=line.order_id,
        )
    return Outcome(statuses=[line.status for line in changed], units_filled=filled)


async def _expected_dates(
    session: AsyncSession, locked: repository.LockedBook, changed: list[Line]
) -> dict[int, tuple[datetime | None, str | None]]:
    """Recomputes the waiting lines' dates; a line whose date moved joins `changed`."""
    book = locked.book
    restocks = await repository.load_restocks(session, sku=book.sku)
    dates = expected_dates([line.short for line in book.queue], restocks)
    in_changed = {id(line) for line in changed}
    etas: dict[int, tuple[datetime | None, str | None]] = {}
    for line, date in zip(book.queue, dates, strict=True):
        row = locked.row_of(line)
        moved = eta_change(row.eta, date)
        row.eta = date
        etas[id(line)] = (date, moved)
        if moved and id(line) not in in_changed:
            changed.append(line)
            in_changed.add(id(line))
    for line in changed:
        if id(line) not in etas:  # left the queue: filled, rejected or cancelled
            locked.row_of(line).eta = None
    return etas

"""Reads and writes orders; every use starts by taking the order's transaction lock."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, and_, delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from services.order.domain.model import Order, OrderLine
from services.order.tables import CustomerOrderRow, OrderLineRow, PendingCancellationRow
from shared.contracts.inputs import OrderPlaced
from shared.db.locks import lock_key, lock_keys


async def lock_order_id(session: AsyncSession, order_id: str) -> None:
    """Serialises everything about one order (placing, cancelling, allocation news) across
    instances, even before the order row exists, so an early cancel is never missed."""
    if order_id not in _locked(session):
        await lock_key(session, "order:" + order_id)
        _locked(session).add(order_id)


async def lock_order_ids(session: AsyncSession, order_ids: Iterable[str]) -> None:
    """`lock_order_id` for every order of a batch at once, in one order across instances."""
    wanted = set(order_ids) - _locked(session)
    await lock_keys(session, ("order:" + order_id for order_id in wanted))
    _locked(session).update(wanted)


def _locked(session: AsyncSession) -> set[str]:
    locked: set[str] = session.info.setdefault("locked_orders", set())
    return locked


def _loaded(session: AsyncSession) -> "dict[str, StoredOrder]":
    """The orders this transaction read or added: a batch that touches one order twice works
    on the same objects, with no flush and no second read in between."""
    loaded: dict[str, StoredOrder] = session.info.setdefault("loaded_orders", {})
    return loaded


@dataclass
class StoredOrder:
    order: Order
    row: CustomerOrderRow
    line_rows: dict[str, OrderLineRow]

    def same_as(self, placed: OrderPlaced) -> bool:
        """Whether `placed` is this order again; times compare as instants, whatever the offset
        they were written with."""
        row = self.row
        return (
            row.customer_id,
            row.customer_email,
            row.customer_name,
            row.placed_at,
            [(line.line_id, line.sku, line.quantity) for line in self.order.lines],
        ) == (
            placed.customer.id,
            str(placed.customer.email),
            placed.customer.name,
            placed.placed_at,
            [(line.line_id, line.sku, line.quantity) for line in placed.lines],
        )


async def load(session: AsyncSession, order_id: str) -> StoredOrder | None:
    if order_id in _loaded(session):
        return _loaded(session)[order_id]
    row = await session.get(CustomerOrderRow, order_id, populate_existing=True)
    if row is None:
        return None
    line_rows = (
        await session.scalars(
            select(OrderLineRow)
            .where(OrderLineRow.order_id == order_id)  # type: ignore[arg-type]
            .order_by(OrderLineRow.position)  # type: ignore[arg-type]
            .execution_options(populate_existing=True)
        )
    ).all()
    order = Order(
        order_id=order_id,
        version=row.version,
        published=row.published,
        lines=[
            OrderLine(
                line_id=r.line_id,
                sku=r.sku,
                quantity=r.quantity,
                allocated=r.allocated,
                backordered=r.backordered,
                rejected=r.rejected,
                status=r.status,
                queue_position=r.queue_position,
                reason=r.reason,
                revision=r.revision,
                eta=r.eta,
                eta_change=r.eta_change,
                alternatives=list(r.alternatives or []),
            )
            for r in line_rows
        ],
    )
    stored = StoredOrder(order=order, row=row, line_rows={r.line_id: r for r in line_rows})
    _loaded(session)[order_id] = stored
    return stored


def add(session: AsyncSession, placed: OrderPlaced) -> StoredOrder:
    now = datetime.now(UTC)
    row = CustomerOrderRow(
        order_id=placed.order_id,
        customer_id=placed.customer.id,
        customer_email=str(placed.customer.email),
        customer_name=placed.customer.name,
        placed_at=placed.placed_at,
        updated_at=now,
    )
    line_rows = {
        line.line_id: OrderLineRow(
            order_id=placed.order_id,
            line_id=line.line_id,
            position=position,
            sku=line.sku,
            quantity=line.quantity,
        )
        for position, line in enumerate(placed.lines)
    }
    session.add(row)
    session.add_all(line_rows.values())
    order = Order(
        order_id=placed.order_id,
        lines=[
            OrderLine(line_id=line.line_id, sku=line.sku, quantity=line.quantity)
            for line in placed.lines
        ],
    )
    stored = StoredOrder(order=order, row=row, line_rows=line_rows)
    _loaded(session)[placed.order_id] = stored
    return stored


def save(stored: StoredOrder) -> None:
    order, row = stored.order, stored.row
    row.version = order.version
    row.published = order.published
    row.status = order.status if order.decided else None
    row.updated_at = datetime.now(UTC)
    for line in order.lines:
        line_row = stored.line_rows[line.line_id]
        line_row.allocated = line.allocated
        line_row.backordered = line.backordered
        line_row.rejected = line.rejected
        line_row.status = line.status
        line_row.queue_position = line.queue_position
        line_row.reason = line.reason
        line_row.revision = line.revision
        line_row.eta = line.eta
        line_row.eta_change = line.eta_change
        line_row.alternatives = line.alternatives


async def remember_cancellation(session: AsyncSession, pending: PendingCancellationRow) -> None:
    values = pending.model_dump(exclude={"id"})
    await session.execute(
        insert(PendingCancellationRow)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["fingerprint"])
    )


async def take_cancellations(
    session: AsyncSession, order_id: str
) -> Sequence[PendingCancellationRow]:
    rows = (
        await session.scalars(
            select(PendingCancellationRow)
            .where(PendingCancellationRow.order_id == order_id)  # type: ignore[arg-type]
            .order_by(PendingCancellationRow.id)  # type: ignore[arg-type]
            # Waits for a sweeper that is dead-lettering one of them, then no longer sees it.
            .with_for_update()
        )
    ).all()
    await _forget(session, rows)
    return rows


def _overdue(*, requested_before: datetime, received_before: datetime) -> ColumnElement[bool]:
    """Requested (by the cancel's own timestamp) and received here long enough ago. Rows
    stored before the cancel's timestamp was kept fall back to when it was received."""
    requested = func.coalesce(
        col(PendingCancellationRow.requested_at), col(PendingCancellationRow.received_at)
    )
    return and_(
        requested < requested_before, col(PendingCancellationRow.received_at) < received_before
    )


async def any_cancellation_overdue(session: AsyncSession, *, before: datetime) -> bool:
    found = await session.scalar(
        select(col(PendingCancellationRow.id))
        .where(_overdue(requested_before=before, received_before=before))
        .limit(1)
    )
    return found is not None


async def take_overdue_cancellations(
    session: AsyncSession, *, requested_before: datetime, received_before: datetime, limit: int
) -> Sequence[PendingCancellationRow]:
    """Locked rows belong to another sweeper."""
    rows = (
        await session.scalars(
            select(PendingCancellationRow)
            .where(_overdue(requested_before=requested_before, received_before=received_before))
            .order_by(col(PendingCancellationRow.id))
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    ).all()
    await _forget(session, rows)
    return rows


async def _forget(session: AsyncSession, rows: Sequence[PendingCancellationRow]) -> None:
    """Deletes pending cancels taken under lock, in the caller's transaction."""
    if rows:
        await session.execute(
            delete(PendingCancellationRow).where(
                col(PendingCancellationRow.id).in_([r.id for r in rows])
            )
        )

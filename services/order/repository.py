"""Reads and writes orders for one unit of work. A batch locks and reads all its orders at once
and writes them back at the end, one statement for each kind of change; a use case in between
works on plain domain objects. All of the order service's SQL on its own tables is here."""

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import ColumnElement, Row, and_, bindparam, delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from services.order.domain.customers import PURCHASED
from services.order.domain.model import Order, OrderLine, Picture
from services.order.tables import CustomerOrderRow, OrderLineRow, PendingCancellationRow
from shared.contracts.inputs import Customer
from shared.db.locks import lock_keys

_orders = CustomerOrderRow.__table__  # type: ignore[attr-defined]
_lines = OrderLineRow.__table__  # type: ignore[attr-defined]
# The domain's line fields are the table's column names.
_LINE_FIELDS = tuple(OrderLine.__dataclass_fields__)
_LINE_STATE = tuple(name for name in _LINE_FIELDS if name not in ("line_id", "sku", "quantity"))
_ORDER_STATE = ("version", "status", "published", "updated_at")

_SELECT_ORDERS = select(
    _orders.c.order_id,
    _orders.c.customer_id,
    _orders.c.customer_email,
    _orders.c.customer_name,
    _orders.c.customer_returning,
    _orders.c.placed_at,
    _orders.c.priority,
    _orders.c.version,
    _orders.c.published,
)
_SELECT_LINES = select(_lines.c.order_id, *(_lines.c[name] for name in _LINE_FIELDS)).order_by(
    _lines.c.order_id, _lines.c.position
)
_UPDATE_ORDER = (
    _orders.update()
    .where(_orders.c.order_id == bindparam("key_order_id"))
    .values({name: bindparam(name) for name in _ORDER_STATE})
)
_UPDATE_LINE = (
    _lines.update()
    .where(
        _lines.c.order_id == bindparam("key_order_id"),
        _lines.c.line_id == bindparam("key_line_id"),
    )
    .values({name: bindparam(name) for name in _LINE_STATE})
)


class OrdersRepository(Protocol):
    """The orders one unit of work locked, read, placed or changed, and the cancels that came
    before their order."""

    async def open(self, order_ids: Iterable[str], *, with_early_cancels: bool = False) -> None:
        """Locks and reads every order of a batch (and takes the cancels that came before
        them), so the batch's use cases find them in memory. Each order is locked before its
        row exists, so a cancel and its order never miss each other."""
        ...

    async def get(self, order_id: str) -> Order | None: ...

    async def opened(self, order_ids: Iterable[str]) -> list[Order]:
        """The named orders this unit of work read that exist."""
        ...

    async def read_purchases(self, customer_ids: Iterable[str]) -> None:
        """Which of a batch's customers bought here before, asked once. The orders this unit
        of work read are left out of it and judged as they stand in memory when asked
        (`bought_before`): news earlier in the batch may have changed them, and the answer for
        one order must not depend on what else shares its batch. Either way an order counts
        with the status its customer was last told."""
        ...

    async def bought_before(self, customer_id: str, *, besides: str | None = None) -> bool:
        """Whether the customer has an order here that is a purchase, other than `besides`
        (an order does not make its own customer returning). Orders placed in this unit of
        work are undecided, so they never count for each other."""
        ...

    def place(self, order: Order) -> None:
        """Inserted whole when the unit of work commits."""
        ...

    def changed(self, order: Order) -> None:
        """Its state is written when the unit of work commits; a change not declared here
        is lost."""
        ...

    async def early_cancels(self, order_id: str) -> list[PendingCancellationRow]:
        """The cancels that arrived before this order, oldest first, taken: only once."""
        ...

    async def remember_cancellation(self, pending: PendingCancellationRow) -> None:
        """Keeps a cancel until its order arrives; a redelivery (same fingerprint) is kept
        once."""
        ...

    async def any_cancellation_overdue(self, *, before: datetime) -> bool: ...

    async def take_overdue_cancellations(
        self, *, requested_before: datetime, received_before: datetime, limit: int
    ) -> Sequence[PendingCancellationRow]:
        """Takes (oldest first, at most `limit`) the cancels requested and received before
        these times; one another unit of work holds is left to it."""
        ...


class OrdersInHand(ABC):
    """What one unit of work holds of the orders: those it read (None: not there), placed or
    declared changed, and the early cancels it took. Where they come from and go is the
    subclass's: the database, or memory in the tests' fake."""

    def __init__(self) -> None:
        self._read: dict[str, Order | None] = {}
        self._placed: dict[str, Order] = {}
        self._changed: dict[str, Order] = {}
        self._early_cancels: dict[str, list[PendingCancellationRow]] = {}

    @abstractmethod
    async def open(self, order_ids: Iterable[str], *, with_early_cancels: bool = False) -> None:
        """Fills `_read` (and `_early_cancels` when asked) for the orders not read yet."""

    async def get(self, order_id: str) -> Order | None:
        await self.open([order_id])
        return self._read[order_id]

    async def opened(self, order_ids: Iterable[str]) -> list[Order]:
        order_ids = set(order_ids)
        await self.open(order_ids)
        found = (self._read.get(order_id) for order_id in sorted(order_ids))
        return [order for order in found if order is not None]

    def place(self, order: Order) -> None:
        self._read[order.order_id] = order
        self._placed[order.order_id] = order

    def changed(self, order: Order) -> None:
        # A placed order is written whole.
        if order.order_id not in self._placed:
            self._changed[order.order_id] = order

    async def early_cancels(self, order_id: str) -> list[PendingCancellationRow]:
        await self.open([order_id], with_early_cancels=True)
        return self._early_cancels.pop(order_id, [])

    def _unwritten(self) -> tuple[list[Order], list[Order]]:
        """The orders placed, and those changed, since they were last handed over."""
        placed, changed = list(self._placed.values()), list(self._changed.values())
        self._placed, self._changed = {}, {}
        return placed, changed


class SqlOrdersRepository(OrdersInHand):
    def __init__(self, session: AsyncSession) -> None:
        super().__init__()
        self._session = session
        self._locked: set[str] = set()
        # Whether each customer asked about has an order here that was a purchase, among
        # those this unit of work had not read when it asked; the orders it had read are
        # judged in memory.
        self._bought: dict[str, bool] = {}
        self._judged_in_memory: dict[str, frozenset[str]] = {}
        # Each line as the table holds it: a line added since (a substitute) is inserted when
        # its order is written, and of the others only those whose state changed are updated
        # (news of one line used to rewrite every line of its order).
        self._stored: dict[tuple[str, str], tuple[Any, ...]] = {}

    async def open(self, order_ids: Iterable[str], *, with_early_cancels: bool = False) -> None:
        # A handful of statements, whatever the batch's size.
        order_ids = set(order_ids)
        await self._lock(order_ids)
        await self._load(order_ids)
        if with_early_cancels:
            await self._take_early_cancels(order_ids)

    async def read_purchases(self, customer_ids: Iterable[str]) -> None:
        # One statement for the batch's customers.
        wanted = sorted(set(customer_ids) - self._bought.keys())
        if not wanted:
            return
        in_memory = frozenset(self._read)
        bought = await self._session.scalars(
            select(_orders.c.customer_id)
            .where(
                _orders.c.customer_id.in_(wanted),
                _orders.c.status.in_(PURCHASED),
                _orders.c.order_id.not_in(list(in_memory)),
            )
            .distinct()
        )
        self._bought.update(dict.fromkeys(wanted, False))
        self._bought.update(dict.fromkeys(bought.all(), True))
        self._judged_in_memory.update(dict.fromkeys(wanted, in_memory))

    async def bought_before(self, customer_id: str, *, besides: str | None = None) -> bool:
        await self.read_purchases([customer_id])
        if self._bought[customer_id]:
            return True
        return any(
            order is not None
            and order.order_id in self._judged_in_memory[customer_id]
            and order.order_id != besides
            and order.customer.id == customer_id
            and _told_status(order) in PURCHASED
            for order in self._read.values()
        )

    async def remember_cancellation(self, pending: PendingCancellationRow) -> None:
        values = pending.model_dump(exclude={"id"})
        await self._session.execute(
            insert(PendingCancellationRow)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["fingerprint"])
        )

    async def any_cancellation_overdue(self, *, before: datetime) -> bool:
        found = await self._session.scalar(
            select(col(PendingCancellationRow.id))
            .where(_overdue(requested_before=before, received_before=before))
            .limit(1)
        )
        return found is not None

    async def take_overdue_cancellations(
        self, *, requested_before: datetime, received_before: datetime, limit: int
    ) -> Sequence[PendingCancellationRow]:
        # Locked rows belong to another sweeper, or to the order taking them on arrival.
        rows = (
            await self._session.scalars(
                select(PendingCancellationRow)
                .where(_overdue(requested_before=requested_before, received_before=received_before))
                .order_by(col(PendingCancellationRow.id))
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        ).all()
        await self._forget(rows)
        return rows

    async def write(self) -> None:
        """Placed orders are inserted whole; changed ones have their state updated. Called
        by the unit of work's commit."""
        now = datetime.now(UTC)
        placed, changed = self._unwritten()
        if placed:
            await self._session.execute(
                insert(_orders), [{**_identity(o), **_state(o, now)} for o in placed]
            )
            await self._session.execute(
                insert(_lines),
                [
                    {"order_id": o.order_id, "position": position, **vars(line)}
                    for o in placed
                    for position, line in enumerate(o.lines)
                ],
            )
        for order in placed:
            for line in order.lines:
                self._stored[order.order_id, line.line_id] = _line_state(line)
        added = [
            {"order_id": o.order_id, "position": position, **vars(line)}
            for o in changed
            for position, line in enumerate(o.lines)
            if (o.order_id, line.line_id) not in self._stored
        ]
        if added:
            await self._session.execute(insert(_lines), added)
        updated: list[tuple[str, OrderLine, tuple[Any, ...]]] = []
        for o in changed:
            for line in o.lines:
                state = _line_state(line)
                # A line added above is in no snapshot: inserted whole, not updated.
                if self._stored.get((o.order_id, line.line_id), state) != state:
                    updated.append((o.order_id, line, state))
                self._stored[o.order_id, line.line_id] = state
        if changed:
            await self._session.execute(
                _UPDATE_ORDER, [{"key_order_id": o.order_id, **_state(o, now)} for o in changed]
            )
        if updated:
            await self._session.execute(
                _UPDATE_LINE,
                [
                    {
                        "key_order_id": order_id,
                        "key_line_id": line.line_id,
                        **dict(zip(_LINE_STATE, state, strict=True)),
                    }
                    for order_id, line, state in updated
                ],
            )

    async def _lock(self, order_ids: set[str]) -> None:
        """Serialises everything about one order (placing, cancelling, allocation news) across
        instances, even before its row exists, so an early cancel is never missed."""
        wanted = order_ids - self._locked
        if wanted:
            await lock_keys(self._session, ("order:" + order_id for order_id in wanted))
            self._locked |= wanted

    async def _load(self, order_ids: set[str]) -> None:
        wanted = sorted(order_ids - self._read.keys())
        if not wanted:
            return
        order_rows = (
            await self._session.execute(_SELECT_ORDERS.where(_orders.c.order_id.in_(wanted)))
        ).all()
        lines: dict[str, list[OrderLine]] = {row.order_id: [] for row in order_rows}
        if lines:
            for row in await self._session.execute(
                _SELECT_LINES.where(_lines.c.order_id.in_(list(lines)))
            ):
                # The columns after order_id are the line's fields in their declared order;
                # by position, since `row._mapping` builds a new mapping on every access.
                lines[row.order_id].append(OrderLine(*row[1:]))
        self._read.update(dict.fromkeys(wanted))
        self._read.update({row.order_id: _order(row, lines[row.order_id]) for row in order_rows})
        self._stored.update(
            {
                (order_id, line.line_id): _line_state(line)
                for order_id, found in lines.items()
                for line in found
            }
        )

    async def _take_early_cancels(self, order_ids: set[str]) -> None:
        wanted = sorted(order_ids - self._early_cancels.keys())
        if not wanted:
            return
        rows = (
            await self._session.scalars(
                select(PendingCancellationRow)
                .where(col(PendingCancellationRow.order_id).in_(wanted))
                .order_by(col(PendingCancellationRow.id))
                # Waits for a sweeper that is dead-lettering one of them, then no longer sees it.
                .with_for_update()
            )
        ).all()
        await self._forget(rows)
        self._early_cancels.update({order_id: [] for order_id in wanted})
        for row in rows:
            self._early_cancels[row.order_id].append(row)

    async def _forget(self, rows: Sequence[PendingCancellationRow]) -> None:
        """Deletes pending cancels taken under lock, in this unit of work's transaction."""
        if rows:
            await self._session.execute(
                delete(PendingCancellationRow).where(
                    col(PendingCancellationRow.id).in_([r.id for r in rows])
                )
            )


def _order(row: Row[Any], lines: list[OrderLine]) -> Order:
    return Order(
        order_id=row.order_id,
        # Validated when the order was placed.
        customer=Customer.model_construct(
            id=row.customer_id,
            email=row.customer_email,
            name=row.customer_name,
            returning=row.customer_returning,
        ),
        placed_at=row.placed_at,
        lines=lines,
        version=row.version,
        published=None if row.published is None else Picture.model_validate(row.published),
        priority=row.priority,
    )


def _identity(order: Order) -> dict[str, Any]:
    return {
        "order_id": order.order_id,
        "customer_id": order.customer.id,
        "customer_email": str(order.customer.email),
        "customer_name": order.customer.name,
        "customer_returning": order.customer.returning,
        "placed_at": order.placed_at,
        "priority": order.priority,
    }


def _told_status(order: Order) -> str | None:
    """The status the shop was last told: an order waiting for the decision on a substitute
    line stays what it was, for the look-up and for its customer's history alike."""
    return None if order.published is None else order.published.status


def _line_state(line: OrderLine) -> tuple[Any, ...]:
    """What the table holds of a line beside its identity; lists copied, since the domain
    changes a line's lists in place."""
    return tuple(
        list(value) if isinstance(value, list) else value
        for value in (getattr(line, name) for name in _LINE_STATE)
    )


def _state(order: Order, now: datetime) -> dict[str, Any]:
    published = order.published
    return {
        "version": order.version,
        "status": _told_status(order),
        "published": None if published is None else published.model_dump(mode="json"),
        "updated_at": now,
    }


def _overdue(*, requested_before: datetime, received_before: datetime) -> ColumnElement[bool]:
    """Requested (by the cancel's own timestamp) and received here long enough ago. Rows
    stored before the cancel's timestamp was kept fall back to when it was received."""
    requested = func.coalesce(
        col(PendingCancellationRow.requested_at), col(PendingCancellationRow.received_at)
    )
    return and_(
        requested < requested_before, col(PendingCancellationRow.received_at) < received_before
    )

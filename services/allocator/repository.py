"""A SKU's book in PostgreSQL: opened under the SKU's row lock, its waiting lines read on
demand through the queue indexes, and what it changed written back in set-based statements."""

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Integer, bindparam, delete, func, literal, select, text, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from services.allocator.domain.book import LANE_BITS, Key, QueueState, lane_of
from services.allocator.domain.eta import Restock, Schedule
from services.allocator.domain.model import Line, Policy
from services.allocator.domain.ranks import POSITION_RETELL_LIMIT, RankedBook
from services.allocator.tables import (
    AllocationLineRow,
    EarlyCancellationRow,
    QueueGapRow,
    ScheduledRestockRow,
    SkuBookRow,
)
from shared.contracts.common import MAX_DURATION
from shared.contracts.internal import CancelLine

# Rows written before durations were bounded may hold more than a timedelta can: they are
# read as the longest wait a policy may set today.
_LONGEST = MAX_DURATION.total_seconds()

_LINE_COLUMNS = (
    "order_id, line_id, seq, through, quantity, allocated, rejected, cancelled, expired,"
    " reason, requested_at, eta, revision, priority, priority_rank"
)
_FIND = text(f"select {_LINE_COLUMNS} from allocation_line where order_id = :o and line_id = :l")
_FIND_MANY = text(
    f"select {_LINE_COLUMNS} from allocation_line where (order_id, line_id) in"
    " (select * from unnest(cast(:o as text[]), cast(:l as text[])))"
)
_WAITING_FROM = text(
    f"select {_LINE_COLUMNS} from allocation_line"
    " where sku = :sku and waiting > 0 and seq >= :seq order by seq limit :limit"
)
_WAITING_DOWN_FROM = text(
    f"select {_LINE_COLUMNS} from allocation_line"
    " where sku = :sku and waiting > 0 and seq <= :seq order by seq desc limit :limit"
)
_CUSTOMERS_WAITING = text(
    "select sku, customer_id, order_id, line_id, waiting from allocation_line"
    " where waiting > 0 and customer_id is not null and (sku, customer_id) in"
    " (select * from unnest(cast(:s as text[]), cast(:c as text[])))"
)
_FIRST_BEYOND = text(
    f"select {_LINE_COLUMNS} from allocation_line"
    " where sku = :sku and waiting > 0 and through > :through order by through limit 1"
)


def _line(row: Any) -> Line:
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
        seq=row.seq or None,
        through=row.through,
        eta=row.eta,
        revision=row.revision,
        priority=row.priority,
        rank=row.priority_rank,
    )


class StoredLines:
    """The `WaitingLines` port over the allocation_line table and its two queue indexes."""

    def __init__(self, session: AsyncSession, sku: str) -> None:
        self._session = session
        self._sku = sku
        # Lines read ahead for a batch's commands (None: not stored), as they were read.
        self.read_ahead: dict[Key, Line | None] = {}
        # The waiting lines of a batch's customers, where the SKU caps each customer.
        self.customers_read_ahead: dict[str, list[tuple[Key, int]]] = {}

    async def find(self, key: Key) -> Line | None:
        if key in self.read_ahead:
            line = self.read_ahead.pop(key)
            return None if line is None else replace(line)
        row = (await self._session.execute(_FIND, {"o": key[0], "l": key[1]})).first()
        return None if row is None else _line(row)

    async def waiting_from(self, seq: int, limit: int) -> list[Line]:
        return await self._lines(_WAITING_FROM, seq=seq, limit=limit)

    async def waiting_down_from(self, seq: int, limit: int) -> list[Line]:
        return await self._lines(_WAITING_DOWN_FROM, seq=seq, limit=limit)

    async def first_waiting_beyond(self, through: int) -> Line | None:
        found = await self._lines(_FIRST_BEYOND, through=through)
        return found[0] if found else None

    async def waiting_of(self, customer_id: str) -> list[tuple[Key, int]]:
        if customer_id not in self.customers_read_ahead:
            await read_customers_ahead(self._session, {self._sku: {customer_id}}, {self._sku: self})
        return self.customers_read_ahead[customer_id]

    async def _lines(self, query: Any, **params: int) -> list[Line]:
        result = await self._session.execute(query, {"sku": self._sku, **params})
        return [_line(row) for row in result]


@dataclass
class OpenBook:
    """A SKU's book, locked until the transaction ends: two consumers never decide at once."""

    book: RankedBook
    lines: StoredLines
    row: dict[str, Any]
    gaps_read: dict[int, int]
    # Every line told since the book was opened, as it stands now: what `save` writes.
    told: dict[Key, Line] = field(default_factory=dict)


async def read_ahead(
    session: AsyncSession, wanted: dict[str, list[Key]], books: dict[str, OpenBook]
) -> None:
    """The lines a batch's commands name, in one query, so no command looks one up alone."""
    keys = [key for sku_keys in wanted.values() for key in sku_keys]
    if not keys:
        return
    found = await session.execute(
        _FIND_MANY, {"o": [key[0] for key in keys], "l": [key[1] for key in keys]}
    )
    stored = {(row.order_id, row.line_id): _line(row) for row in found}
    for sku, sku_keys in wanted.items():
        store = books[sku].lines
        for key in sku_keys:
            store.read_ahead[key] = stored.get(key)


async def read_customers_ahead(
    session: AsyncSession, wanted: dict[str, set[str]], stores: dict[str, StoredLines]
) -> None:
    """The waiting lines of the customers a batch names per SKU, in one query: what the
    per-customer caps of those SKUs count."""
    pairs = [(sku, customer) for sku, customers in wanted.items() for customer in customers]
    if not pairs:
        return
    for sku, customer in pairs:
        stores[sku].customers_read_ahead[customer] = []
    found = await session.execute(
        _CUSTOMERS_WAITING, {"s": [p[0] for p in pairs], "c": [p[1] for p in pairs]}
    )
    for row in found:
        stores[row.sku].customers_read_ahead[row.customer_id].append(
            ((row.order_id, row.line_id), row.waiting)
        )


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


@dataclass(frozen=True)
class EarlyCancel:
    reason: str | None


@dataclass
class EarlyCancels:
    """Cancels that came before their line's allocate. Those of a batch's lines are taken in
    one statement before its first command; one remembered during the batch is taken alone."""

    taken: dict[Key, EarlyCancel] = field(default_factory=dict)
    remembered: set[Key] = field(default_factory=set)

    @classmethod
    async def take_for(cls, session: AsyncSession, keys: list[Key]) -> "EarlyCancels":
        return cls(await _take_early_cancellations(session, keys) if keys else {})

    async def remember(self, session: AsyncSession, command: CancelLine) -> None:
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
        self.remembered.add((command.order_id, command.line_id))

    async def take(self, session: AsyncSession, key: Key) -> EarlyCancel | None:
        if key in self.remembered:
            self.remembered.discard(key)
            self.taken.update(await _take_early_cancellations(session, [key]))
        return self.taken.pop(key, None)


async def _take_early_cancellations(
    session: AsyncSession, keys: list[Key]
) -> dict[Key, EarlyCancel]:
    taken = await session.execute(
        delete(EarlyCancellationRow)
        .where(
            tuple_(col(EarlyCancellationRow.order_id), col(EarlyCancellationRow.line_id)).in_(keys)
        )
        .returning(
            col(EarlyCancellationRow.order_id),
            col(EarlyCancellationRow.line_id),
            col(EarlyCancellationRow.reason),
        )
    )
    return {(order_id, line_id): EarlyCancel(reason) for order_id, line_id, reason in taken}


async def load_restocks(session: AsyncSession, *, sku: str) -> list[Restock]:
    return (await load_restocks_of(session, skus=[sku])).get(sku, [])


async def load_restocks_of(session: AsyncSession, *, skus: list[str]) -> dict[str, list[Restock]]:
    rows = await session.execute(
        select(
            col(ScheduledRestockRow.sku),
            col(ScheduledRestockRow.po_id),
            col(ScheduledRestockRow.quantity),
            col(ScheduledRestockRow.expected_at),
        ).where(col(ScheduledRestockRow.sku).in_(skus))
    )
    restocks: dict[str, list[Restock]] = {}
    for sku, po, quantity, expected_at in rows:
        restocks.setdefault(sku, []).append(Restock(po, quantity, expected_at))
    return restocks


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
    where = (col(ScheduledRestockRow.sku) == sku, col(ScheduledRestockRow.po_id) == po_id)
    await session.execute(
        delete(ScheduledRestockRow).where(*where, col(ScheduledRestockRow.quantity) <= quantity)
    )
    await session.execute(
        ScheduledRestockRow.__table__.update()  # type: ignore[attr-defined]
        .where(*where)
        .values(quantity=col(ScheduledRestockRow.quantity) - quantity)
    )


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
    """SKUs whose head of the queue waited longer than the SKU's (or the default) maximum wait:
    lines join the default rank's lane in time order, so its head waited longest. One index
    probe per SKU, and a look at the lanes of higher ranks (few lines, not in time order since
    aging brings old lines into them) where a SKU has them.

    The wait is compared in seconds, never added to a timestamp: a maximum stored before
    durations were bounded cannot overflow the query for every SKU."""
    default = default_max_wait.total_seconds() if default_max_wait else None
    max_wait = func.coalesce(col(SkuBookRow.max_wait_seconds), default)
    waited = _head_waited(now)
    overdue_above = (
        select(literal(1))
        .where(*_waiting_in_higher_lanes(), _line_waited(now) > func.least(max_wait, _LONGEST))
        .exists()
    )
    overdue = (
        select(col(SkuBookRow.sku))
        # The same clock as the domain's expiry check, so a picked SKU has work to do.
        # (least() skips a NULL: a SKU that waits forever must not be picked.)
        .where(
            max_wait.is_not(None),
            (waited > func.least(max_wait, _LONGEST))
            | (func.jsonb_array_length(col(SkuBookRow.lanes)) > 0) & overdue_above,
        )
        .limit(limit)
    )
    return list((await session.scalars(overdue)).all())


async def skus_with_past_dates(session: AsyncSession, *, now: datetime, limit: int) -> list[str]:
    """SKUs with an overdue restock (its `expected_at` passed, neither received nor withdrawn)
    that a waiting line was told as its date: the retelling `handlers.expire_overdue_lines`
    does. Told dates run in queue order, so the earliest of a lane is its head's: one index
    probe for the default lane's head, and a look at the (few) lines of the higher lanes. The
    overdue restocks are few, and each is looked at only while a line still expects it."""
    head_eta = _default_lane_head(col(AllocationLineRow.eta), of=col(ScheduledRestockRow.sku))
    past_above = (
        select(literal(1))
        .where(
            col(AllocationLineRow.sku) == col(ScheduledRestockRow.sku),
            col(AllocationLineRow.waiting) > 0,
            col(AllocationLineRow.seq) >= 1 << LANE_BITS,
            col(AllocationLineRow.eta) < now,
        )
        .exists()
    )
    past = (
        select(col(ScheduledRestockRow.sku))
        .where(
            col(ScheduledRestockRow.expected_at) < now,
            col(ScheduledRestockRow.quantity) > 0,
            (head_eta < now) | past_above,
        )
        .distinct()
        .limit(limit)
    )
    return list((await session.scalars(past)).all())


def _head_waited(now: datetime) -> Any:
    """Seconds the head of the SKU's default lane has waited: lines join that lane in time
    order, so no line of it waited longer. One index probe."""
    head_requested_at = _default_lane_head(
        col(AllocationLineRow.requested_at), of=col(SkuBookRow.sku)
    )
    return func.extract("epoch", literal(now) - head_requested_at)


def _default_lane_head(column: Any, *, of: Any) -> Any:
    """`column` of the first waiting line of SKU `of`'s default lane: one index probe."""
    return (
        select(column)
        .where(
            col(AllocationLineRow.sku) == of,
            col(AllocationLineRow.waiting) > 0,
            col(AllocationLineRow.seq) < 1 << LANE_BITS,
        )
        .order_by(col(AllocationLineRow.seq))
        .limit(1)
        .scalar_subquery()
    )


def _line_waited(now: datetime) -> Any:
    return func.extract("epoch", literal(now) - col(AllocationLineRow.requested_at))


def _waiting_in_higher_lanes() -> tuple[Any, ...]:
    return (
        col(AllocationLineRow.sku) == col(SkuBookRow.sku),
        col(AllocationLineRow.waiting) > 0,
        col(AllocationLineRow.seq) >= 1 << LANE_BITS,
    )


async def skus_with_lines_to_promote(
    session: AsyncSession,
    *,
    now: datetime,
    default_aging: timedelta | None,
    top_rank: int,
    limit: int,
) -> list[str]:
    """SKUs with a line that waited past its aging bound (the SKU's, or the default, for each
    rank the line rose) below the top rank: the default lane's head, which waited longest
    there, and the lines of the higher lanes, as in `skus_with_overdue_lines`."""
    if top_rank == 0:
        return []
    default = default_aging.total_seconds() if default_aging else None
    configured = func.coalesce(col(SkuBookRow.aging_seconds), default)
    # (least() skips a NULL: `configured` says whether the SKU ages at all.)
    aging = func.least(configured, _LONGEST)
    head_waited = _head_waited(now)
    # bigint >> integer: PostgreSQL has no shift by a bigint.
    lane = col(AllocationLineRow.seq).op(">>")(literal(LANE_BITS, Integer))
    due_above = (
        select(literal(1))
        .where(
            *_waiting_in_higher_lanes(),
            col(AllocationLineRow.seq) < top_rank << LANE_BITS,
            _line_waited(now) > aging * (lane - col(AllocationLineRow.priority_rank) + 1),
        )
        .exists()
    )
    due = (
        select(col(SkuBookRow.sku))
        .where(
            configured.is_not(None),
            (head_waited > aging)
            | (func.jsonb_array_length(col(SkuBookRow.lanes)) > 0) & due_above,
        )
        .limit(limit)
    )
    return list((await session.scalars(due)).all())


@dataclass(frozen=True)
class QueueFigures:
    """A SKU's queue as the gauges show it."""

    sku: str
    units: int
    lines: int
    oldest_wait: float


# Units waiting per SKU come from the book's counters (every lane's units queued less those
# that left at its head, less the gaps left in its middle), so choosing the top SKUs reads no
# line. Then per lane of those SKUs one index probe finds the head: the lines waiting are the
# seqs from the head to the lane's tail less the gaps between, and the oldest wait is the
# longest a lane's head has waited (the default lane's head waited longest in it, as lines join
# that lane in time order). The cost grows with the SKUs and their gaps, never with the lines.
_TOP_QUEUES = text(
    "with book as ("
    "  select b.sku, b.next_seq, b.lanes,"
    "  b.queued_units - b.departed_units"
    "  + coalesce((select sum((l ->> 'queued')::bigint - (l ->> 'departed')::bigint)"
    "    from jsonb_array_elements(b.lanes) l), 0)"
    "  - coalesce((select sum(g.units) from allocation_queue_gap g where g.sku = b.sku), 0)"
    "  as units"
    "  from sku_book b),"
    " top as (select * from book where units > 0 order by units desc, sku limit :limit),"
    " lane as ("
    "  select sku, 0::bigint as origin, next_seq - 1 as tail from top"
    "  union all"
    f"  select top.sku, (l ->> 'lane')::bigint << {LANE_BITS}, (l ->> 'next_seq')::bigint - 1"
    "  from top cross join jsonb_array_elements(top.lanes) l),"
    " head as ("
    "  select lane.sku, lane.tail, h.seq, h.requested_at from lane cross join lateral ("
    "    select a.seq, a.requested_at from allocation_line a"
    "    where a.sku = lane.sku and a.waiting > 0 and a.seq > lane.origin"
    "    and a.seq <= lane.tail order by a.seq limit 1) h)"
    " select top.sku, top.units,"
    "  coalesce(sum(head.tail - head.seq + 1 - (select count(*) from allocation_queue_gap g"
    "    where g.sku = head.sku and g.seq > head.seq and g.seq <= head.tail)), 0) as lines,"
    "  coalesce(extract(epoch from now() - min(head.requested_at)), 0) as oldest_wait"
    " from top left join head on head.sku = top.sku"
    " group by top.sku, top.units order by top.units desc, top.sku"
)


async def top_queues(session: AsyncSession, *, limit: int) -> list[QueueFigures]:
    """The `limit` SKUs with the most units waiting: units, lines and the longest wait."""
    result = await session.execute(_TOP_QUEUES, {"limit": limit})
    return [
        QueueFigures(
            sku=row.sku, units=row.units, lines=row.lines, oldest_wait=float(row.oldest_wait)
        )
        for row in result
    ]

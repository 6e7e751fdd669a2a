"""A book's lines in `allocation_line`, read on demand for its decisions: one by its key, the
waiting ones from a place in a queue through the queue indexes, and, in one query each, the
lines a batch's commands name and the waiting lines of the customers it names."""

from dataclasses import replace
from typing import Any

from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from services.allocator.domain.book import Key
from services.allocator.domain.model import Line

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


def stored_line(row: Any) -> Line:
    """The line as stored: `customer_id` is written once and never read back."""
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
        return None if row is None else stored_line(row)

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
        return [stored_line(row) for row in result]


async def read_ahead(
    session: AsyncSession, wanted: dict[str, list[Key]], stores: dict[str, StoredLines]
) -> None:
    """The lines a batch's commands name, in one query, so no command looks one up alone."""
    keys = [key for sku_keys in wanted.values() for key in sku_keys]
    if not keys:
        return
    found = await session.execute(
        _FIND_MANY, {"o": [key[0] for key in keys], "l": [key[1] for key in keys]}
    )
    stored = {(row.order_id, row.line_id): stored_line(row) for row in found}
    for sku, sku_keys in wanted.items():
        store = stores[sku]
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

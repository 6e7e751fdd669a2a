"""The order service's repository in memory, with the semantics of `SqlOrdersRepository`: a
unit of work sees the orders as committed when it first reads them, and only what it placed,
or declared changed, is written when it commits; an early cancel is taken with its order,
once; a customer's history counts each order with the status its customer was last told."""

import copy
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from services.order.domain.customers import PURCHASED
from services.order.domain.model import Order
from services.order.repository import OrdersInHand
from services.order.tables import PendingCancellationRow
from shared.messaging.dead_letter import DeadLetter
from tests.support.fakes.unit_of_work import FakeUnitOfWork


@dataclass
class OrderTables:
    """What the order service's tables hold, as committed: shared by the units of work of a
    test, one after the other."""

    orders: dict[str, Order] = field(default_factory=dict)
    # By id, which grows with each cancel kept: the order in which they are taken.
    pending: dict[int, PendingCancellationRow] = field(default_factory=dict)
    last_pending_id: int = 0


def _told_purchase(order: Order, customer_id: str) -> bool:
    return (
        order.customer.id == customer_id
        and order.published is not None
        and order.published.status in PURCHASED
    )


def _overdue(
    row: PendingCancellationRow, *, requested_before: datetime, received_before: datetime
) -> bool:
    # Rows kept before the cancel's own timestamp was kept fall back to when it was received.
    requested = row.requested_at or row.received_at
    return requested < requested_before and row.received_at < received_before


class FakeOrdersRepository(OrdersInHand):
    """One unit of work's view: its changes reach `tables` only at `commit`. One unit of work
    at a time in memory, so the order locks have nothing to keep apart."""

    def __init__(self, tables: OrderTables) -> None:
        super().__init__()
        self.tables = tables
        # The orders this unit of work had read when it first asked about each customer:
        # judged in memory, the others as committed.
        self._judged_in_memory: dict[str, frozenset[str]] = {}
        self._pending = dict(tables.pending)
        self._last_pending_id = tables.last_pending_id

    async def open(self, order_ids: Iterable[str], *, with_early_cancels: bool = False) -> None:
        order_ids = set(order_ids)
        for order_id in order_ids - self._read.keys():
            # A copy, as a row is read into a new object: a change not declared is lost.
            self._read[order_id] = copy.deepcopy(self.tables.orders.get(order_id))
        if with_early_cancels:
            for order_id in sorted(order_ids - self._early_cancels.keys()):
                ids = [i for i, row in sorted(self._pending.items()) if row.order_id == order_id]
                self._early_cancels[order_id] = [self._pending.pop(i) for i in ids]

    async def read_purchases(self, customer_ids: Iterable[str]) -> None:
        in_memory = frozenset(self._read)
        for customer_id in set(customer_ids) - self._judged_in_memory.keys():
            self._judged_in_memory[customer_id] = in_memory

    async def bought_before(self, customer_id: str, *, besides: str | None = None) -> bool:
        await self.read_purchases([customer_id])
        in_memory = self._judged_in_memory[customer_id]
        committed = (o for i, o in self.tables.orders.items() if i not in in_memory)
        judged = (self._read[i] for i in in_memory if i != besides)
        return any(
            order is not None and _told_purchase(order, customer_id)
            for order in (*committed, *judged)
        )

    async def remember_cancellation(self, pending: PendingCancellationRow) -> None:
        if any(row.fingerprint == pending.fingerprint for row in self._pending.values()):
            return
        self._last_pending_id += 1
        self._pending[self._last_pending_id] = pending.model_copy(
            update={"id": self._last_pending_id}
        )

    async def any_cancellation_overdue(self, *, before: datetime) -> bool:
        return any(
            _overdue(row, requested_before=before, received_before=before)
            for row in self._pending.values()
        )

    async def take_overdue_cancellations(
        self, *, requested_before: datetime, received_before: datetime, limit: int
    ) -> Sequence[PendingCancellationRow]:
        ids = [
            i
            for i, row in sorted(self._pending.items())
            if _overdue(row, requested_before=requested_before, received_before=received_before)
        ][:limit]
        return [self._pending.pop(i) for i in ids]

    async def commit(self) -> None:
        """What the unit of work placed or declared changed is written as it stands now, and
        the cancels it kept or took are kept or gone."""
        placed, changed = self._unwritten()
        for order in (*placed, *changed):
            self.tables.orders[order.order_id] = copy.deepcopy(order)
        self.tables.pending = dict(self._pending)
        self.tables.last_pending_id = self._last_pending_id


class FakeOrderUnitOfWork(FakeUnitOfWork):
    """Fits `services.order.unit_of_work.OrderWork`. Units of work handed the same `tables`
    see what the ones before them committed."""

    def __init__(self, tables: OrderTables | None = None) -> None:
        super().__init__()
        self.orders = FakeOrdersRepository(tables or OrderTables())
        # The order service publishes records as they are only to dead-letter them.
        self.dead_letters: list[DeadLetter] = []

    async def commit(self) -> None:
        await self.orders.commit()
        await super().commit()

    def publish_raw(
        self, *, topic: str, key: bytes | None, value: bytes, headers: Sequence[tuple[str, bytes]]
    ) -> None:
        self.dead_letters.append(DeadLetter(topic, key, value, list(headers)))

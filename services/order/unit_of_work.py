"""The order service's unit of work: one transaction, with the orders' repository on it."""

from collections.abc import Sequence
from typing import Protocol, Self

from services.order.repository import OrdersRepository, SqlOrdersRepository
from shared.db import progress
from shared.db.ports import Publisher
from shared.db.unit_of_work import UnitOfWork
from shared.messaging.position import SourcePosition


class OrderWork(Publisher, Protocol):
    """What an order use case needs: the orders and the outbox, never a session."""

    # Read-only, so a unit of work holding a narrower repository (SQL or fake) fits.
    @property
    def orders(self) -> OrdersRepository: ...

    def publish_raw(
        self, *, topic: str, key: bytes | None, value: bytes, headers: Sequence[tuple[str, bytes]]
    ) -> None:
        """Queues a record as it is (a dead letter): it leaves only if the unit of work
        commits."""
        ...


class OrderUnitOfWork(UnitOfWork):
    orders: SqlOrdersRepository

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        self.orders = SqlOrdersRepository(self.session)
        return self

    async def commit(self) -> None:
        # The orders a batch placed or changed are written once, whatever its size.
        await self.orders.write()
        await super().commit()

    async def record_progress(self, *, consumer: str, topic: str, position: SourcePosition) -> None:
        await progress.record_progress(
            self.session, consumer=consumer, topic=topic, position=position
        )

    async def handled_timestamps(self, *, consumer: str, topic: str) -> dict[int, int]:
        return await progress.handled_timestamps(self.session, consumer=consumer, topic=topic)

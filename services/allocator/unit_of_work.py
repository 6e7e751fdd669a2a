"""The allocator's unit of work: one transaction, with the allocator's repositories on it."""

from collections.abc import Sequence
from typing import Protocol, Self

from services.allocator.repository.early_cancellations import (
    EarlyCancelsRepository,
    SqlEarlyCancelsRepository,
)
from services.allocator.repository.scheduled_restocks import (
    RestocksRepository,
    SqlRestocksRepository,
)
from services.allocator.repository.sku_books import BooksRepository, SqlBooksRepository
from services.allocator.repository.sweep_probes import SqlSweepProbes, SweepProbes
from shared.db.ports import Publisher
from shared.db.unit_of_work import UnitOfWork


class AllocatorWork(Publisher, Protocol):
    """What an allocator use case needs: the repositories, the dedupe record and the outbox,
    never a session."""

    # Read-only, so a unit of work holding narrower repositories (SQL or fake) fits.
    @property
    def books(self) -> BooksRepository: ...

    @property
    def restocks(self) -> RestocksRepository: ...

    @property
    def early_cancels(self) -> EarlyCancelsRepository: ...

    @property
    def sweeps(self) -> SweepProbes: ...

    async def first_times(self, *, consumer: str, message_ids: Sequence[str]) -> set[str]:
        """Records that `consumer` handles these messages: returns the ids it never handled
        before."""
        ...


class AllocatorUnitOfWork(UnitOfWork):
    books: SqlBooksRepository
    restocks: SqlRestocksRepository
    early_cancels: SqlEarlyCancelsRepository
    sweeps: SqlSweepProbes

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        self.books = SqlBooksRepository(self.session)
        self.restocks = SqlRestocksRepository(self.session)
        self.early_cancels = SqlEarlyCancelsRepository(self.session)
        self.sweeps = SqlSweepProbes(self.session)
        return self

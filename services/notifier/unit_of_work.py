"""The notifier's unit of work: one transaction, with the notifier's repository on it."""

from collections.abc import Sequence
from typing import Protocol, Self

from services.notifier.repository import NotifierRepository, SqlNotifierRepository
from shared.db.ports import Publisher
from shared.db.unit_of_work import UnitOfWork


class NotifierWork(Publisher, Protocol):
    """What a notifier use case needs: the repository and the outbox, never a session."""

    # Read-only, so a unit of work holding a narrower repository (SQL or fake) fits.
    @property
    def notifications(self) -> NotifierRepository: ...

    def publish_raw(
        self, *, topic: str, key: bytes | None, value: bytes, headers: Sequence[tuple[str, bytes]]
    ) -> None:
        """Queues a record as it is: a dead letter carries the stored picture, not a model,
        and headers of its own."""
        ...

    async def commit(self) -> None: ...


class NotifierUnitOfWork(UnitOfWork):
    notifications: SqlNotifierRepository

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        self.notifications = SqlNotifierRepository(self.session)
        return self

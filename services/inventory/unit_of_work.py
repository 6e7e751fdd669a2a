"""The inventory's unit of work: one transaction, with the inventory's repository on it."""

from typing import Protocol, Self

from services.inventory.repository import InventoryRepository, SqlInventoryRepository
from shared.db.ports import Publisher
from shared.db.unit_of_work import UnitOfWork


class InventoryWork(Publisher, Protocol):
    """What an inventory use case needs: the repository and the outbox, never a session."""

    # Read-only, so a unit of work holding a narrower repository (SQL or fake) fits.
    @property
    def inventory(self) -> InventoryRepository: ...


class InventoryUnitOfWork(UnitOfWork):
    inventory: SqlInventoryRepository

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        self.inventory = SqlInventoryRepository(self.session)
        return self

"""`scheduled_restock`: the purchase orders a SKU expects, the dates its waiting lines are
told."""

from datetime import datetime
from typing import Protocol

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from services.allocator.domain.eta import Restock
from services.allocator.tables import ScheduledRestockRow


class RestocksRepository(Protocol):
    async def of(self, sku: str) -> list[Restock]:
        """The SKU's purchase orders still expected, in no particular order."""
        ...

    async def schedule(self, *, sku: str, po_id: str, quantity: int, expected_at: datetime) -> None:
        """A later word on a purchase order replaces the earlier one; 0 withdraws it."""
        ...

    async def fulfil(self, *, sku: str, po_id: str, quantity: int) -> None:
        """A receipt naming its purchase order: that much of it is no longer expected."""
        ...


class SqlRestocksRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def of(self, sku: str) -> list[Restock]:
        return (await load_restocks_of(self._session, skus=[sku])).get(sku, [])

    async def schedule(self, *, sku: str, po_id: str, quantity: int, expected_at: datetime) -> None:
        if quantity == 0:
            await self._session.execute(
                delete(ScheduledRestockRow).where(
                    col(ScheduledRestockRow.sku) == sku, col(ScheduledRestockRow.po_id) == po_id
                )
            )
            return
        values = {"quantity": quantity, "expected_at": expected_at}
        await self._session.execute(
            insert(ScheduledRestockRow)
            .values(sku=sku, po_id=po_id, **values)
            .on_conflict_do_update(index_elements=["sku", "po_id"], set_=values)
        )

    async def fulfil(self, *, sku: str, po_id: str, quantity: int) -> None:
        where = (col(ScheduledRestockRow.sku) == sku, col(ScheduledRestockRow.po_id) == po_id)
        await self._session.execute(
            delete(ScheduledRestockRow).where(*where, col(ScheduledRestockRow.quantity) <= quantity)
        )
        await self._session.execute(
            ScheduledRestockRow.__table__.update()  # type: ignore[attr-defined]
            .where(*where)
            .values(quantity=col(ScheduledRestockRow.quantity) - quantity)
        )


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

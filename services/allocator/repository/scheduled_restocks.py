"""`scheduled_restock`: the purchase orders a SKU expects, the dates its waiting lines are
told."""

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from services.allocator.domain.eta import Restock
from services.allocator.tables import ScheduledRestockRow


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

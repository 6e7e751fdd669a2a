"""The inventory's state as its use cases ask for it: the receipt ledger, the policy in force per
SKU and the latest word on each purchase order. All of the inventory's SQL is here."""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from services.inventory.tables import RestockScheduleRow, SkuPolicyRow, StockReceiptRow
from shared.contracts.inputs import RestockScheduled, StockReceived
from shared.contracts.internal import SetSkuPolicy
from shared.db.locks import lock_key
from shared.db.tables import SourcePositioned
from shared.messaging.position import SourcePosition


@dataclass(frozen=True)
class RecordedReceipt:
    receipt_id: str
    sku: str
    quantity: int


@dataclass(frozen=True)
class ScheduledRestock:
    """The word applied last on a purchase order; quantity 0 once withdrawn."""

    po_id: str
    sku: str
    quantity: int
    expected_at: datetime
    # None on rows written before positions were kept: any word supersedes them.
    position: SourcePosition | None


class InventoryRepository(Protocol):
    async def record_receipt(self, receipt: StockReceived) -> bool:
        """Adds the receipt to the ledger: False when its id was recorded before (as this
        receipt or another), and the ledger is left as it was."""
        ...

    async def receipt(self, receipt_id: str) -> RecordedReceipt | None: ...

    async def lock_policy(self, sku: str) -> SourcePosition | None:
        """Holds the SKU's policy for this unit of work, so two instances overlapping in a
        rebalance do not interleave its policies; returns where the policy applied last sat
        in its topic (None: none applied, or applied before positions were kept)."""
        ...

    async def save_policy(self, policy: SetSkuPolicy, *, position: SourcePosition) -> int:
        """Makes `policy` the SKU's policy in force: returns how many were applied so far."""
        ...

    async def lock_restock(self, po_id: str) -> ScheduledRestock | None:
        """Holds the purchase order for this unit of work (its words may arrive on several
        partitions, one per SKU) and returns the word applied last, if any."""
        ...

    async def save_restock(self, restock: RestockScheduled, *, position: SourcePosition) -> int:
        """Makes `restock` the latest word on its purchase order: returns how many were
        applied so far."""
        ...


class SqlInventoryRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def record_receipt(self, receipt: StockReceived) -> bool:
        inserted = await self._session.execute(
            insert(StockReceiptRow)
            .values(
                receipt_id=receipt.receipt_id,
                sku=receipt.sku,
                quantity=receipt.quantity,
                received_at=receipt.received_at,
                recorded_at=datetime.now(UTC),
            )
            .on_conflict_do_nothing()
            .returning(col(StockReceiptRow.receipt_id))
        )
        return inserted.first() is not None

    async def receipt(self, receipt_id: str) -> RecordedReceipt | None:
        row = await self._session.get(StockReceiptRow, receipt_id)
        return RecordedReceipt(row.receipt_id, row.sku, row.quantity) if row else None

    async def lock_policy(self, sku: str) -> SourcePosition | None:
        await lock_key(self._session, "policy:" + sku)
        # populate_existing: an earlier message of the batch may have upserted the row
        # behind the session's back (a Core statement), so the identity map may be stale.
        applied = await self._session.get(SkuPolicyRow, sku, populate_existing=True)
        return applied.applied_position() if applied else None

    async def save_policy(self, policy: SetSkuPolicy, *, position: SourcePosition) -> int:
        values = {
            "policy": None if policy.policy is None else policy.policy.model_dump(mode="json"),
            "updated_at": datetime.now(UTC),
            **SourcePositioned.columns(position),
        }
        result = await self._session.execute(
            insert(SkuPolicyRow)
            .values(sku=policy.sku, revision=1, **values)
            .on_conflict_do_update(
                index_elements=["sku"], set_={**values, "revision": SkuPolicyRow.revision + 1}
            )
            .returning(col(SkuPolicyRow.revision))
        )
        return int(result.scalar_one())

    async def lock_restock(self, po_id: str) -> ScheduledRestock | None:
        await lock_key(self._session, "po:" + po_id)
        row = await self._session.get(RestockScheduleRow, po_id, populate_existing=True)
        if row is None:
            return None
        return ScheduledRestock(
            po_id=row.po_id,
            sku=row.sku,
            quantity=row.quantity,
            expected_at=row.expected_at,
            position=row.applied_position(),
        )

    async def save_restock(self, restock: RestockScheduled, *, position: SourcePosition) -> int:
        values = {
            "sku": restock.sku,
            "quantity": restock.quantity,
            "expected_at": restock.expected_at,
            "updated_at": datetime.now(UTC),
            **SourcePositioned.columns(position),
        }
        result = await self._session.execute(
            insert(RestockScheduleRow)
            .values(po_id=restock.po_id, revision=1, **values)
            .on_conflict_do_update(
                index_elements=["po_id"],
                set_={**values, "revision": RestockScheduleRow.revision + 1},
            )
            .returning(col(RestockScheduleRow.revision))
        )
        return int(result.scalar_one())

"""The inventory's repository in memory, with the semantics of `SqlInventoryRepository`: a
receipt id is recorded once, a policy or a restock replaces the one before and counts a
revision, a tombstoned policy keeps its row (all fields empty) and its count."""

from collections import Counter
from dataclasses import dataclass

from services.inventory.repository import RecordedReceipt, ScheduledRestock
from shared.contracts.inputs import RestockScheduled, StockReceived
from shared.contracts.internal import SetSkuPolicy
from shared.messaging.position import SourcePosition
from tests.support.fakes.unit_of_work import FakeUnitOfWork


@dataclass(frozen=True)
class AppliedPolicy:
    policy: SetSkuPolicy
    position: SourcePosition | None


class FakeInventoryRepository:
    def __init__(self) -> None:
        self.receipts: dict[str, RecordedReceipt] = {}
        self.policies: dict[str, AppliedPolicy] = {}
        self.restocks: dict[str, ScheduledRestock] = {}
        # Messages applied per policy ("policy:SKU") and per purchase order ("po:PO").
        self.revisions: Counter[str] = Counter()

    async def record_receipt(self, receipt: StockReceived) -> bool:
        if receipt.receipt_id in self.receipts:
            return False
        self.receipts[receipt.receipt_id] = RecordedReceipt(
            receipt.receipt_id, receipt.sku, receipt.quantity
        )
        return True

    async def receipt(self, receipt_id: str) -> RecordedReceipt | None:
        return self.receipts.get(receipt_id)

    # One use case at a time in memory: the locks have nothing to keep apart.
    async def lock_policy(self, sku: str) -> SourcePosition | None:
        applied = self.policies.get(sku)
        return applied.position if applied else None

    async def save_policy(self, policy: SetSkuPolicy, *, position: SourcePosition) -> int:
        self.policies[policy.sku] = AppliedPolicy(policy, position)
        return self._revised("policy:" + policy.sku)

    async def lock_restock(self, po_id: str) -> ScheduledRestock | None:
        return self.restocks.get(po_id)

    async def save_restock(self, restock: RestockScheduled, *, position: SourcePosition) -> int:
        self.restocks[restock.po_id] = ScheduledRestock(
            restock.po_id, restock.sku, restock.quantity, restock.expected_at, position
        )
        return self._revised("po:" + restock.po_id)

    def _revised(self, key: str) -> int:
        self.revisions[key] += 1
        return self.revisions[key]


class FakeInventoryUnitOfWork(FakeUnitOfWork):
    """Fits `services.inventory.unit_of_work.InventoryWork`."""

    def __init__(self, inventory: FakeInventoryRepository | None = None) -> None:
        super().__init__()
        self.inventory = inventory or FakeInventoryRepository()

"""Every table of every service, on one metadata: what Alembic migrates and compares."""

from sqlmodel import SQLModel

from services.allocator.tables import (
    AllocationLineRow,
    EarlyCancellationRow,
    QueueGapRow,
    SkuBookRow,
)
from services.inventory.tables import SkuPolicyRow, StockReceiptRow
from services.notifier.tables import NotificationRow, NotifiedOrderRow
from services.ops.tables import DeadLetterReplayRow
from services.order.tables import CustomerOrderRow, OrderLineRow, PendingCancellationRow
from shared.db.tables import ConsumerProgress, OutboxMessage, OutboxParked, ProcessedMessage

metadata = SQLModel.metadata

__all__ = [
    "AllocationLineRow",
    "ConsumerProgress",
    "CustomerOrderRow",
    "DeadLetterReplayRow",
    "EarlyCancellationRow",
    "NotificationRow",
    "NotifiedOrderRow",
    "OrderLineRow",
    "OutboxMessage",
    "OutboxParked",
    "PendingCancellationRow",
    "ProcessedMessage",
    "QueueGapRow",
    "SkuBookRow",
    "SkuPolicyRow",
    "StockReceiptRow",
    "metadata",
]

"""Inventory use cases: record what arrived and what is allowed, hand it to the SKU's book."""

from datetime import UTC, datetime

from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col

from services.inventory.tables import SkuPolicyRow, StockReceiptRow
from shared.contracts.headers import event_id
from shared.contracts.inputs import SkuPolicy, StockReceived
from shared.contracts.internal import ReceiveStock, SetSkuPolicy
from shared.contracts.topics import ALLOCATION_COMMANDS
from shared.db.unit_of_work import UnitOfWork
from shared.messaging.errors import PoisonMessage

CONSUMER = "inventory"


async def receive_stock(receipt: StockReceived, *, uow: UnitOfWork) -> None:
    session = uow.session
    inserted = await session.execute(
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
    if inserted.first() is None:
        known = await session.get(StockReceiptRow, receipt.receipt_id)
        if known is not None and (known.sku, known.quantity) != (receipt.sku, receipt.quantity):
            raise PoisonMessage(
                f"conflict: receipt {receipt.receipt_id} was already recorded as "
                f"{known.quantity} x {known.sku}"
            )
        return
    uow.publish(
        topic=ALLOCATION_COMMANDS.name,
        key=receipt.sku,
        event=ReceiveStock(
            receipt_id=receipt.receipt_id, sku=receipt.sku, quantity=receipt.quantity
        ),
        event_type="ReceiveStock",
        event_id=event_id(CONSUMER, "receipt", receipt.receipt_id),
        correlation_id=receipt.receipt_id,
    )


async def set_policy(policy: SkuPolicy, *, uow: UnitOfWork, cause: str) -> None:
    values = {
        "backorders": policy.backorders,
        "max_backorder_quantity": policy.max_backorder_quantity,
        "updated_at": datetime.now(UTC),
    }
    await uow.session.execute(
        insert(SkuPolicyRow)
        .values(sku=policy.sku, **values)
        .on_conflict_do_update(index_elements=["sku"], set_=values)
    )
    uow.publish(
        topic=ALLOCATION_COMMANDS.name,
        key=policy.sku,
        event=SetSkuPolicy(
            sku=policy.sku,
            backorders=policy.backorders,
            max_backorder_quantity=policy.max_backorder_quantity,
        ),
        event_type="SetSkuPolicy",
        event_id=event_id(CONSUMER, "policy", cause),
        correlation_id=policy.sku,
    )

"""Inventory use cases: record what arrived and what is allowed, hand it to the SKU's book."""

import logging
from datetime import UTC, datetime

from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col

from services.inventory.tables import RestockScheduleRow, SkuPolicyRow, StockReceiptRow
from shared.contracts.headers import event_id
from shared.contracts.inputs import RestockScheduled, SkuPolicy, StockReceived
from shared.contracts.internal import ReceiveStock, ScheduleRestock, SetSkuPolicy
from shared.contracts.topics import ALLOCATION_COMMANDS
from shared.db.locks import lock_key
from shared.db.tables import SourcePositioned
from shared.db.unit_of_work import UnitOfWork
from shared.messaging.errors import PoisonMessage
from shared.messaging.position import SourcePosition

CONSUMER = "inventory"
log = logging.getLogger(__name__)


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
            receipt_id=receipt.receipt_id,
            sku=receipt.sku,
            quantity=receipt.quantity,
            po_id=receipt.po_id,
        ),
        event_type="ReceiveStock",
        event_id=event_id(CONSUMER, "receipt", receipt.receipt_id),
        correlation_id=receipt.receipt_id,
    )


async def set_policy(
    *, sku: str, policy: SkuPolicy | None, position: SourcePosition, uow: UnitOfWork
) -> None:
    """Applies the latest policy of a SKU; a tombstone (None) deletes it. An older policy than
    the one applied (an old owner committing late after a rebalance) changes nothing."""
    session = uow.session
    # Two instances overlapping in a rebalance must not interleave one SKU's policies.
    await lock_key(session, "policy:" + sku)
    applied = await session.get(SkuPolicyRow, sku)
    if not position.supersedes(applied.applied_position() if applied else None):
        log.info("policy for SKU %s at %s ignored: a newer one is applied", sku, position)
        return
    backorders = policy.backorders if policy else None
    maximum = policy.max_backorder_quantity if policy else None
    per_customer = policy.max_backorder_quantity_per_customer if policy else None
    incentive = policy.delay_incentive if policy else None
    max_wait = policy.max_wait.total_seconds() if policy and policy.max_wait else None
    aging = policy.aging.total_seconds() if policy and policy.aging else None
    alternatives = [other for other in policy.alternatives if other != sku] if policy else []
    values = {
        "backorders": backorders,
        "max_backorder_quantity": maximum,
        "max_backorder_quantity_per_customer": per_customer,
        "max_wait_seconds": max_wait,
        "aging_seconds": aging,
        "alternatives": alternatives,
        "delay_incentive": incentive,
        "updated_at": datetime.now(UTC),
        **SourcePositioned.columns(position),
    }
    revision = await session.scalar(
        insert(SkuPolicyRow)
        .values(sku=sku, revision=1, **values)
        .on_conflict_do_update(
            index_elements=["sku"], set_={**values, "revision": SkuPolicyRow.revision + 1}
        )
        .returning(col(SkuPolicyRow.revision))
    )
    uow.publish(
        topic=ALLOCATION_COMMANDS.name,
        key=sku,
        event=SetSkuPolicy(
            sku=sku,
            backorders=backorders,
            max_backorder_quantity=maximum,
            max_backorder_quantity_per_customer=per_customer,
            max_wait_seconds=max_wait,
            aging_seconds=aging,
            alternatives=alternatives,
            delay_incentive=incentive,
        ),
        event_type="SetSkuPolicy",
        event_id=event_id(CONSUMER, "policy", sku, str(revision)),
        correlation_id=sku,
    )


async def schedule_restock(
    restock: RestockScheduled, *, position: SourcePosition, uow: UnitOfWork
) -> None:
    """Records the latest word on a purchase order and hands it to the SKU's book; a purchase
    order moved to another SKU is withdrawn from the first. Words on one purchase order may
    sit on different partitions (one per SKU): the older one never wins, whichever is read
    last."""
    session = uow.session
    await lock_key(session, "po:" + restock.po_id)
    previous = await session.get(RestockScheduleRow, restock.po_id, populate_existing=True)
    if not position.supersedes(previous.applied_position() if previous else None):
        log.info("restock %s at %s ignored: a newer word is applied", restock.po_id, position)
        return
    values = {
        "sku": restock.sku,
        "quantity": restock.quantity,
        "expected_at": restock.expected_at,
        "updated_at": datetime.now(UTC),
        **SourcePositioned.columns(position),
    }
    revision = await session.scalar(
        insert(RestockScheduleRow)
        .values(po_id=restock.po_id, revision=1, **values)
        .on_conflict_do_update(
            index_elements=["po_id"], set_={**values, "revision": RestockScheduleRow.revision + 1}
        )
        .returning(col(RestockScheduleRow.revision))
    )
    revision = revision or 1
    if previous is not None and previous.sku != restock.sku and previous.quantity:
        # Its own revision gives the withdrawal an id of its own: it is news to the old SKU.
        _forward_restock(uow, restock.po_id, previous.sku, 0, previous.expected_at, revision)
    _forward_restock(
        uow, restock.po_id, restock.sku, restock.quantity, restock.expected_at, revision
    )


def _forward_restock(
    uow: UnitOfWork, po_id: str, sku: str, quantity: int, expected_at: datetime, revision: int
) -> None:
    uow.publish(
        topic=ALLOCATION_COMMANDS.name,
        key=sku,
        event=ScheduleRestock(po_id=po_id, sku=sku, quantity=quantity, expected_at=expected_at),
        event_type="ScheduleRestock",
        event_id=event_id(CONSUMER, "restock", po_id, sku, str(revision)),
        correlation_id=po_id,
    )

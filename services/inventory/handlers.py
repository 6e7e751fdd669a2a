"""Inventory use cases: record what arrived and what is allowed, hand it to the SKU's book."""

import logging
from datetime import datetime

from services.inventory.unit_of_work import InventoryWork
from shared.contracts.headers import event_id
from shared.contracts.inputs import RestockScheduled, SkuPolicy, StockReceived
from shared.contracts.internal import ReceiveStock, ScheduleRestock, SetSkuPolicy
from shared.contracts.policy import SkuPolicyFields
from shared.contracts.topics import ALLOCATION_COMMANDS
from shared.messaging.errors import PoisonMessage
from shared.messaging.position import SourcePosition

CONSUMER = "inventory"
log = logging.getLogger(__name__)


async def receive_stock(receipt: StockReceived, *, uow: InventoryWork) -> None:
    if not await uow.inventory.record_receipt(receipt):
        known = await uow.inventory.receipt(receipt.receipt_id)
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
    *, sku: str, policy: SkuPolicy | None, position: SourcePosition, uow: InventoryWork
) -> None:
    """Applies the latest policy of a SKU; a tombstone (None) deletes it. An older policy than
    the one applied (an old owner committing late after a rebalance) changes nothing."""
    if not position.supersedes(await uow.inventory.lock_policy(sku)):
        log.info("policy for SKU %s at %s ignored: a newer one is applied", sku, position)
        return
    command = _policy_command(sku, policy)
    revision = await uow.inventory.save_policy(command, position=position)
    uow.publish(
        topic=ALLOCATION_COMMANDS.name,
        key=sku,
        event=command,
        event_type="SetSkuPolicy",
        event_id=event_id(CONSUMER, "policy", sku, str(revision)),
        correlation_id=sku,
    )


def _policy_command(sku: str, policy: SkuPolicy | None) -> SetSkuPolicy:
    if policy is None:
        # No policy of its own: the configured defaults apply to the SKU again.
        return SetSkuPolicy(sku=sku, policy=None)
    # A SKU offered as its own alternative would only offer the customer the same wait.
    alternatives = [other for other in policy.alternatives if other != sku]
    declared = policy.model_dump(include=set(SkuPolicyFields.model_fields))
    return SetSkuPolicy(
        sku=sku, policy=SkuPolicyFields.model_validate(declared | {"alternatives": alternatives})
    )


async def schedule_restock(
    restock: RestockScheduled, *, position: SourcePosition, uow: InventoryWork
) -> None:
    """Records the latest word on a purchase order and hands it to the SKU's book; a purchase
    order moved to another SKU is withdrawn from the first. Words on one purchase order may
    sit on different partitions (one per SKU): the older one never wins, whichever is read
    last."""
    previous = await uow.inventory.lock_restock(restock.po_id)
    if not position.supersedes(previous.position if previous else None):
        log.info("restock %s at %s ignored: a newer word is applied", restock.po_id, position)
        return
    revision = await uow.inventory.save_restock(restock, position=position)
    if previous is not None and previous.sku != restock.sku and previous.quantity:
        # Its own revision gives the withdrawal an id of its own: it is news to the old SKU.
        _forward_restock(uow, restock.po_id, previous.sku, 0, previous.expected_at, revision)
    _forward_restock(
        uow, restock.po_id, restock.sku, restock.quantity, restock.expected_at, revision
    )


def _forward_restock(
    uow: InventoryWork, po_id: str, sku: str, quantity: int, expected_at: datetime, revision: int
) -> None:
    uow.publish(
        topic=ALLOCATION_COMMANDS.name,
        key=sku,
        event=ScheduleRestock(po_id=po_id, sku=sku, quantity=quantity, expected_at=expected_at),
        event_type="ScheduleRestock",
        event_id=event_id(CONSUMER, "restock", po_id, sku, str(revision)),
        correlation_id=po_id,
    )

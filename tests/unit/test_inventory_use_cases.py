"""The inventory's use cases through in-memory fakes: what each hands to the SKU's book on
`allocation.commands`, and what it refuses or ignores. No broker, no database."""

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import BaseModel

from services.inventory import handlers
from services.inventory.repository import ScheduledRestock
from shared.contracts.inputs import RestockScheduled, SkuPolicy, StockReceived
from shared.contracts.internal import ReceiveStock, ScheduleRestock, SetSkuPolicy
from shared.contracts.policy import SkuPolicyFields
from shared.contracts.topics import ALLOCATION_COMMANDS
from shared.db.ports import Outgoing
from shared.messaging.errors import PoisonMessage
from shared.messaging.position import SourcePosition
from tests.support.fakes.inventory import AppliedPolicy, FakeInventoryUnitOfWork

COMMANDS = ALLOCATION_COMMANDS.name
NOW_MS = 1_800_000_000_000
EXPECTED = datetime(2027, 4, 1, tzinfo=UTC)


def at(offset: int, *, partition: int = 0, seconds: int = 0) -> SourcePosition:
    return SourcePosition(partition=partition, offset=offset, timestamp_ms=NOW_MS + 1000 * seconds)


def receipt(receipt_id: str = "r1", sku: str = "MUG", quantity: int = 4) -> StockReceived:
    return StockReceived(
        receipt_id=receipt_id, sku=sku, quantity=quantity, received_at=EXPECTED, po_id="po1"
    )


def restock(sku: str = "MUG", quantity: int = 5, *, days: int = 0) -> RestockScheduled:
    return RestockScheduled(
        po_id="po1", sku=sku, quantity=quantity, expected_at=EXPECTED + timedelta(days=days)
    )


def restocked(sku: str, quantity: int, expected_at: datetime = EXPECTED) -> ScheduleRestock:
    return ScheduleRestock(po_id="po1", sku=sku, quantity=quantity, expected_at=expected_at)


def shape(events: list[Outgoing]) -> list[tuple[str, str, str, str]]:
    """Where the news goes and as what: topic, key (the SKU's partition), type, correlation."""
    return [(e["topic"], e["key"], e["event_type"], e["correlation_id"]) for e in events]


def sent(events: list[Outgoing]) -> list[BaseModel]:
    return [e["event"] for e in events]


def ids(events: list[Outgoing]) -> set[str]:
    return {e["event_id"] for e in events}


# --- stock received ------------------------------------------------------------------------


async def test_a_receipt_is_handed_to_its_skus_book_once() -> None:
    uow = FakeInventoryUnitOfWork()
    await handlers.receive_stock(receipt(), uow=uow)
    await handlers.receive_stock(receipt(), uow=uow)  # redelivered after it committed
    assert shape(uow.events) == [(COMMANDS, "MUG", "ReceiveStock", "r1")]
    assert uow.events[0]["event"] == ReceiveStock(
        receipt_id="r1", sku="MUG", quantity=4, po_id="po1"
    )


async def test_a_receipt_replayed_after_a_rollback_carries_the_same_event_id() -> None:
    """The allocator drops an event id it has seen: a replay must not count the stock twice."""
    first, replay, other = (FakeInventoryUnitOfWork() for _ in range(3))
    await handlers.receive_stock(receipt(), uow=first)
    await handlers.receive_stock(receipt(), uow=replay)
    await handlers.receive_stock(receipt("r2"), uow=other)
    assert (
        first.events[0]["event_id"] == replay.events[0]["event_id"] != other.events[0]["event_id"]
    )


@pytest.mark.parametrize("conflicting", [receipt(quantity=5), receipt(sku="CUP")])
async def test_a_receipt_id_recorded_with_other_goods_is_refused(
    conflicting: StockReceived,
) -> None:
    uow = FakeInventoryUnitOfWork()
    await handlers.receive_stock(receipt(), uow=uow)
    with pytest.raises(PoisonMessage, match="conflict: receipt r1 was already recorded as 4 x MUG"):
        await handlers.receive_stock(conflicting, uow=uow)
    assert len(uow.events) == 1
    assert (uow.inventory.receipts["r1"].sku, uow.inventory.receipts["r1"].quantity) == ("MUG", 4)


# --- SKU policy ----------------------------------------------------------------------------


async def test_a_policy_is_handed_on_whole_and_without_itself() -> None:
    uow = FakeInventoryUnitOfWork()
    policy = SkuPolicy(
        sku="MUG",
        backorders="allow",
        max_backorder_quantity=10,
        max_backorder_quantity_per_customer=2,
        max_wait=timedelta(days=14),
        aging=timedelta(hours=1),
        alternatives=["CUP", "MUG", "JUG"],
        delay_incentive="10% off with WAIT10",
    )
    await handlers.set_policy(sku="MUG", policy=policy, position=at(1), uow=uow)
    assert shape(uow.events) == [(COMMANDS, "MUG", "SetSkuPolicy", "MUG")]
    assert uow.events[0]["event"] == SetSkuPolicy(
        sku="MUG",
        policy=SkuPolicyFields(
            backorders="allow",
            max_backorder_quantity=10,
            max_backorder_quantity_per_customer=2,
            max_wait=timedelta(days=14),
            aging=timedelta(hours=1),
            alternatives=["CUP", "JUG"],
            delay_incentive="10% off with WAIT10",
        ),
    )


async def test_a_tombstone_hands_on_an_empty_policy_as_news_of_its_own() -> None:
    uow = FakeInventoryUnitOfWork()
    policy = SkuPolicy(sku="MUG", backorders="deny", alternatives=["CUP"])
    await handlers.set_policy(sku="MUG", policy=policy, position=at(1), uow=uow)
    await handlers.set_policy(sku="MUG", policy=None, position=at(2), uow=uow)
    await handlers.set_policy(sku="MUG", policy=policy, position=at(3), uow=uow)
    assert uow.events[1]["event"] == SetSkuPolicy(sku="MUG", policy=None)
    assert len(ids(uow.events)) == 3, "the same policy again is news again"


@pytest.mark.parametrize(
    ("late", "why"),
    [
        (at(10), "the same message redelivered"),
        (at(9), "an old owner's retry of an older one"),
        (at(99, partition=1, seconds=-1), "an older one from another partition"),
    ],
)
async def test_a_policy_no_newer_than_the_one_applied_changes_nothing(
    late: SourcePosition, why: str
) -> None:
    uow = FakeInventoryUnitOfWork()
    newer = SkuPolicy(sku="MUG", backorders="deny")
    await handlers.set_policy(sku="MUG", policy=newer, position=at(10), uow=uow)
    older = SkuPolicy(sku="MUG", backorders="allow")
    await handlers.set_policy(sku="MUG", policy=older, position=late, uow=uow)
    await handlers.set_policy(sku="MUG", policy=None, position=late, uow=uow)
    assert len(uow.events) == 1, why
    assert uow.inventory.policies["MUG"].policy == SetSkuPolicy(
        sku="MUG", policy=SkuPolicyFields(backorders="deny")
    )


async def test_any_policy_replaces_one_applied_before_positions_were_kept() -> None:
    uow = FakeInventoryUnitOfWork()
    await handlers.set_policy(
        sku="MUG", policy=SkuPolicy(sku="MUG", backorders="deny"), position=at(5), uow=uow
    )
    legacy = uow.inventory.policies["MUG"].policy
    uow.inventory.policies["MUG"] = AppliedPolicy(legacy, position=None)
    await handlers.set_policy(sku="MUG", policy=None, position=at(1), uow=uow)
    assert uow.events[-1]["event"] == SetSkuPolicy(sku="MUG", policy=None)


# --- restock scheduled ---------------------------------------------------------------------


async def test_each_word_on_a_purchase_order_is_handed_on_under_an_id_of_its_own() -> None:
    uow = FakeInventoryUnitOfWork()
    await handlers.schedule_restock(restock(), position=at(1), uow=uow)
    await handlers.schedule_restock(restock(days=7), position=at(2, seconds=1), uow=uow)
    await handlers.schedule_restock(restock(quantity=0, days=7), position=at(3, seconds=2), uow=uow)
    assert shape(uow.events) == [(COMMANDS, "MUG", "ScheduleRestock", "po1")] * 3
    assert sent(uow.events) == [
        restocked("MUG", 5),
        restocked("MUG", 5, EXPECTED + timedelta(days=7)),
        restocked("MUG", 0, EXPECTED + timedelta(days=7)),  # withdrawn
    ]
    assert len(ids(uow.events)) == 3


async def test_an_older_word_on_a_purchase_order_never_wins_whichever_is_read_last() -> None:
    uow = FakeInventoryUnitOfWork()
    await handlers.schedule_restock(restock(days=7), position=at(21, seconds=1), uow=uow)
    await handlers.schedule_restock(restock(), position=at(20), uow=uow)
    await handlers.schedule_restock(restock(days=7), position=at(21, seconds=1), uow=uow)
    assert sent(uow.events) == [restocked("MUG", 5, EXPECTED + timedelta(days=7))]


async def test_a_purchase_order_moved_to_another_sku_is_withdrawn_from_the_first() -> None:
    uow = FakeInventoryUnitOfWork()
    await handlers.schedule_restock(restock(days=3), position=at(1), uow=uow)
    await handlers.schedule_restock(restock("CUP"), position=at(7, partition=2, seconds=1), uow=uow)
    assert shape(uow.events[1:]) == [
        (COMMANDS, "MUG", "ScheduleRestock", "po1"),
        (COMMANDS, "CUP", "ScheduleRestock", "po1"),
    ]
    assert sent(uow.events[1:]) == [
        restocked("MUG", 0, EXPECTED + timedelta(days=3)),
        restocked("CUP", 5),
    ]
    assert len(ids(uow.events)) == 3, "the withdrawal is news to the old SKU"


async def test_a_moved_purchase_order_read_in_the_wrong_order_stays_where_it_moved() -> None:
    uow = FakeInventoryUnitOfWork()
    await handlers.schedule_restock(restock("CUP"), position=at(7, partition=2, seconds=1), uow=uow)
    await handlers.schedule_restock(restock("MUG"), position=at(40, partition=0), uow=uow)
    assert sent(uow.events) == [restocked("CUP", 5)]
    assert uow.inventory.restocks["po1"].sku == "CUP"


async def test_a_withdrawn_purchase_order_moved_elsewhere_withdraws_nothing_twice() -> None:
    uow = FakeInventoryUnitOfWork()
    await handlers.schedule_restock(restock(quantity=0), position=at(1), uow=uow)
    await handlers.schedule_restock(restock("CUP"), position=at(2, seconds=1), uow=uow)
    assert sent(uow.events) == [restocked("MUG", 0), restocked("CUP", 5)]


async def test_any_word_replaces_one_applied_before_positions_were_kept() -> None:
    uow = FakeInventoryUnitOfWork()
    uow.inventory.restocks["po1"] = ScheduledRestock("po1", "MUG", 5, EXPECTED, position=None)
    await handlers.schedule_restock(restock(days=1), position=at(0), uow=uow)
    assert sent(uow.events) == [restocked("MUG", 5, EXPECTED + timedelta(days=1))]


# --- the unit of work ----------------------------------------------------------------------


async def test_a_use_case_leaves_the_commit_to_the_batch_it_is_part_of() -> None:
    """The entrypoint commits once per batch, so a batch that fails sends none of its events."""
    uow = FakeInventoryUnitOfWork()
    await handlers.receive_stock(receipt(), uow=uow)
    await handlers.set_policy(sku="MUG", policy=None, position=at(1), uow=uow)
    await handlers.schedule_restock(restock(), position=at(1), uow=uow)
    assert (len(uow.events), uow.committed) == (3, False)

"""Where inventory messages enter: stock receipts and SKU policies."""

from faststream import Context
from faststream.kafka import KafkaMessage, KafkaRouter
from pydantic import TypeAdapter

from services.inventory import handlers
from services.inventory.unit_of_work import InventoryUnitOfWork
from shared.contracts.common import Sku
from shared.contracts.inputs import RestockScheduled, SkuPolicy, StockReceived
from shared.contracts.internal import ReceiveStock, ScheduleRestock, SetSkuPolicy
from shared.contracts.topics import (
    ALLOCATION_COMMANDS,
    RESTOCK_SCHEDULED,
    SKU_POLICY,
    STOCK_RECEIVED,
)
from shared.messaging.errors import PoisonMessage
from shared.messaging.records import delivered
from shared.messaging.subscriptions import consumes
from shared.runtime import Runtime

SERVICE = "inventory"
router = KafkaRouter()

# The outbox relay sends these; declared here so the AsyncAPI document shows them.
allocation_commands = router.publisher(
    ALLOCATION_COMMANDS.name,
    schema=ReceiveStock | SetSkuPolicy | ScheduleRestock,
    title=f"{ALLOCATION_COMMANDS.name}:inventory",
    description="Stock receipts and SKU policies, keyed by SKU.",
)


@consumes(router, STOCK_RECEIVED, service=SERVICE)
async def on_stock_received(
    receipts: list[StockReceived], message: KafkaMessage, runtime: Runtime = Context()
) -> None:
    async with _unit_of_work(runtime) as uow:
        for item in delivered(receipts, message):
            with item.handling():
                await handlers.receive_stock(item.body, uow=uow)
        await uow.commit()


@consumes(router, SKU_POLICY, service=SERVICE)
async def on_sku_policies(
    policies: list[SkuPolicy | None], message: KafkaMessage, runtime: Runtime = Context()
) -> None:
    async with _unit_of_work(runtime) as uow:
        for item in delivered(policies, message):
            policy = item.body
            sku = policy.sku if policy else _tombstone_sku(item.record.key)
            with item.handling():
                await handlers.set_policy(sku=sku, policy=policy, position=item.position, uow=uow)
        await uow.commit()


@consumes(router, RESTOCK_SCHEDULED, service=SERVICE)
async def on_restocks_scheduled(
    restocks: list[RestockScheduled], message: KafkaMessage, runtime: Runtime = Context()
) -> None:
    async with _unit_of_work(runtime) as uow:
        for item in delivered(restocks, message):
            with item.handling():
                await handlers.schedule_restock(item.body, position=item.position, uow=uow)
        await uow.commit()


def _unit_of_work(runtime: Runtime) -> InventoryUnitOfWork:
    return InventoryUnitOfWork(
        runtime.session_factory, source=runtime.service, outbox=runtime.outbox
    )


_SKU: TypeAdapter[str] = TypeAdapter(Sku)


def _tombstone_sku(key: bytes | None) -> str:
    """A tombstone names its SKU by its key alone, checked as strictly as a policy's `sku`."""
    if not key:
        raise PoisonMessage("a policy tombstone needs the SKU as its key")
    try:
        return _SKU.validate_python(key.decode())
    except UnicodeDecodeError:
        raise PoisonMessage("a policy tombstone's key is not UTF-8") from None

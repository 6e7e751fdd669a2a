"""A burst of orders and receipts over a few SKUs, and the checks that must hold once it settles."""

import asyncio
import json
import random
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from shared.contracts.headers import EVENT_ID
from shared.contracts.topics import ORDERS_PLACED, STOCK_RECEIVED
from shared.messaging.client import EdgeClient, TopicTail
from tests.support.checks import assert_books_consistent
from tests.support.shop import order_placed, stock_received, unique


@dataclass
class Workload:
    skus: list[str]
    demand: dict[str, int] = field(default_factory=dict)
    received: dict[str, int] = field(default_factory=dict)
    orders: list[str] = field(default_factory=list)

    @classmethod
    def new(cls, sku_count: int = 3) -> "Workload":
        skus = [unique("SKU") for _ in range(sku_count)]
        return cls(skus=skus, demand=dict.fromkeys(skus, 0), received=dict.fromkeys(skus, 0))

    async def publish(self, shop: EdgeClient, *, orders: int, seed: int) -> None:
        """Orders and receipts interleaved; some SKUs end short, some with stock to spare."""
        rng = random.Random(seed)
        for n in range(orders):
            sku = self.skus[n % len(self.skus)]
            quantity = rng.randint(1, 3)
            order_id = unique("o")
            self.orders.append(order_id)
            self.demand[sku] += quantity
            await shop.publish(
                ORDERS_PLACED.name, key=order_id, value=order_placed(order_id, (sku, quantity))
            )
            if rng.random() < 0.4:
                receipt_sku = rng.choice(self.skus)
                units = rng.randint(1, 4)
                self.received[receipt_sku] += units
                await shop.publish(
                    STOCK_RECEIVED.name,
                    key=receipt_sku,
                    value=stock_received(unique("r"), receipt_sku, units),
                )

    async def settled(self, db: asyncpg.Connection) -> bool:
        for sku in self.skus:
            row = await db.fetchrow(
                "select b.received_total, coalesce(sum(l.allocated), 0) as held,"
                " count(l.*) as lines from sku_book b left join allocation_line l on l.sku = b.sku"
                " where b.sku = $1 group by b.received_total",
                sku,
            )
            if row is None or row["received_total"] != self.received[sku]:
                return False
            if row["held"] != min(self.received[sku], self.demand[sku]):
                return False
        decided = await db.fetchval(
            "select count(*) from customer_order where order_id = any($1) and status is not null",
            self.orders,
        )
        backlog = await db.fetchval("select count(*) from outbox_message")
        return bool(decided == len(self.orders) and backlog == 0)

    async def wait_settled(self, db: asyncpg.Connection, timeout: float = 180.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not await self.settled(db):
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError("the workload did not settle")
            await asyncio.sleep(0.5)

    async def check(self, db: asyncpg.Connection, status_changes: TopicTail) -> None:
        """No lost and no doubled effect, anywhere a customer or operator would look."""
        await assert_books_consistent(db, self.skus)
        for sku in self.skus:
            receipts = await db.fetchval(
                "select coalesce(sum(quantity), 0) from stock_receipt where sku = $1", sku
            )
            assert receipts == self.received[sku], f"{sku}: receipts lost or doubled"
        rows = await db.fetch(
            "select order_id, version, status from customer_order where order_id = any($1)",
            self.orders,
        )

        def caught_up(_: list[Any]) -> bool:
            return all(
                max((v["version"] for v in status_changes.values(key=r["order_id"])), default=0)
                >= r["version"]
                for r in rows
            )

        await status_changes.wait_for(caught_up, timeout=60)
        for row in rows:
            order_id = row["order_id"]
            first_seen: list[int] = []
            by_version: dict[int, tuple[bytes | None, Any]] = {}
            for record in status_changes.records:
                if record.key is None or record.key.decode() != order_id:
                    continue
                event = json.loads(record.value)
                version = event["version"]
                seen = (dict(record.headers).get(EVENT_ID), event)
                if version not in by_version:
                    by_version[version] = seen
                    first_seen.append(version)
                    continue
                # A republished event is the same event under the same id, never a second
                # decision: consumers dedupe it.
                assert seen[0] == by_version[version][0], f"{order_id}: v{version} under two ids"
                assert _same_picture(seen[1], by_version[version][1]), f"{order_id}: two v{version}"
            # Per-key order: no version ever arrives after a newer one.
            assert first_seen == sorted(first_seen), f"{order_id}: versions out of order"
            assert first_seen == list(range(1, row["version"] + 1)), order_id
            assert by_version[row["version"]][1]["status"] == row["status"]


def _same_picture(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return {**a, "occurred_at": None} == {**b, "occurred_at": None}

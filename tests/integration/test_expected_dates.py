"""Expected dates from scheduled restocks, and a rescheduled restock telling only those delayed."""

from datetime import UTC, datetime, timedelta
from functools import partial

import asyncpg

from shared.contracts.topics import ORDERS_PLACED, RESTOCK_SCHEDULED, STOCK_RECEIVED
from shared.messaging.client import EdgeClient, TopicTail
from tests.support.checks import eventually, latest_line, wait_for_statuses, wait_for_value
from tests.support.cli import backorder
from tests.support.receivers import Mailbox
from tests.support.shop import customer_email, order_placed, stock_received, unique

DAY = datetime(2027, 1, 4, tzinfo=UTC)


def restock(po_id: str, sku: str, quantity: int, days: int) -> dict[str, object]:
    expected = DAY + timedelta(days=days)
    return {"po_id": po_id, "sku": sku, "quantity": quantity, "expected_at": expected.isoformat()}


def day(days: int) -> datetime:
    return DAY + timedelta(days=days)


def eta(tail: TopicTail, order_id: str) -> datetime | None:
    value = latest_line(tail, order_id)["eta"]
    return datetime.fromisoformat(value) if value else None


def subjects(mailbox: Mailbox, order_id: str) -> list[str]:
    return [mail.subject for mail in mailbox.to(customer_email(order_id))]


def told_once(mailbox: Mailbox, order_id: str) -> bool:
    return len(subjects(mailbox, order_id)) == 1


async def test_dates_follow_the_schedule_and_a_delay_reaches_only_those_it_delays(
    shop: EdgeClient, status_changes: TopicTail, db: asyncpg.Connection, mailbox: Mailbox
) -> None:
    sku, po1, po2 = unique("SKU"), unique("po"), unique("po")
    await shop.publish(RESTOCK_SCHEDULED.name, key=sku, value=restock(po1, sku, 2, 1))
    await shop.publish(RESTOCK_SCHEDULED.name, key=sku, value=restock(po2, sku, 2, 9))
    await wait_for_value(
        db, "select count(*) from scheduled_restock where sku = $1", sku, expected=2
    )
    first, second, third = unique("o"), unique("o"), unique("o")
    for order_id, quantity in ((first, 2), (second, 2), (third, 1)):
        await shop.publish(
            ORDERS_PLACED.name, key=order_id, value=order_placed(order_id, (sku, quantity))
        )
        await wait_for_statuses(status_changes, {order_id: "backordered"})
        # told of the first date before it moves (a move within the window would be merged)
        await eventually(partial(told_once, mailbox, order_id), what="backordered mail")
    assert [eta(status_changes, o) for o in (first, second, third)] == [
        day(1),
        day(9),
        None,
    ]
    versions = {o: len(status_changes.values(key=o)) for o in (first, second, third)}

    # po2 slips by a week: only the second order depends on it
    await shop.publish(RESTOCK_SCHEDULED.name, key=sku, value=restock(po2, sku, 2, 16))
    await status_changes.wait_for(
        lambda _: len(status_changes.values(key=second)) == versions[second] + 1
    )
    assert eta(status_changes, second) == day(16)
    assert latest_line(status_changes, second)["eta_change"] == "delayed"
    await eventually(
        lambda: subjects(mailbox, second)[-1:] == [f"Your order {second} is delayed"],
        what=lambda: f"the delay mail to {second}: {subjects(mailbox, second)}",
    )

    # po1 arrives, naming itself: the first order is filled, the others keep their dates
    await shop.publish(
        STOCK_RECEIVED.name, key=sku, value=stock_received(unique("r"), sku, 2) | {"po_id": po1}
    )
    await wait_for_statuses(status_changes, {first: "allocated"})
    await status_changes.poll(2.0)
    assert len(status_changes.values(key=third)) == versions[third]
    assert eta(status_changes, second) == day(16)
    # only the second customer heard of a delay
    assert [s for o in (first, third) for s in subjects(mailbox, o) if "delayed" in s] == []
    assert subjects(mailbox, second).count(f"Your order {second} is delayed") == 1
    assert await db.fetchval("select count(*) from scheduled_restock where sku = $1", sku) == 1
    # purchasing sees it: 3 units wait (2 + 1), po2 brings 2, 1 is short
    report = await backorder("demand", "--csv", "--limit", "100000")
    cells = next(line for line in report.splitlines() if line.startswith(sku + ",")).split(",")
    assert (cells[2], cells[5], cells[7]) == ("3", "2", "1")


async def test_a_restock_that_does_not_come_is_no_ones_date_and_shows_as_overdue(
    shop: EdgeClient, status_changes: TopicTail, db: asyncpg.Connection
) -> None:
    sku, late, later = unique("SKU"), unique("po"), unique("po")
    due = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=10)
    late_restock = {"po_id": late, "sku": sku, "quantity": 2, "expected_at": due.isoformat()}
    await shop.publish(RESTOCK_SCHEDULED.name, key=sku, value=late_restock)
    await shop.publish(RESTOCK_SCHEDULED.name, key=sku, value=restock(later, sku, 2, 30))
    await wait_for_value(
        db, "select count(*) from scheduled_restock where sku = $1", sku, expected=2
    )
    first, second = unique("o"), unique("o")
    for order_id in (first, second):
        await shop.publish(ORDERS_PLACED.name, key=order_id, value=order_placed(order_id, (sku, 2)))
        await wait_for_statuses(status_changes, {order_id: "backordered"})
    assert [eta(status_changes, o) for o in (first, second)] == [due, day(30)]

    # the late restock's day passes with nothing happening on the SKU: the sweep retells the
    # dates from the restocks still to come; the first in line now expects the later one
    await status_changes.wait_for(lambda _: eta(status_changes, first) == day(30), timeout=40)
    assert latest_line(status_changes, first)["eta_change"] == "delayed"
    await status_changes.wait_for(lambda _: eta(status_changes, second) is None, timeout=10)
    assert latest_line(status_changes, second)["eta_change"] == "cleared"

    # an order placed now is never told the day gone by
    third = unique("o")
    await shop.publish(ORDERS_PLACED.name, key=third, value=order_placed(third, (sku, 1)))
    await wait_for_statuses(status_changes, {third: "backordered"})
    assert eta(status_changes, third) is None

    # purchasing sees the late order apart: 5 units wait, 2 are on their way, 3 are short
    report = await backorder("demand", "--csv", "--limit", "100000")
    cells = next(line for line in report.splitlines() if line.startswith(sku + ",")).split(",")
    assert (cells[2], cells[5], cells[7], cells[8], cells[9]) == ("5", "2", "3", "1", "2")
    assert datetime.fromisoformat(cells[10]) == due

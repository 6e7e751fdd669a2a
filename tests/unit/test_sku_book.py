"""The allocation rules of one SKU, as the specification states them (the reference book)."""

from datetime import UTC, datetime, timedelta

from services.allocator.domain.model import Line, Policy
from services.allocator.domain.reference import ReferenceBook as SkuBook


def line(order: str, quantity: int) -> Line:
    return Line(order_id=order, line_id="1", quantity=quantity)


def test_line_is_allocated_at_once_when_stock_is_there_and_nobody_waits() -> None:
    book = SkuBook(sku="MUG", available=5)
    a = line("a", 3)
    book.request(a)
    assert (a.allocated, a.short, a.status, book.available) == (3, 0, "allocated", 2)
    assert book.queue == []


def test_the_part_stock_cannot_cover_is_backordered_at_the_tail() -> None:
    book = SkuBook(sku="MUG", available=2)
    a = line("a", 5)
    book.request(a)
    assert (a.allocated, a.short, a.status) == (2, 3, "partially_allocated")
    assert book.position(a) == 1


def test_a_later_line_gets_nothing_while_an_earlier_one_waits() -> None:
    book = SkuBook(sku="MUG")
    a, b = line("a", 2), line("b", 1)
    book.request(a)
    book.receive(1)
    book.request(b)  # one unit is held by a; b must queue behind it
    assert (a.allocated, b.allocated) == (1, 0)
    assert [book.position(a), book.position(b)] == [1, 2]


def test_receipt_fills_the_head_partly_and_it_stays_at_the_head() -> None:
    book = SkuBook(sku="MUG")
    a, b = line("a", 3), line("b", 1)
    book.request(a)
    book.request(b)
    changed = book.receive(2)
    assert changed == [a]
    assert (a.allocated, book.position(a), book.position(b)) == (2, 1, 2)
    changed = book.receive(2)
    assert changed == [a, b]
    assert (a.status, b.status, book.available, book.queue) == ("allocated", "allocated", 0, [])


def test_cancel_passes_reserved_units_to_the_next_in_line() -> None:
    book = SkuBook(sku="MUG")
    a, b = line("a", 2), line("b", 2)
    book.request(a)
    book.request(b)
    book.receive(3)  # a: 2, b: 1
    changed = book.cancel(a, "changed mind")
    assert changed == [a, b]
    assert (a.status, a.allocated, a.reason) == ("cancelled", 0, "changed mind")
    assert (b.status, b.allocated, book.available) == ("allocated", 2, 1)


def test_cancelling_a_waiting_line_takes_it_out_of_the_queue() -> None:
    book = SkuBook(sku="MUG")
    a, b = line("a", 1), line("b", 1)
    book.request(a)
    book.request(b)
    book.cancel(a, None)
    assert book.position(b) == 1
    assert book.cancel(a, None) == []  # twice has the effect of once


def test_deny_policy_rejects_the_uncovered_part_with_a_reason() -> None:
    book = SkuBook(sku="LAMP", available=1, policy=Policy(backorders="deny"))
    a = line("a", 3)
    book.request(a)
    assert (a.allocated, a.rejected, a.short, a.status) == (1, 2, 0, "allocated")
    assert a.reason is not None and "not allowed" in a.reason


def test_a_discontinued_sku_sells_what_it_has_and_takes_no_new_wait() -> None:
    book = SkuBook(sku="MUG", available=1, policy=Policy())
    waiting = line("a", 2)
    book.request(waiting)
    book.policy = Policy(discontinued=True)
    book.receive(2)
    late = line("b", 3)
    book.request(late)
    assert (late.allocated, late.rejected, late.short, late.status) == (1, 2, 0, "allocated")
    assert late.reason == "SKU MUG is discontinued and will not be restocked"
    assert (waiting.status, book.queue) == ("allocated", [])


def test_maximum_backorder_quantity_counts_everything_already_waiting() -> None:
    book = SkuBook(sku="MUG", policy=Policy(max_backorder_quantity=3))
    a, b, c = line("a", 2), line("b", 2), line("c", 1)
    book.request(a)
    book.request(b)
    book.request(c)
    assert (a.status, b.status, c.status) == ("backordered", "rejected", "backordered")
    assert b.reason is not None and "maximum backorder quantity 3" in b.reason


def test_lines_past_the_maximum_wait_expire_and_pass_their_units_on() -> None:
    start = datetime(2027, 1, 1, tzinfo=UTC)
    book = SkuBook(sku="MUG", policy=Policy(max_wait=timedelta(days=14)))
    a, b = line("a", 2), line("b", 1)
    a.requested_at, b.requested_at = start, start + timedelta(days=10)
    book.request(a)
    book.request(b)
    book.receive(1)
    assert book.expire(start + timedelta(days=14), None) == []
    changed = book.expire(start + timedelta(days=15), None)
    assert changed == [a, b]
    assert (a.status, a.allocated, a.reason) == (
        "expired",
        0,
        "waited longer than the maximum of 14 days",
    )
    assert (b.status, b.allocated, book.queue) == ("allocated", 1, [])


def test_the_global_maximum_wait_applies_when_the_sku_sets_none() -> None:
    start = datetime(2027, 1, 1, tzinfo=UTC)
    book = SkuBook(sku="MUG")
    a = line("a", 1)
    a.requested_at = start
    book.request(a)
    assert book.expire(start + timedelta(days=400), None) == []
    assert book.expire(start + timedelta(hours=3), timedelta(hours=2)) == [a]
    assert a.reason == "waited longer than the maximum of 2 hours"

from datetime import UTC, datetime

from services.order.domain.model import Order, OrderLine
from shared.contracts.inputs import Customer
from shared.contracts.internal import LineAllocationChanged
from shared.contracts.outputs import LineStatus

PLACED_AT = datetime(2026, 11, 22, tzinfo=UTC)


def order(*lines: OrderLine) -> Order:
    customer = Customer(id="c1", email="c1@example.com")
    return Order(order_id="o1", customer=customer, placed_at=PLACED_AT, lines=list(lines))


def decision(
    line_id: str,
    status: LineStatus,
    *,
    allocated: int = 0,
    backordered: int = 0,
    rejected: int = 0,
    revision: int = 1,
    reason: str | None = None,
) -> LineAllocationChanged:
    return LineAllocationChanged(
        order_id="o1",
        line_id=line_id,
        sku="MUG",
        quantity=max(1, allocated + backordered + rejected),
        allocated=allocated,
        backordered=backordered,
        rejected=rejected,
        status=status,
        queue_position=None,
        reason=reason,
        revision=revision,
        occurred_at=PLACED_AT,
    )


def test_no_picture_until_every_line_is_decided() -> None:
    o = order(OrderLine("a", "MUG", 1), OrderLine("b", "LAMP", 1))
    o.apply(decision("a", "allocated", allocated=1))
    assert o.next_picture() is None
    o.apply(decision("b", "backordered", backordered=1))
    picture = o.next_picture()
    assert picture is not None and picture.status == "partially_allocated"
    assert o.version == 1


def test_status_ignores_rejected_and_cancelled_lines() -> None:
    o = order(OrderLine("a", "MUG", 1), OrderLine("b", "LAMP", 2))
    o.apply(decision("a", "allocated", allocated=1))
    o.apply(decision("b", "rejected", rejected=2, reason="no backorders"))
    assert o.status == "allocated"
    o.apply(decision("a", "cancelled", revision=2, reason="changed mind"))
    assert (o.status, o.reason) == ("cancelled", "changed mind")


def test_all_lines_rejected_is_rejected() -> None:
    o = order(OrderLine("a", "MUG", 1))
    o.apply(decision("a", "rejected", rejected=1, reason="no backorders"))
    assert (o.status, o.reason) == ("rejected", "no backorders")


def test_stale_or_repeated_news_changes_nothing_and_makes_no_version() -> None:
    o = order(OrderLine("a", "MUG", 2))
    assert o.apply(decision("a", "backordered", backordered=2, revision=2))
    assert o.next_picture() is not None
    assert not o.apply(decision("a", "backordered", backordered=2, revision=2))
    assert not o.apply(decision("a", "allocated", allocated=2, revision=1))
    assert o.next_picture() is None
    assert o.version == 1


def test_cancel_before_allocation_decides_the_named_lines() -> None:
    o = order(OrderLine("a", "MUG", 1), OrderLine("b", "LAMP", 1))
    o.cancel_before_allocation(["a"], "too slow")
    assert [line.status for line in o.lines] == ["cancelled", None]
    o.cancel_before_allocation(None, "all of it")
    assert o.decided and o.status == "cancelled"


def test_a_partly_refused_line_gives_the_order_its_reason() -> None:
    refused = "backorders are not allowed for SKU MUG"
    o = order(OrderLine("a", "MUG", 5))
    o.apply(decision("a", "allocated", allocated=3, rejected=2, reason=refused))
    assert (o.status, o.reason) == ("allocated", refused)
    picture = o.next_picture()
    assert picture is not None and picture.reason == refused
    assert picture.lines[0].rejected == 2


def test_an_order_wholly_as_asked_has_no_reason() -> None:
    o = order(OrderLine("a", "MUG", 5), OrderLine("b", "LAMP", 1))
    o.apply(decision("a", "allocated", allocated=5))
    o.apply(decision("b", "backordered", backordered=1))
    assert (o.status, o.reason) == ("partially_allocated", None)

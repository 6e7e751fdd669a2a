"""Who may wait for a SKU and for how much (returning customers, a per-customer cap), and the
offer a policy makes for the wait: the pure rules, the books that follow them, the notices."""

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from services.allocator.domain.admission import Admission, Applicant, admit
from services.allocator.domain.book import QueueState, SkuBook
from services.allocator.domain.eta import Schedule
from services.allocator.domain.model import Line, Policy
from services.allocator.domain.reference import ReferenceBook
from services.allocator.repository.sku_books import _policy as policy_in_force
from services.allocator.repository.sku_books import policy_columns
from services.allocator.tables import SkuBookRow
from services.notifier.channels.webhook import WebhookChannel
from services.notifier.domain.model import Kind
from services.notifier.rendering import BUILT_IN, Rendered, Templates
from services.order.domain.customers import is_returning
from services.order.domain.model import Order
from shared.contracts.inputs import OrderPlaced, SkuPolicy
from shared.contracts.outputs import OrderStatusChanged
from shared.contracts.policy import SkuPolicyFields
from shared.messaging.errors import poison_reason
from shared.settings import Settings
from tests.support.waiting_lines import InMemoryWaitingLines

NOW = datetime(2027, 1, 1, tzinfo=UTC)
RETURNING_ONLY = Policy(backorders="returning_customers")
NEWCOMER, REGULAR = Applicant("c-new", returning=False), Applicant("c-old", returning=True)
OFFER = "10% off your next order with code WAIT10"


def line(order: str, quantity: int) -> Line:
    return Line(order_id=order, line_id="1", quantity=quantity)


def test_a_policy_that_sets_nothing_admits_every_missing_unit() -> None:
    admitted = admit(
        policy=Policy(),
        sku="MUG",
        applicant=Applicant(),
        missing=5,
        sku_waiting=10**6,
        customer_waiting=10**6,
    )
    assert admitted == Admission(0, None)


def test_under_returning_customers_a_newcomer_gets_the_stock_there_is_and_no_wait() -> None:
    book = ReferenceBook(sku="MUG", available=1, policy=RETURNING_ONLY)
    newcomer = line("a", 3)
    book.request(newcomer, NEWCOMER)
    assert (newcomer.allocated, newcomer.rejected, newcomer.status) == (1, 2, "allocated")
    assert newcomer.reason == "backorders for SKU MUG are only accepted from returning customers"
    assert book.queue == []


def test_under_returning_customers_a_returning_customer_waits_in_line() -> None:
    book = ReferenceBook(sku="MUG", policy=RETURNING_ONLY)
    regular = line("a", 3)
    book.request(regular, REGULAR)
    assert (regular.status, regular.short, book.position(regular)) == ("backordered", 3, 1)


def test_deny_still_refuses_returning_customers_too() -> None:
    book = ReferenceBook(sku="MUG", policy=Policy(backorders="deny"))
    regular = line("a", 2)
    book.request(regular, REGULAR)
    assert (regular.rejected, regular.reason) == (2, "backorders are not allowed for SKU MUG")


def test_a_customer_waits_up_to_the_cap_and_the_rest_of_the_line_is_rejected() -> None:
    book = ReferenceBook(sku="MUG", policy=Policy(max_backorder_quantity_per_customer=3))
    first, second, other = line("a", 2), line("b", 2), line("c", 3)
    book.request(first, NEWCOMER)
    book.request(second, NEWCOMER)
    book.request(other, REGULAR)
    assert (first.short, first.rejected) == (2, 0)
    assert (second.short, second.rejected, second.status) == (1, 1, "backordered")
    assert (
        second.reason == "maximum backorder quantity 3 per customer for SKU MUG would be exceeded"
    )
    assert (other.short, other.rejected) == (3, 0)  # another customer has a cap of their own


def test_once_a_customer_is_served_they_may_wait_again() -> None:
    book = ReferenceBook(sku="MUG", policy=Policy(max_backorder_quantity_per_customer=2))
    first, later = line("a", 2), line("b", 2)
    book.request(first, NEWCOMER)
    book.receive(2)
    book.request(later, NEWCOMER)
    assert (first.status, later.short, later.rejected) == ("allocated", 2, 0)


def test_a_cap_of_zero_per_customer_refuses_every_wait_but_not_the_stock_on_hand() -> None:
    book = ReferenceBook(
        sku="MUG", available=1, policy=Policy(max_backorder_quantity_per_customer=0)
    )
    a = line("a", 2)
    book.request(a, REGULAR)
    assert (a.allocated, a.rejected, a.short) == (1, 1, 0)


def test_the_sku_wide_cap_still_refuses_all_that_is_left_when_it_would_be_exceeded() -> None:
    policy = Policy(max_backorder_quantity=3, max_backorder_quantity_per_customer=2)
    book = ReferenceBook(sku="MUG", policy=policy)
    a, b = line("a", 2), line("b", 4)
    book.request(a, REGULAR)
    book.request(b, NEWCOMER)  # two of four pass the per-customer cap, but 2 + 2 > 3
    assert (b.rejected, b.short) == (4, 0)
    assert b.reason == "maximum backorder quantity 3 for SKU MUG would be exceeded"


def test_lines_of_unnamed_customers_count_for_nobody() -> None:
    book = ReferenceBook(sku="MUG", policy=Policy(max_backorder_quantity_per_customer=2))
    a, b = line("a", 2), line("b", 2)
    book.request(a)
    book.request(b)
    assert (a.short, b.short) == (2, 2)


def test_the_incremental_book_counts_a_customers_waiting_lines_across_saves() -> None:
    async def scenario() -> list[tuple[int, int]]:
        store, state = InMemoryWaitingLines(), QueueState()
        policy = Policy(max_backorder_quantity_per_customer=3)

        def open_book() -> SkuBook:
            return SkuBook(
                sku="MUG", policy=policy, state=state, schedule=Schedule([]), waiting=store
            )

        first, second, third = line("a", 2), line("b", 2), line("c", 2)
        book = open_book()
        await book.request(first, NOW, NEWCOMER)
        await book.told()
        store.save(book.lines())
        book = open_book()  # a later batch: the first line is read from the store
        await book.request(second, NOW, NEWCOMER)
        await book.receive(2)  # fills the first line: the customer waits for 1 only
        await book.request(third, NOW, NEWCOMER)
        await book.told()
        stored_first = await book.find("a", "1")  # the book's own copy of the stored line
        assert stored_first is not None
        return [(ln.short, ln.rejected) for ln in (stored_first, second, third)]

    assert asyncio.run(scenario()) == [(0, 0), (1, 1), (2, 0)]


@pytest.mark.parametrize(
    ("shop_says", "bought_here_before", "returning"),
    [
        (None, False, False),
        (None, True, True),
        (True, False, True),  # a purchase this system never saw
        (False, True, False),  # the shop knows better: e.g. that purchase was refunded
    ],
)
def test_the_shops_word_wins_over_the_history_either_way(
    shop_says: bool | None, bought_here_before: bool, returning: bool
) -> None:
    assert is_returning(shop_says=shop_says, bought_here_before=bought_here_before) is returning


def policy(**fields: Any) -> dict[str, Any]:
    return {"sku": "MUG", "backorders": "allow", **fields}


def refusal(model: Any, body: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(body)
    reason = poison_reason(caught.value)
    assert reason is not None
    return reason


def test_policies_take_the_new_fields_and_leave_them_unset_by_default() -> None:
    taken = SkuPolicy.model_validate(
        policy(
            backorders="returning_customers",
            max_backorder_quantity_per_customer=0,
            delay_incentive=f"  {OFFER} ",
        )
    )
    assert (taken.backorders, taken.max_backorder_quantity_per_customer) == (
        "returning_customers",
        0,
    )
    assert taken.delay_incentive == OFFER
    plain = SkuPolicy.model_validate(policy())
    assert (plain.max_backorder_quantity_per_customer, plain.delay_incentive) == (None, None)


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"backorders": "returning"}, "backorders"),
        ({"max_backorder_quantity_per_customer": -1}, "max_backorder_quantity_per_customer"),
        ({"max_backorder_quantity_per_customer": 1.5}, "max_backorder_quantity_per_customer"),
        ({"delay_incentive": "x" * 201}, "at most 200 characters"),
        ({"delay_incentive": "   "}, "at least 1 character"),
        ({"delay_incentive": "first line\nsecond line"}, "control character U+000A"),
        ({"delay_incentive": "WAIT\x0010"}, "control character U+0000"),
        ({"delay_incentive": 10}, "delay_incentive"),
    ],
)
def test_bad_policy_fields_are_refused_with_a_reason(fields: dict[str, Any], fragment: str) -> None:
    assert fragment in refusal(SkuPolicy, policy(**fields))


def placed(customer: dict[str, Any]) -> dict[str, Any]:
    return {
        "order_id": "o1",
        "customer": {"id": "c1", "email": "ada@example.com", **customer},
        "lines": [{"line_id": "1", "sku": "MUG", "quantity": 2}],
        "placed_at": "2026-11-21T10:00:00+00:00",
    }


def test_a_shop_may_say_whether_the_customer_is_returning_but_only_as_true_or_false() -> None:
    assert OrderPlaced.model_validate(placed({"returning": False})).customer.returning is False
    assert OrderPlaced.model_validate(placed({})).customer.returning is None
    for bad in ("yes", "true", 1):
        assert "returning" in refusal(OrderPlaced, placed({"returning": bad}))


def waiting(*, incentive: str | None, status: str = "backordered") -> OrderStatusChanged:
    backordered = 2 if status == "backordered" else 0
    return OrderStatusChanged.model_validate(
        {
            "order_id": "o-1",
            "status": status,
            "version": 1,
            "occurred_at": NOW,
            "customer": {"id": "c-1", "email": "ada@example.com", "name": "Ada"},
            "lines": [
                {
                    "line_id": "1",
                    "sku": "LAMP",
                    "quantity": 2,
                    "allocated": 2 - backordered,
                    "backordered": backordered,
                    "rejected": 0,
                    "status": status,
                    **({"delay_incentive": incentive} if incentive else {}),
                }
            ],
        }
    )


def test_the_backordered_and_date_changed_mails_carry_the_incentive() -> None:
    latest = waiting(incentive=OFFER)
    for kind in (Kind.BACKORDERED, Kind.DATE_CHANGED):
        assert f"For your wait for LAMP: {OFFER}" in Templates().render(kind, latest, None).text


def test_no_incentive_is_mentioned_where_none_is_set_or_nothing_waits_any_more() -> None:
    plain = Templates().render(Kind.BACKORDERED, waiting(incentive=None), None).text
    assert "For your wait" not in plain
    # the picture of a filled line no longer carries it, and a ready mail would not show it
    ready = Templates().render(Kind.ALLOCATED, waiting(incentive=OFFER), None).text
    assert "For your wait" not in ready


def test_a_shops_own_lines_template_from_before_incentives_still_renders(tmp_path: Path) -> None:
    """BACKORDER_NOTIFY_TEMPLATES_DIR may hold a `_lines.txt` written before incentives
    existed: the incentive macro lives in a file of its own, so those mails still render."""
    (tmp_path / "email").mkdir()
    own = BUILT_IN / "email" / "_lines.txt"
    (tmp_path / "email" / "_lines.txt").write_text("{# the shop's #}\n" + own.read_text())
    templates = Templates(tmp_path)
    for kind in (Kind.BACKORDERED, Kind.DATE_CHANGED):
        text = templates.render(kind, waiting(incentive=OFFER), None).text
        assert f"For your wait for LAMP: {OFFER}" in text


def webhook_body(kind: Kind, latest: OrderStatusChanged) -> dict[str, Any]:
    settings = Settings(
        webhook_url="http://shop.example/hook",
        webhook_secret="s" * 16,
    )
    webhook = WebhookChannel(settings, httpx.AsyncClient())
    body = webhook.body(
        notification_id="n-1", kind=kind, latest=latest, rendered=Rendered("s", "t")
    )
    parsed: dict[str, Any] = json.loads(body)
    return parsed


def test_the_webhook_body_names_the_incentive_per_sku_and_leaves_it_out_otherwise() -> None:
    told = webhook_body(Kind.BACKORDERED, waiting(incentive=OFFER))
    assert told["delay_incentives"] == {"LAMP": OFFER}
    assert told["order"]["lines"][0]["delay_incentive"] == OFFER
    plain = webhook_body(Kind.BACKORDERED, waiting(incentive=None))
    assert "delay_incentives" not in plain
    assert "delay_incentive" not in plain["order"]["lines"][0]
    assert "delay_incentives" not in webhook_body(Kind.CANCELLED, waiting(incentive=OFFER))


def test_a_replay_that_changes_the_shops_word_on_the_customer_is_not_the_same_order() -> None:
    said = OrderPlaced.model_validate(placed({"returning": True}))
    order = Order.place(said)
    assert order.same_as(said)
    assert not order.same_as(OrderPlaced.model_validate(placed({"returning": False})))
    assert not order.same_as(OrderPlaced.model_validate(placed({})))


def test_pictures_say_nothing_new_about_customers_and_lines_where_nothing_was_set() -> None:
    quiet = waiting(incentive=None).model_dump(mode="json")
    assert "returning" not in quiet["customer"]
    assert "delay_incentive" not in quiet["lines"][0]


def test_the_default_setting_may_take_backorders_from_returning_customers_only() -> None:
    assert Settings(default_backorders="returning_customers").default_backorders == (
        "returning_customers"
    )
    columns = SkuBookRow.__table__.columns  # type: ignore[attr-defined]
    no_policy_of_its_own: dict[str, Any] = {c.name: None for c in columns} | {"alternatives": []}
    in_force = policy_in_force(no_policy_of_its_own, "returning_customers")
    assert (in_force.backorders_allowed, in_force.returning_customers_only) == (True, True)
    assert policy_in_force(no_policy_of_its_own, "allow") == Policy()
    assert not policy_in_force(no_policy_of_its_own, "deny").backorders_allowed


def test_a_stored_policy_reads_back_as_declared_also_as_the_migration_moved_it() -> None:
    declared = SkuPolicyFields(
        backorders="returning_customers",
        max_backorder_quantity=5,
        max_backorder_quantity_per_customer=2,
        max_wait=timedelta(days=14),
        aging=timedelta(hours=6),
        alternatives=["CUP"],
        delay_incentive=OFFER,
    )
    row = policy_columns(declared)
    assert (row["max_wait_seconds"], row["aging_seconds"]) == (14 * 86_400, 6 * 3_600)
    stored = {"policy": json.loads(json.dumps(row["policy"]))}
    assert policy_in_force(stored, "deny") == Policy.of(declared, default_backorders="deny")
    # the migration wrote the durations as seconds
    moved = {"policy": stored["policy"] | {"max_wait": 14 * 86_400.0, "aging": 21_600.0}}
    assert policy_in_force(moved, "deny") == policy_in_force(stored, "deny")
    assert policy_columns(None) == {"policy": None, "max_wait_seconds": None, "aging_seconds": None}

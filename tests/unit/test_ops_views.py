"""The views the look-up API answers and the command line shows: one shape for both."""

from datetime import UTC, datetime

from pydantic import SecretStr

from services.api.app import create_api
from services.ops.views import OrderLineView, OrderState, OrderView, QueuedLineView, SkuBook
from shared.contracts.policy import SkuPolicyFields
from shared.settings import Settings

PLACED = datetime(2026, 1, 2, 3, 4, tzinfo=UTC)


def book(backorders: str | None) -> SkuBook:
    waiting = QueuedLineView(
        position=1, order_id="o-1", line_id="1", quantity=3, allocated=1, waiting=2,
        placed_at=PLACED,
    )  # fmt: skip
    policy = (
        None if backorders is None else SkuPolicyFields.model_validate({"backorders": backorders})
    )
    return SkuBook(
        sku="MUG", available=0, received_total=1, policy=policy, queue=[waiting],
    )  # fmt: skip


def test_a_sku_without_a_policy_of_its_own_shows_the_default_in_force() -> None:
    assert book(None).in_force(default_backorders="allow").backorders == "allow"
    assert book("deny").in_force(default_backorders="allow").backorders == "deny"
    shown = book(None).in_force(default_backorders="allow")
    assert shown.queue == book(None).queue
    assert (shown.sku, shown.available, shown.received_total) == ("MUG", 0, 1)


def test_the_public_view_of_an_order_leaves_the_customer_out() -> None:
    line = OrderLineView(
        line_id="1", sku="MUG", quantity=3, allocated=1, backordered=2, rejected=0,
        status="partially_allocated", queue_position=1, eta=None, reason=None,
    )  # fmt: skip
    state = OrderState(
        order_id="o-1", status="partially_allocated", version=2, placed_at=PLACED,
        lines=[line], customer_email="ada@example.com",
    )  # fmt: skip
    public = state.public()
    assert type(public) is OrderView
    assert "ada@example.com" not in public.model_dump_json()
    assert public.lines == [line]


def test_the_api_documents_the_shared_views() -> None:
    api = create_api(Settings(api_token=SecretStr("t")))
    schemas = api.openapi()["components"]["schemas"]
    assert "customer_email" not in schemas["OrderView"]["properties"]
    assert schemas["SkuQueueView"]["properties"]["backorders"] == {
        "type": "string",
        "title": "Backorders",
    }
    assert "backorders" in schemas["SkuQueueView"]["required"]
    assert {
        "sku",
        "shortfall",
        "next_expected",
        "overdue_pos",
        "overdue_units",
        "overdue_since",
    } <= set(schemas["DemandRow"]["properties"])

"""What upstream may send: the checks that decide between processing and dead-lettering."""

import json
from datetime import timedelta
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from shared.contracts.inputs import CancelRequested, OrderPlaced, SkuPolicy, StockReceived
from shared.contracts.internal import AllocationCommand, SetSkuPolicy
from shared.contracts.outputs import OrderStatusChanged, OrderStatusChangedReadBack
from shared.contracts.policy import SkuPolicyFields
from shared.messaging.errors import poison_reason


def placed(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "order_id": "o1",
        "customer": {"id": "c1", "email": "ada@example.com"},
        "lines": [{"line_id": "1", "sku": "MUG", "quantity": 2}],
        "placed_at": "2026-11-21T10:00:00+00:00",
    }
    body.update(overrides)
    return body


def test_a_valid_order_parses() -> None:
    order = OrderPlaced.model_validate(placed())
    assert order.lines[0].quantity == 2


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (placed(lines=[{"line_id": "1", "sku": "MUG", "quantity": 0}]), "greater than 0"),
        (placed(lines=[{"line_id": "1", "sku": "MUG", "quantity": -3}]), "greater than 0"),
        (placed(lines=[{"line_id": "1", "sku": "MUG", "quantity": "2"}]), "valid integer"),
        (
            placed(lines=[{"line_id": "1", "sku": "A", "quantity": 1}] * 2),
            "duplicate line_id",
        ),
        (placed(order_id="x" * 129), "at most 128"),
        (placed(lines=[]), "at least 1"),
        (placed(placed_at="2026-11-21T10:00:00"), "UTC offset"),
        (placed(customer={"id": "c1", "email": "not-an-email"}), "email"),
    ],
)
def test_bad_orders_are_refused_with_a_readable_reason(body: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValidationError) as caught:
        OrderPlaced.model_validate(body)
    reason = poison_reason(caught.value)
    assert reason is not None and reason.startswith("schema violation")
    assert fragment in reason


def test_other_inputs_check_their_fields() -> None:
    with pytest.raises(ValidationError):
        StockReceived.model_validate(
            {"receipt_id": "r", "sku": "MUG", "quantity": 0, "received_at": "2026-11-21T10:00Z"}
        )
    with pytest.raises(ValidationError):
        SkuPolicy.model_validate({"sku": "MUG", "backorders": "maybe"})
    with pytest.raises(ValidationError):
        CancelRequested.model_validate({"order_id": "o1", "line_ids": ["1", "1"]})
    assert CancelRequested.model_validate({"order_id": "o1"}).line_ids is None


def test_a_policy_command_written_flat_is_read_as_the_policy_it_carried() -> None:
    """Commands from before the policy was nested may still wait in the topic, an outbox or a
    dead-letter topic when this version starts."""
    flat = {
        "type": "set-policy",
        "sku": "MUG",
        "backorders": "allow",
        "max_backorder_quantity": 10,
        "max_backorder_quantity_per_customer": None,
        "max_wait_seconds": 14 * 86400.0,
        "aging_seconds": 3600.0,
        "alternatives": ["CUP"],
        "delay_incentive": "10% off",
    }
    nested = SetSkuPolicy(
        sku="MUG",
        policy=SkuPolicyFields(
            backorders="allow",
            max_backorder_quantity=10,
            max_wait=timedelta(days=14),
            aging=timedelta(hours=1),
            alternatives=["CUP"],
            delay_incentive="10% off",
        ),
    )
    commands: TypeAdapter[AllocationCommand] = TypeAdapter(AllocationCommand)
    assert commands.validate_json(json.dumps(flat)) == nested
    assert commands.validate_json(nested.model_dump_json()) == nested
    deleted: dict[str, Any] = {"type": "set-policy", "sku": "MUG", "backorders": None}
    assert commands.validate_python(deleted) == SetSkuPolicy(sku="MUG", policy=None)
    with pytest.raises(ValidationError):
        commands.validate_python({"type": "set-policy", "sku": "MUG"})


def test_a_policy_says_discontinued_with_true_or_false_only() -> None:
    body = {"sku": "MUG", "backorders": "allow"}
    assert not SkuPolicy.model_validate(body).discontinued
    assert SkuPolicy.model_validate(body | {"discontinued": True}).discontinued
    for said in ("true", 1):
        with pytest.raises(ValidationError):
            SkuPolicy.model_validate(body | {"discontinued": said})


class _DatabaseSays(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    ("sqlstate", "transient"),
    [
        ("08006", True),  # connection failure
        ("40001", True),  # serialization failure
        ("40P01", True),  # deadlock
        ("53100", True),  # disk full
        ("53200", True),  # out of memory
        ("57P01", True),  # admin shutdown
        ("57P02", True),  # crash of another backend
        ("25006", True),  # read-only transaction after a failover
        ("23505", False),  # unique violation: a bug or bad data, not the weather
        ("42P01", False),  # undefined table
    ],
)
def test_database_conditions_are_retried_and_statement_errors_are_not(
    sqlstate: str, transient: bool
) -> None:
    from sqlalchemy.exc import DBAPIError

    from shared.messaging.errors import is_transient

    wrapped = DBAPIError("statement", {}, _DatabaseSays(sqlstate))
    assert is_transient(wrapped) is transient


def _untitled(schema: object) -> object:
    """A JSON Schema without the names and prose that differ between a model and its variant."""
    if isinstance(schema, dict):
        return {
            key: _untitled(value)
            for key, value in schema.items()
            if key not in {"title", "description", "$ref", "$defs"}
        }
    if isinstance(schema, list):
        return [_untitled(item) for item in schema]
    return schema


def test_the_status_change_read_back_is_the_published_contract() -> None:
    """The notifier reads orders.status-changed through a variant that skips the e-mail check
    made at intake: the same schema, field for field, and the same message once read."""
    published = OrderStatusChanged.model_json_schema()
    read_back = OrderStatusChangedReadBack.model_json_schema()
    assert _untitled(read_back) == _untitled(published)
    assert sorted(map(repr, map(_untitled, read_back["$defs"].values()))) == sorted(
        map(repr, map(_untitled, published["$defs"].values()))
    )
    message = {
        "order_id": "o-1", "status": "backordered", "version": 3, "reason": None,
        "occurred_at": "2026-12-07T20:00:00Z", "priority": "standard",
        "customer": {"id": "c-1", "email": "alice@example.com", "name": "Alice"},
        "lines": [{"line_id": "1", "sku": "MUG", "quantity": 2, "allocated": 0,
                   "backordered": 2, "rejected": 0, "status": "backordered",
                   "queue_position": 5}],
    }  # fmt: skip
    assert OrderStatusChangedReadBack.model_validate(message).model_dump(
        mode="json"
    ) == OrderStatusChanged.model_validate(message).model_dump(mode="json")

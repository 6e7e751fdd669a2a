"""The input bounds the README promises: characters, durations, instants and event ids."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from shared.contracts.common import MAX_DURATION
from shared.contracts.headers import event_id
from shared.contracts.inputs import CancelRequested, OrderPlaced, RestockScheduled, SkuPolicy
from shared.messaging.errors import poison_reason


def placed(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "order_id": "o1",
        "customer": {"id": "c1", "email": "ada@example.com", "name": "Ada"},
        "lines": [{"line_id": "1", "sku": "MUG", "quantity": 2}],
        "placed_at": "2026-11-21T10:00:00+00:00",
    }
    body.update(overrides)
    return body


def refusal(model: Any, body: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(body)
    reason = poison_reason(caught.value)
    assert reason is not None
    return reason


@pytest.mark.parametrize(
    ("bad", "fragment"),
    [
        ("\x00", "control character U+0000"),
        ("\x1f", "control character U+001F"),
        ("\x7f", "control character U+007F"),
        ("\x85", "control character U+0085"),
        ("\ud800", "unicode string"),  # a lone surrogate cannot be encoded at all
    ],
)
def test_identifiers_with_control_characters_are_refused(bad: str, fragment: str) -> None:
    assert fragment in refusal(OrderPlaced, placed(order_id=f"o{bad}1"))
    line = {"line_id": f"1{bad}1", "sku": "MUG", "quantity": 1}
    assert fragment in refusal(OrderPlaced, placed(lines=[line]))
    line = {"line_id": "1", "sku": f"M{bad}UG", "quantity": 1}
    assert fragment in refusal(OrderPlaced, placed(lines=[line]))


def test_free_text_refuses_nul_but_keeps_line_breaks_and_other_scripts() -> None:
    reason = refusal(CancelRequested, {"order_id": "o1", "reason": "changed\x00my mind"})
    assert "control character" in reason
    kept = CancelRequested.model_validate({"order_id": "o1", "reason": "zu spät\n\tdanke 🙂"})
    assert kept.reason == "zu spät\n\tdanke 🙂"
    assert "control character" in refusal(
        OrderPlaced, placed(customer={"id": "c1", "email": "a@example.com", "name": "A\x00"})
    )


def test_durations_are_bounded() -> None:
    reason = refusal(SkuPolicy, {"sku": "MUG", "backorders": "allow", "max_wait": "P9999999D"})
    assert "at most" in reason
    assert SkuPolicy.model_validate(
        {"sku": "MUG", "backorders": "allow", "max_wait": "P365D"}
    ).max_wait == timedelta(days=365)
    limit = MAX_DURATION + timedelta(days=1)
    assert "at most" in refusal(
        SkuPolicy, {"sku": "MUG", "backorders": "allow", "max_wait": limit.total_seconds()}
    )


def test_timestamps_are_one_instant_whatever_the_offset() -> None:
    here = OrderPlaced.model_validate(placed(placed_at="2026-11-21T12:00:00+02:00"))
    there = OrderPlaced.model_validate(placed(placed_at="2026-11-21T10:00:00Z"))
    assert here.placed_at == there.placed_at
    assert here.placed_at.utcoffset() == timedelta(0)
    restock = RestockScheduled.model_validate(
        {"po_id": "p", "sku": "MUG", "quantity": 1, "expected_at": "2026-12-01T00:30+02:00"}
    )
    assert restock.expected_at == datetime(2026, 11, 30, 22, 30, tzinfo=UTC)


def test_event_ids_of_different_causes_never_collide() -> None:
    # With a separator character, these two causes used to be one string.
    assert event_id("allocate", "o\x1f1", "2") != event_id("allocate", "o", "1\x1f2")
    assert event_id("a", "bc") != event_id("ab", "c")
    assert event_id("allocate", "o", "1") == event_id("allocate", "o", "1")


def test_a_word_is_applied_only_when_newer_than_the_one_applied_last() -> None:
    from shared.messaging.position import SourcePosition

    applied = SourcePosition(partition=0, offset=10, timestamp_ms=1_000)
    assert SourcePosition(partition=0, offset=11, timestamp_ms=1_000).supersedes(applied)
    assert not SourcePosition(partition=0, offset=10, timestamp_ms=1_000).supersedes(applied)
    assert not SourcePosition(partition=0, offset=9, timestamp_ms=999).supersedes(applied)
    # another partition (a purchase order moved to another SKU): the timestamp decides
    assert SourcePosition(partition=2, offset=0, timestamp_ms=1_001).supersedes(applied)
    assert not SourcePosition(partition=2, offset=99, timestamp_ms=999).supersedes(applied)
    # a recreated topic starts at offset 0 again, later in time
    assert SourcePosition(partition=0, offset=0, timestamp_ms=5_000).supersedes(applied)
    assert SourcePosition(partition=0, offset=0, timestamp_ms=0).supersedes(None)

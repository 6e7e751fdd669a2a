"""Every order that is accepted publishes pictures that every consumer accepts."""

from datetime import UTC, datetime
from typing import Any

from services.order.domain.fitting import HEADROOM_BYTES, fitted, size, worst_case
from shared.contracts.inputs import OrderPlaced
from shared.contracts.outputs import OrderStatusChanged
from shared.settings import Settings

LIMIT = Settings().max_message_bytes - HEADROOM_BYTES
WIDE = "\U0001f4e6"  # four bytes in UTF-8


def order(line_ids: list[str], skus: list[str]) -> OrderPlaced:
    return OrderPlaced.model_validate(
        {
            "order_id": WIDE * 128,
            "customer": {"id": WIDE * 128, "email": "ada@example.com", "name": WIDE * 500},
            "lines": [
                {"line_id": line_id, "sku": sku, "quantity": 1_000_000}
                for line_id, sku in zip(line_ids, skus, strict=True)
            ],
            "placed_at": "2026-11-21T10:00:00Z",
        }
    )


def waiting_picture(placed: OrderPlaced, **line: Any) -> OrderStatusChanged:
    return OrderStatusChanged.model_validate(
        {
            "order_id": placed.order_id,
            "status": "backordered",
            "version": 3,
            "occurred_at": datetime.now(UTC),
            "customer": placed.customer.model_dump(),
            "lines": [
                {
                    "line_id": ln.line_id,
                    "sku": ln.sku,
                    "quantity": ln.quantity,
                    "allocated": 0,
                    "backordered": ln.quantity,
                    "rejected": 0,
                    "status": "backordered",
                    "queue_position": 123_456,
                    "eta": datetime.now(UTC),
                    "eta_change": "delayed",
                    **line,
                }
                for ln in placed.lines
            ],
        }
    )


def test_an_order_whose_state_alone_could_outgrow_the_limit_is_refused_at_intake() -> None:
    hostile = order([f"{i:03}" + WIDE * 125 for i in range(200)], [WIDE * 64] * 200)
    assert size(worst_case(hostile)) > LIMIT


def test_a_large_accepted_order_sheds_offers_then_long_reasons_but_never_state() -> None:
    ids = [f"{i:08x}-0000-4000-8000-000000000000" for i in range(200)]
    placed = order(ids, [f"SKU-{i:04}-" + "x" * 54 for i in range(200)])
    assert size(worst_case(placed)) <= LIMIT
    offers = [f"{n:02}" + WIDE * 62 for n in range(20)]
    full = waiting_picture(placed, alternatives=offers, reason=WIDE * 500)
    assert size(full) > 1_000_000
    kept = fitted(full, limit=LIMIT)
    assert size(kept) <= LIMIT
    assert [ln.alternatives for ln in kept.lines] == [[]] * 200
    assert all(ln.reason is not None and len(ln.reason) == 120 for ln in kept.lines)
    assert all((ln.reason or "").endswith("…") for ln in kept.lines)
    state = ("line_id", "sku", "quantity", "allocated", "backordered", "status", "eta")
    assert [[getattr(ln, f) for f in state] for ln in kept.lines] == [
        [getattr(ln, f) for f in state] for ln in full.lines
    ]


def test_offers_alone_are_shed_when_that_is_enough_and_a_small_picture_is_untouched() -> None:
    placed = order([str(i) for i in range(200)], [f"SKU-{i}" for i in range(200)])
    offers = [f"ALT-{n}-" + "y" * 50 for n in range(20)]
    full = waiting_picture(placed, alternatives=offers, reason="changed my mind")
    kept = fitted(full, limit=LIMIT)
    assert [ln.reason for ln in kept.lines] == ["changed my mind"] * 200
    assert all(ln.alternatives == [] for ln in kept.lines)
    small = waiting_picture(order(["1"], ["MUG"]), alternatives=offers)
    assert fitted(small, limit=LIMIT) is small

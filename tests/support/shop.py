"""What an upstream shop sends, with unique ids per test instead of clean-up."""

import uuid
from datetime import UTC, datetime
from typing import Any


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def customer_email(order_id: str) -> str:
    """Each order's customer has an address of their own, so a test can read their mail."""
    return f"{order_id}@shop.example"


def order_placed(
    order_id: str, *lines: tuple[str, int], email: str | None = None, priority: str | None = None
) -> dict[str, Any]:
    return ({"priority": priority} if priority else {}) | {
        "order_id": order_id,
        "customer": {
            "id": "c-" + order_id,
            "email": email or customer_email(order_id),
            "name": "Ada",
        },
        "lines": [
            {"line_id": str(i), "sku": sku, "quantity": quantity}
            for i, (sku, quantity) in enumerate(lines, start=1)
        ],
        "placed_at": datetime.now(UTC).isoformat(),
    }


def stock_received(receipt_id: str, sku: str, quantity: int) -> dict[str, Any]:
    return {
        "receipt_id": receipt_id,
        "sku": sku,
        "quantity": quantity,
        "received_at": datetime.now(UTC).isoformat(),
    }

"""An order's picture within the size every consumer of `orders.status-changed` accepts. No I/O.

A picture repeats per line what the input said once (a cancel's reason on every line it
cancels, a SKU's alternatives on every waiting line of that SKU), so an accepted order could
otherwise publish a picture many times its own size. Two rules keep it within the limit:

- intake refuses an order whose state alone could outgrow it (`worst_case`);
- publishing sheds what is not state when the full picture is too large (`fitted`): first the
  offers (alternatives and delay incentives), then each reason beyond `REASON_BRIEF` characters.
"""

from collections.abc import Iterable
from datetime import UTC, datetime

from shared.contracts.inputs import Customer, OrderPlaced
from shared.contracts.outputs import OrderLineState, OrderStatusChanged
from shared.priority import TIER_NAME_LENGTH

# Room left under the consumers' message limit for headers (a dead letter adds its own).
HEADROOM_BYTES = 16_384
REASON_BRIEF = 120
_ELLIPSIS = "…"


def size(picture: OrderStatusChanged) -> int:
    return len(picture.model_dump_json().encode())


def fitted(picture: OrderStatusChanged, *, limit: int) -> OrderStatusChanged:
    """The picture itself when it fits; else the same state with less said about it."""
    if size(picture) <= limit:
        return picture
    without_offers = _with_lines(
        picture,
        [
            line.model_copy(update={"alternatives": [], "substitutes": [], "delay_incentive": None})
            for line in picture.lines
        ],
    )
    if size(without_offers) <= limit:
        return without_offers
    brief = [
        line.model_copy(update={"reason": _brief(line.reason)}) for line in without_offers.lines
    ]
    return _with_lines(without_offers, brief, reason=_brief(picture.reason))


def worst_case(placed: OrderPlaced) -> OrderStatusChanged:
    """The largest picture this order can publish once fitted: every line waiting with a
    date that moved, the largest numbers, and a brief reason of the widest characters."""
    return worst_case_of(
        placed.order_id,
        placed.customer,
        ((line.line_id, line.sku, line.quantity) for line in placed.lines),
    )


def worst_case_of(
    order_id: str, customer: Customer, lines: Iterable[tuple[str, str, int]]
) -> OrderStatusChanged:
    """The largest fitted picture of an order with these (line id, SKU, quantity) lines: what
    a substitution, which adds a line, is checked against too."""
    widest = "\U0001f4e6" * REASON_BRIEF  # four bytes each in UTF-8, never escaped in JSON
    states = [
        OrderLineState(
            line_id=line_id,
            sku=sku,
            quantity=quantity,
            allocated=quantity,
            backordered=quantity,
            rejected=quantity,
            status="partially_allocated",
            queue_position=10**15,
            eta=datetime.max.replace(tzinfo=UTC),
            eta_change="delayed",
            reason=widest,
        )
        for line_id, sku, quantity in lines
    ]
    return OrderStatusChanged(
        order_id=order_id,
        status="partially_allocated",
        version=10**15,
        lines=states,
        reason=widest,
        occurred_at=datetime.max.replace(tzinfo=UTC),
        customer=customer,
        priority="w" * TIER_NAME_LENGTH,
    )


def _brief(reason: str | None) -> str | None:
    if reason is None or len(reason) <= REASON_BRIEF:
        return reason
    return reason[: REASON_BRIEF - 1] + _ELLIPSIS


def _with_lines(
    picture: OrderStatusChanged, lines: list[OrderLineState], **more: object
) -> OrderStatusChanged:
    return picture.model_copy(update={"lines": lines, **more})

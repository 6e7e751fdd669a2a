"""What to tell a customer, and when to try again: pure, no I/O.

A notification compares the newest picture of an order with the last one the customer was
actually told about, so a burst of versions becomes one message about the latest state.
"""

import random
from enum import StrEnum

from shared.contracts.outputs import EtaChange, OrderLineState, OrderStatusChanged, eta_change


class Kind(StrEnum):
    BACKORDERED = "backordered"
    DATE_CHANGED = "date_changed"
    PARTLY_FILLED = "partly_filled"
    ALLOCATED = "allocated"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    EXPIRED = "expired"
    SUBSTITUTED = "substituted"


# Statuses after which the order does not change any more: each is told once.
_FINAL = {
    "allocated": Kind.ALLOCATED,
    "cancelled": Kind.CANCELLED,
    "rejected": Kind.REJECTED,
    "expired": Kind.EXPIRED,
    "substituted": Kind.SUBSTITUTED,
}
_CLOSED_LINE = {
    "cancelled": Kind.CANCELLED,
    "expired": Kind.EXPIRED,
    "rejected": Kind.REJECTED,
    "substituted": Kind.SUBSTITUTED,
}


def classify(told: OrderStatusChanged | None, latest: OrderStatusChanged) -> Kind | None:
    """The news in `latest` for someone who last heard `told`; None when there is none.

    A line that closed (cancelled, expired, rejected), or units refused, are news even when the
    rest of the order is ready to ship, and even when it already was: "ready to ship" alone
    would hide a refund the customer is owed.
    """
    if told is not None and told.status == latest.status and latest.status in _CLOSED_LINE:
        return None
    if latest.status in _CLOSED_LINE:
        return _FINAL[latest.status]
    closed = _newly_closed(told, latest)
    if closed is not None:
        return closed
    if latest.status == "allocated":
        return None if told is not None and told.status == "allocated" else Kind.ALLOCATED
    if told is None:
        return Kind.BACKORDERED
    if _allocated(latest) > _allocated(told):
        return Kind.PARTLY_FILLED
    if date_moves(told, latest):
        return Kind.DATE_CHANGED
    return None


def _newly_closed(told: OrderStatusChanged | None, latest: OrderStatusChanged) -> Kind | None:
    """The first line that closed, had units refused or swapped at the customer's request,
    since the customer was told."""
    before = {line.line_id: line for line in told.lines} if told else {}
    for line in latest.lines:
        earlier = before.get(line.line_id)
        if line.status in _CLOSED_LINE and (earlier is None or earlier.status != line.status):
            return _CLOSED_LINE[line.status]
        if line.substituted > (earlier.substituted if earlier else 0):
            return Kind.SUBSTITUTED
        if line.rejected > (earlier.rejected if earlier else 0):
            return Kind.REJECTED
    return None


def date_moves(told: OrderStatusChanged | None, latest: OrderStatusChanged) -> dict[str, EtaChange]:
    """How each waiting line's expected date moved since the customer was last told."""
    before: dict[str, OrderLineState] = {line.line_id: line for line in told.lines} if told else {}
    moves: dict[str, EtaChange] = {}
    for line in latest.lines:
        if not line.backordered or line.status in _CLOSED_LINE:
            continue
        earlier = before.get(line.line_id)
        move = eta_change(earlier.eta if earlier else None, line.eta)
        if move:
            moves[line.line_id] = move
    return moves


_SEVERITY: tuple[EtaChange, ...] = ("delayed", "cleared", "earlier", "set")


def headline_move(moves: dict[str, EtaChange]) -> EtaChange | None:
    """The one word a subject line can carry: any delay outweighs better news."""
    return next((move for move in _SEVERITY if move in moves.values()), None)


# The notices about a wait, where the shop's offer for the wait belongs.
_ABOUT_A_WAIT = (Kind.BACKORDERED, Kind.DATE_CHANGED)


def delay_incentives(kind: Kind, latest: OrderStatusChanged) -> dict[str, str]:
    """Per SKU still awaited, the incentive its policy offers for the wait: only in notices
    about a wait, and empty when no policy offers one."""
    if kind not in _ABOUT_A_WAIT:
        return {}
    return {
        line.sku: line.delay_incentive
        for line in latest.lines
        if line.delay_incentive and line.backordered and line.status not in _CLOSED_LINE
    }


def _allocated(picture: OrderStatusChanged) -> int:
    return sum(line.allocated for line in picture.lines)


def retry_delay(
    attempt: int, *, initial: float, maximum: float, rng: random.Random | None = None
) -> float:
    """Exponential backoff with jitter: half fixed, half random, so retries spread out."""
    ceiling: float = min(maximum, initial * 2.0 ** max(0, attempt - 1))
    jitter: float = (rng or random).random()
    return ceiling / 2 + jitter * ceiling / 2

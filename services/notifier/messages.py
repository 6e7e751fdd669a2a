"""What a customer reads about an order's new state. Pure text composition, no I/O."""

from shared.contracts.outputs import OrderLineState, OrderStatusChanged

_SUBJECTS = {
    "allocated": "Your order {order_id} is ready to ship",
    "partially_allocated": "Part of your order {order_id} is reserved",
    "backordered": "Your order {order_id} is backordered",
    "rejected": "We could not accept your order {order_id}",
    "cancelled": "Your order {order_id} was cancelled",
}


def _describe(line: OrderLineState) -> str:
    text = f"{line.quantity} x {line.sku}: {line.allocated} reserved"
    if line.backordered:
        text += f", {line.backordered} waiting"
        if line.queue_position:
            text += f" (position {line.queue_position} in line)"
        text += f", expected {line.eta:%Y-%m-%d}" if line.eta else ", no date yet"
        if line.eta_change == "delayed":
            text += " (later than we said before)"
        elif line.eta_change == "earlier":
            text += " (sooner than we said before)"
    if line.rejected:
        text += f", {line.rejected} not accepted"
    if line.status == "cancelled":
        text = f"{line.quantity} x {line.sku}: cancelled"
    if line.reason:
        text += f" ({line.reason})"
    return text


def compose(change: OrderStatusChanged) -> tuple[str, str]:
    moves = {line.eta_change for line in change.lines}
    if "delayed" in moves:
        subject = f"Your order {change.order_id} is delayed"
    elif "earlier" in moves:
        subject = f"Your order {change.order_id} is expected sooner"
    else:
        subject = _SUBJECTS[change.status].format(order_id=change.order_id)
    lines = "\n".join(f"- {_describe(line)}" for line in change.lines)
    reason = f"\nReason: {change.reason}" if change.reason else ""
    return subject, f"{subject}.{reason}\n{lines}\n"

"""Order use cases. Each runs in one unit of work, on orders its batch locked and read."""

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from services.order.domain import fitting
from services.order.domain.customers import is_returning
from services.order.domain.model import Order, OrderLine, SubstitutionRefused
from services.order.tables import PendingCancellationRow
from services.order.unit_of_work import OrderWork
from shared.contracts.headers import event_id
from shared.contracts.inputs import CancelRequested, OrderPlaced, SubstitutionRequested
from shared.contracts.internal import (
    AllocateLine,
    CancelLine,
    LineAllocationChanged,
    SubstituteLine,
)
from shared.contracts.outputs import OrderStatusChanged
from shared.contracts.topics import (
    ALLOCATION_COMMANDS,
    ORDERS_CANCEL_REQUESTED,
    ORDERS_STATUS_CHANGED,
)
from shared.db.tables import decode_headers, encode_headers
from shared.messaging.dead_letter import dead_letter_headers
from shared.messaging.errors import PoisonMessage
from shared.priority import PriorityTiers

CONSUMER = "order"


async def place_order(
    placed: OrderPlaced,
    *,
    uow: OrderWork,
    picture_limit: int,
    tiers: PriorityTiers = PriorityTiers(),
) -> None:
    orders = uow.orders
    existing = await orders.get(placed.order_id)
    if existing is not None:
        if existing.same_as(placed):
            return
        raise PoisonMessage(
            f"conflict: order {placed.order_id} was already placed with a different payload"
        )
    largest = fitting.size(fitting.worst_case(placed))
    if largest > picture_limit:
        raise PoisonMessage(
            f"order too large: its status could take {largest} bytes, over the limit of "
            f"{picture_limit}; split it into smaller orders"
        )
    rank = tiers.rank_of(placed.priority)
    if rank is None:
        raise PoisonMessage(
            f"unknown priority tier {placed.priority!r}: this shop's tiers are "
            f"{', '.join(tiers.names)}"
        )
    order = Order.place(placed)
    orders.place(order)
    returning = is_returning(
        shop_says=placed.customer.returning,
        bought_here_before=await orders.bought_before(placed.customer.id),
    )
    for early in await orders.early_cancels(order.order_id):
        unknown = order.unknown_lines(early.line_ids)
        if unknown:
            _dead_letter_cancellation(
                uow, early, f"order {order.order_id} has no line(s) {', '.join(unknown)}"
            )
        else:
            order.cancel_before_allocation(early.line_ids, early.reason)
    _request_allocation(
        uow,
        order,
        [line for line in order.lines if line.status is None],
        returning=returning,
        rank=rank,
    )
    _publish_if_changed(uow, order, picture_limit=picture_limit, tiers=tiers)


def _request_allocation(
    uow: OrderWork, order: Order, lines: list[OrderLine], *, returning: bool, rank: int
) -> None:
    for line in lines:
        uow.publish(
            topic=ALLOCATION_COMMANDS.name,
            key=line.sku,
            event=AllocateLine(
                order_id=order.order_id,
                line_id=line.line_id,
                sku=line.sku,
                quantity=line.quantity,
                customer_id=order.customer.id,
                returning_customer=returning,
                priority=order.priority,
                rank=rank,
            ),
            event_type="AllocateLine",
            event_id=event_id(CONSUMER, "allocate", order.order_id, line.line_id),
            correlation_id=order.order_id,
        )


async def request_cancellation(
    request: CancelRequested,
    *,
    uow: OrderWork,
    cause: str,
    requested_at: datetime,
    key: bytes | None,
    value: bytes,
    headers: Sequence[tuple[str, bytes]],
) -> None:
    orders = uow.orders
    order = await orders.get(request.order_id)
    if order is None:
        await orders.remember_cancellation(
            PendingCancellationRow(
                fingerprint=hashlib.sha256((key or b"") + b"\x00" + value).hexdigest(),
                cause=cause,
                order_id=request.order_id,
                line_ids=request.line_ids,
                reason=request.reason,
                received_at=datetime.now(UTC),
                requested_at=requested_at,
                key=key,
                value=value,
                headers=encode_headers(headers),
            ),
        )
        return
    unknown = order.unknown_lines(request.line_ids)
    if unknown:
        raise PoisonMessage(f"order {order.order_id} has no line(s) {', '.join(unknown)}")
    lines = order.request_cancel(request.line_ids, request.reason)
    if lines:
        orders.changed(order)
    for line in lines:
        uow.publish(
            topic=ALLOCATION_COMMANDS.name,
            key=line.sku,
            event=CancelLine(
                order_id=order.order_id, line_id=line.line_id, sku=line.sku, reason=request.reason
            ),
            event_type="CancelLine",
            # A line is cancelled at most once: repeated cancels are the same event.
            event_id=event_id(CONSUMER, "cancel", order.order_id, line.line_id),
            correlation_id=order.order_id,
        )


async def request_substitution(
    request: SubstitutionRequested, *, uow: OrderWork, picture_limit: int
) -> None:
    """Checked against what the order was last told; the line's SKU book then closes its
    waiting part, and that news requests the line for the alternative (`record_allocation`).
    An unknown order is dead-lettered at once: a customer learns that a line waits, and
    which alternatives it has, only from a version this service published of a stored order."""
    order = await uow.orders.get(request.order_id)
    if order is None:
        raise PoisonMessage(f"unknown order {request.order_id}")
    try:
        line = order.line_to_substitute(request.line_id, request.sku, picture_limit=picture_limit)
    except SubstitutionRefused as refused:
        raise PoisonMessage(str(refused)) from None
    if line is None:
        return
    uow.publish(
        topic=ALLOCATION_COMMANDS.name,
        key=line.sku,
        event=SubstituteLine(
            order_id=order.order_id,
            line_id=line.line_id,
            sku=line.sku,
            substitute=request.sku,
            reason=request.reason,
        ),
        event_type="SubstituteLine",
        event_id=event_id(CONSUMER, "substitute", order.order_id, line.line_id, request.sku),
        correlation_id=order.order_id,
    )


async def open_for_allocation_news(
    changes: Sequence[LineAllocationChanged], *, uow: OrderWork
) -> None:
    """Locks and reads a batch's orders, and asks once whether the customers of those that
    take a substitute bought here before: each answer is then the same as if its news had
    come alone (see `OrdersRepository.read_purchases`)."""
    orders = uow.orders
    await orders.open([change.order_id for change in changes])
    substituting = {change.order_id for change in changes if change.substituted_by}
    await orders.read_purchases(order.customer.id for order in await orders.opened(substituting))


async def record_allocation(
    change: LineAllocationChanged,
    *,
    uow: OrderWork,
    picture_limit: int,
    tiers: PriorityTiers = PriorityTiers(),
) -> None:
    orders = uow.orders
    order = await orders.get(change.order_id)
    if order is None:
        raise PoisonMessage(f"allocation news for unknown order {change.order_id}")
    known = len(order.lines)
    if order.apply(change):
        orders.changed(order)
        # A substitute of a line the customer cancelled meanwhile is born cancelled.
        substitutes = [line for line in order.lines[known:] if line.status is None]
        if substitutes:
            # The order itself does not make its customer returning for its own new line.
            returning = is_returning(
                shop_says=order.customer.returning,
                bought_here_before=await orders.bought_before(
                    order.customer.id, besides=order.order_id
                ),
            )
            # A tier the shop no longer configures waits in the default one.
            rank = tiers.rank_of(order.priority) or 0
            _request_allocation(uow, order, substitutes, returning=returning, rank=rank)
        _publish_if_changed(uow, order, picture_limit=picture_limit, tiers=tiers)


async def cancellations_overdue(*, uow: OrderWork, waited: timedelta) -> bool:
    """Whether any early cancel has waited longer than `waited` by the wall clock: only then
    is it worth asking how far the orders' consumer has read."""
    return await uow.orders.any_cancellation_overdue(before=datetime.now(UTC) - waited)


async def dead_letter_expired_cancellations(
    *, uow: OrderWork, waited: timedelta, orders_read_until: datetime
) -> int:
    """Dead-letters the early cancels whose order did not arrive: requested more than `waited`
    before the time up to which every order published has been read (the shop's clock), and
    received more than `waited` ago (this service's clock, in case the shop's runs late)."""
    rows = await uow.orders.take_overdue_cancellations(
        requested_before=orders_read_until - waited,
        received_before=datetime.now(UTC) - waited,
        limit=100,
    )
    for row in rows:
        reason = f"order {row.order_id} did not arrive within {waited.total_seconds():g}s"
        _dead_letter_cancellation(uow, row, reason)
    return len(rows)


def _dead_letter_cancellation(uow: OrderWork, row: PendingCancellationRow, reason: str) -> None:
    topic, partition, offset = row.cause.rsplit("/", 2)
    uow.publish_raw(
        topic=ORDERS_CANCEL_REQUESTED.dlq,
        key=row.key,
        value=row.value,
        headers=dead_letter_headers(
            decode_headers(row.headers),
            reason=reason,
            topic=topic,
            partition=int(partition),
            offset=int(offset),
        ),
    )


def _publish_if_changed(
    uow: OrderWork, order: Order, *, picture_limit: int, tiers: PriorityTiers
) -> None:
    picture = order.next_picture()
    if picture is None:
        return
    event = OrderStatusChanged(
        order_id=order.order_id,
        status=picture.status,
        version=order.version,
        reason=picture.reason,
        lines=list(picture.lines),
        occurred_at=datetime.now(UTC),
        customer=order.customer,
        priority=tiers.served(order.priority),
    )
    uow.publish(
        topic=ORDERS_STATUS_CHANGED.name,
        key=order.order_id,
        event=fitting.fitted(event, limit=picture_limit),
        event_type="OrderStatusChanged",
        event_id=event_id(CONSUMER, "status", order.order_id, str(order.version)),
        correlation_id=order.order_id,
    )

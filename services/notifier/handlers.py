"""Notifier use cases: take in an order's new picture; claim, then settle, one notification.

Sending happens between `claim` and `settle`, outside any transaction: a claim commits the
content and marks it in flight, so a crash mid-send leaves a row that is sent again, with the
same id, once its lease runs out.
"""

import json
import logging
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlmodel.ext.asyncio.session import AsyncSession

from services.notifier import repository
from services.notifier.channels import Channel, DeliveryFailed, Outgoing
from services.notifier.domain.model import classify, retry_delay
from services.notifier.rendering import Templates
from services.notifier.tables import OPEN_STATUSES, NotificationRow
from shared.contracts.headers import (
    CORRELATION_ID,
    DLQ_ORIGINAL_TOPIC,
    DLQ_REASON,
    EVENT_ID,
    EVENT_TYPE,
    NOTIFICATION_CHANNEL,
    NOTIFICATION_ID,
    event_id,
)
from shared.contracts.outputs import OrderStatusChanged
from shared.contracts.topics import ORDERS_STATUS_CHANGED
from shared.db.unit_of_work import UnitOfWork
from shared.messaging.errors import PoisonMessage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeliveryRules:
    max_attempts: int
    retry_initial_seconds: float
    retry_max_seconds: float
    # How long a claimed notification may be in flight before it counts as lost.
    lease_seconds: float
    # How long a notification waits behind an earlier one of the same order still in flight.
    wait_behind_seconds: float


async def take_changes(
    changes: Sequence[OrderStatusChanged],
    *,
    uow: UnitOfWork,
    channels: Iterable[str],
    window: float,
) -> int:
    """Keeps each order's newest picture and makes sure a notification per channel is
    gathering it; a picture no newer than the one kept changes nothing. A batch takes four
    statements, whatever its size. Returns how many orders had news."""
    newest: dict[str, OrderStatusChanged] = {}
    for change in changes:
        kept = newest.get(change.order_id)
        if kept is None or change.version > kept.version:
            newest[change.order_id] = change
    if not newest:
        return 0
    session = uow.session
    await repository.lock_orders(session, newest)
    known = await repository.versions(session, list(newest))
    news = [c for c in newest.values() if c.version > known.get(c.order_id, 0)]
    now = datetime.now(UTC)
    await repository.remember(session, news, now=now)
    await repository.schedule(
        session,
        order_ids=[change.order_id for change in news],
        channels=list(channels),
        due=now + timedelta(seconds=window),
        now=now,
    )
    return len(news)


async def send_again(notification_id: str, *, uow: UnitOfWork) -> bool:
    """An operator replayed a failed notification's dead letter: it gets a fresh set of tries."""
    try:
        key = uuid.UUID(notification_id)
    except ValueError:
        raise PoisonMessage(f"{NOTIFICATION_ID} header is not a notification id") from None
    row = await repository.get_for_update(uow.session, key)
    if row is None or row.status != "failed":
        return False
    told = await repository.last_told(uow.session, order_id=row.order_id, channel=row.channel)
    if told is not None and (told.version or 0) > (row.version or 0):
        log.warning("not resending %s: the customer has since been told something newer", key)
        return False
    row.status, row.attempts = "retrying", 0
    row.next_attempt_at = row.updated_at = datetime.now(UTC)
    return True


@dataclass(frozen=True)
class Claimed:
    channel: str
    outgoing: Outgoing | None  # None: nothing to send (skipped)
    # Which attempt this is: only its own outcome may settle it.
    attempt: int = 0


async def claim(
    notification_id: uuid.UUID,
    order_id: str,
    *,
    uow: UnitOfWork,
    channels: Mapping[str, Channel],
    templates: Templates,
    rules: DeliveryRules,
) -> Claimed | None:
    """Fixes a due notification's content and marks it in flight; None if it is not ours now."""
    session = uow.session
    if not await repository.try_lock_order(session, order_id):
        return None
    now = datetime.now(UTC)
    row = await repository.claimable(session, notification_id, now=now)
    if row is None:
        return None
    row.updated_at = now
    channel = channels.get(row.channel)
    if channel is None:
        row.last_error = f"channel {row.channel} is not configured here"
        if row.status == "scheduled":  # nothing composed yet: the channel was switched off
            row.status = "skipped"
            return Claimed(row.channel, None)
        # Content already fixed: keep it for an instance that has the channel.
        row.next_attempt_at = now + timedelta(seconds=rules.lease_seconds)
        return None
    if row.status == "scheduled":
        if await repository.in_flight_sibling(session, row):
            row.next_attempt_at = now + timedelta(seconds=rules.wait_behind_seconds)
            return None
        if not await _compose(session, row, channel, templates):
            return Claimed(row.channel, None)
    row.status = "sending"
    row.attempts += 1
    row.next_attempt_at = now + timedelta(seconds=rules.lease_seconds)
    assert row.recipient, "a composed notification has a recipient"
    assert row.subject is not None, "and a subject"
    assert row.body is not None, "and a body"
    return Claimed(
        row.channel,
        Outgoing(
            notification_id=str(row.id),
            recipient=row.recipient,
            subject=row.subject,
            body=row.body,
        ),
        attempt=row.attempts,
    )


async def _compose(
    session: AsyncSession,
    row: NotificationRow,
    channel: Channel,
    templates: Templates,
) -> bool:
    """Describes the newest picture against the last one told; False when there is no news."""
    known = await repository.latest(session, row.order_id)
    assert known is not None, "a notification is only scheduled after its picture is stored"
    latest = OrderStatusChanged.model_validate(known.picture)
    told_row = await repository.last_told(session, order_id=row.order_id, channel=row.channel)
    told = OrderStatusChanged.model_validate(told_row.picture) if told_row else None
    kind = classify(told, latest)
    recipient = channel.recipient(latest) if kind else None
    row.version, row.picture = latest.version, known.picture
    if kind is None or recipient is None:
        row.status = "skipped"
        row.last_error = None if kind is None else "no recipient on this channel"
        return False
    rendered = templates.render(kind, latest, told)
    row.kind, row.recipient, row.subject = kind.value, recipient, rendered.subject
    row.body = channel.body(
        notification_id=str(row.id), kind=kind, latest=latest, rendered=rendered
    )
    return True


async def settle(
    notification_id: uuid.UUID,
    failure: DeliveryFailed | None,
    *,
    attempt: int,
    uow: UnitOfWork,
    rules: DeliveryRules,
) -> str:
    """Records an attempt's outcome: sent, retry later, or failed and dead-lettered."""
    row = await repository.get_for_update(uow.session, notification_id)
    if row is None or row.status != "sending" or row.attempts != attempt:
        return "stale"  # the lease ran out and another attempt owns the row now
    now = datetime.now(UTC)
    row.updated_at = now
    if failure is None:
        row.status, row.sent_at = "sent", now
        return "sent"
    if failure.permanent or row.attempts >= rules.max_attempts:
        _fail(uow, row, str(failure))
        return "failed"
    row.status, row.last_error = "retrying", str(failure)[:2000]
    delay = retry_delay(
        row.attempts, initial=rules.retry_initial_seconds, maximum=rules.retry_max_seconds
    )
    row.next_attempt_at = now + timedelta(seconds=delay)
    return "retry"


async def give_up(notification_id: uuid.UUID, problem: str, *, uow: UnitOfWork) -> str | None:
    """A notification that cannot even be composed (a broken template, say) fails at once,
    so it does not come back on every poll and crowd out the others. Returns its channel."""
    row = await repository.get_for_update(uow.session, notification_id)
    if row is None or row.status not in OPEN_STATUSES:
        return None
    if row.picture is None:
        known = await repository.latest(uow.session, row.order_id)
        row.picture = known.picture if known else {"order_id": row.order_id}
    row.updated_at = datetime.now(UTC)
    _fail(uow, row, problem)
    return row.channel


def _fail(uow: UnitOfWork, row: NotificationRow, problem: str) -> None:
    """Final: the picture it described goes to `orders.status-changed.dlq`; replaying it
    sends the notification again."""
    row.status, row.last_error = "failed", problem[:2000]
    reason = (
        f"{row.kind} notification by {row.channel} to {row.recipient} failed after "
        f"{row.attempts} attempt(s): {row.last_error}"
    )
    uow.publish_raw(
        topic=ORDERS_STATUS_CHANGED.dlq,
        key=row.order_id.encode(),
        value=json.dumps(row.picture).encode(),
        headers=[
            (EVENT_ID, event_id("notifier", "failed", str(row.id), str(row.attempts)).encode()),
            (EVENT_TYPE, b"OrderStatusChanged"),
            (CORRELATION_ID, row.order_id.encode()),
            (NOTIFICATION_ID, str(row.id).encode()),
            (NOTIFICATION_CHANNEL, row.channel.encode()),
            (DLQ_REASON, reason.encode()),
            (DLQ_ORIGINAL_TOPIC, ORDERS_STATUS_CHANGED.name.encode()),
        ],
    )

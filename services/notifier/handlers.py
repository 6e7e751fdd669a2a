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

from services.notifier.channels import Channel, DeliveryFailed, Outgoing
from services.notifier.domain.model import classify
from services.notifier.domain.notification import (
    GaveUp,
    Message,
    Notification,
    NotificationStatus,
    RetryPolicy,
)
from services.notifier.rendering import Templates
from services.notifier.repository import NotifierRepository
from services.notifier.unit_of_work import NotifierWork
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
from shared.contracts.outputs import OrderStatusChanged, OrderStatusChangedReadBack
from shared.contracts.topics import ORDERS_STATUS_CHANGED
from shared.messaging.errors import PoisonMessage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeliveryRules:
    retry: RetryPolicy
    # How long a claimed notification may be in flight before it counts as lost.
    lease_seconds: float
    # How long a notification waits behind an earlier one of the same order still in flight.
    wait_behind_seconds: float

    @property
    def lease(self) -> timedelta:
        return timedelta(seconds=self.lease_seconds)


async def take_changes(
    changes: Sequence[OrderStatusChanged],
    *,
    uow: NotifierWork,
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
    await uow.notifications.lock_orders(newest)
    known = await uow.notifications.versions(list(newest))
    news = [c for c in newest.values() if c.version > known.get(c.order_id, 0)]
    now = datetime.now(UTC)
    await uow.notifications.remember(news, now=now)
    await uow.notifications.schedule(
        order_ids=[change.order_id for change in news],
        channels=list(channels),
        due=now + timedelta(seconds=window),
        now=now,
    )
    return len(news)


async def send_again(notification_id: str, *, uow: NotifierWork) -> bool:
    """An operator replayed a failed notification's dead letter: it gets a fresh set of tries."""
    try:
        key = uuid.UUID(notification_id)
    except ValueError:
        raise PoisonMessage(f"{NOTIFICATION_ID} header is not a notification id") from None
    notification = await uow.notifications.get_for_update(key)
    if notification is None or notification.status is not NotificationStatus.FAILED:
        return False
    told = await uow.notifications.last_told(
        order_id=notification.order_id, channel=notification.channel
    )
    if not notification.send_again(
        datetime.now(UTC), last_told_version=told.version if told else None
    ):
        log.warning("not resending %s: the customer has since been told something newer", key)
        return False
    await uow.notifications.save(notification)
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
    uow: NotifierWork,
    channels: Mapping[str, Channel],
    templates: Templates,
    rules: DeliveryRules,
) -> Claimed | None:
    """Fixes a due notification's content and marks it in flight; None if it is not ours now."""
    if not await uow.notifications.try_lock_order(order_id):
        return None
    now = datetime.now(UTC)
    notification = await uow.notifications.claimable(notification_id, now=now)
    if notification is None:
        return None
    claimed = await _claim(uow.notifications, notification, now, channels, templates, rules)
    await uow.notifications.save(notification)
    return claimed


async def _claim(
    notifications: NotifierRepository,
    notification: Notification,
    now: datetime,
    channels: Mapping[str, Channel],
    templates: Templates,
    rules: DeliveryRules,
) -> Claimed | None:
    scheduled = notification.status is NotificationStatus.SCHEDULED
    channel = channels.get(notification.channel)
    if channel is None:
        missing = f"channel {notification.channel} is not configured here"
        if scheduled:  # nothing composed yet: the channel was switched off
            notification.skip(missing, now)
            return Claimed(notification.channel, None)
        # Content already fixed: keep it for an instance that has the channel.
        notification.postpone(now + rules.lease, now, reason=missing)
        return None
    if scheduled:
        if await notifications.in_flight_sibling(notification):
            notification.postpone(now + timedelta(seconds=rules.wait_behind_seconds), now)
            return None
        if not await _compose(notifications, notification, channel, templates, now):
            return Claimed(notification.channel, None)
    attempt = notification.claim(now, lease=rules.lease)
    assert notification.message is not None, "a claimed notification has content"
    return Claimed(
        notification.channel,
        Outgoing(
            notification_id=str(notification.id),
            recipient=notification.message.recipient,
            subject=notification.message.subject,
            body=notification.message.body,
        ),
        attempt=attempt,
    )


async def _compose(
    notifications: NotifierRepository,
    notification: Notification,
    channel: Channel,
    templates: Templates,
    now: datetime,
) -> bool:
    """Describes the newest picture against the last one told; False when there is no news."""
    order_id = notification.order_id
    picture = await notifications.latest(order_id)
    assert picture is not None, "a notification is only scheduled after its picture is stored"
    latest = OrderStatusChangedReadBack.model_validate(picture)
    told_one = await notifications.last_told(order_id=order_id, channel=notification.channel)
    told = (
        OrderStatusChangedReadBack.model_validate(told_one.picture)
        if told_one and told_one.picture
        else None
    )
    kind = classify(told, latest)
    recipient = channel.recipient(latest) if kind else None
    if kind is None or recipient is None:
        no_recipient = None if kind is None else "no recipient on this channel"
        notification.skip(no_recipient, now, version=latest.version, picture=picture)
        return False
    rendered = templates.render(kind, latest, told)
    body = channel.body(
        notification_id=str(notification.id), kind=kind, latest=latest, rendered=rendered
    )
    message = Message(kind=kind, recipient=recipient, subject=rendered.subject, body=body)
    notification.compose(latest.version, picture, message, now)
    return True


async def settle(
    notification_id: uuid.UUID,
    failure: DeliveryFailed | None,
    *,
    attempt: int,
    uow: NotifierWork,
    rules: DeliveryRules,
) -> str:
    """Records an attempt's outcome: sent, retry later, or failed and dead-lettered."""
    notification = await uow.notifications.get_for_update(notification_id)
    if notification is None or not notification.owns(attempt):
        return "stale"  # the lease ran out and another attempt owns the row now
    now = datetime.now(UTC)
    if failure is None:
        notification.settle(now)
    else:
        notification.fail(str(failure), now, retry=rules.retry, permanent=failure.permanent)
    await _save(uow, notification)
    return _OUTCOMES[notification.status]


# The metrics label of each way an attempt can end.
_OUTCOMES = {
    NotificationStatus.SENT: "sent",
    NotificationStatus.RETRYING: "retry",
    NotificationStatus.FAILED: "failed",
}


async def give_up(notification_id: uuid.UUID, problem: str, *, uow: NotifierWork) -> str | None:
    """A notification that cannot even be composed (a broken template, say) fails at once,
    so it does not come back on every poll and crowd out the others. Returns its channel."""
    notification = await uow.notifications.get_for_update(notification_id)
    if notification is None or not notification.is_open:
        return None
    picture = None
    if notification.picture is None:
        picture = await uow.notifications.latest(notification.order_id)
    notification.give_up(problem, datetime.now(UTC), picture=picture)
    await _save(uow, notification)
    return notification.channel


async def _save(uow: NotifierWork, notification: Notification) -> None:
    await uow.notifications.save(notification)
    for gave_up in notification.events:
        _dead_letter(uow, gave_up)


def _dead_letter(uow: NotifierWork, gave_up: GaveUp) -> None:
    """The picture a failed notification described goes to `orders.status-changed.dlq`;
    replaying it sends the notification again."""
    reason = (
        f"{gave_up.kind} notification by {gave_up.channel} to {gave_up.recipient} failed after "
        f"{gave_up.attempts} attempt(s): {gave_up.reason}"
    )
    order_id, notification_id = gave_up.order_id, str(gave_up.notification_id)
    uow.publish_raw(
        topic=ORDERS_STATUS_CHANGED.dlq,
        key=order_id.encode(),
        value=json.dumps(gave_up.picture).encode(),
        headers=[
            (
                EVENT_ID,
                event_id("notifier", "failed", notification_id, str(gave_up.attempts)).encode(),
            ),
            (EVENT_TYPE, b"OrderStatusChanged"),
            (CORRELATION_ID, order_id.encode()),
            (NOTIFICATION_ID, notification_id.encode()),
            (NOTIFICATION_CHANNEL, gave_up.channel.encode()),
            (DLQ_REASON, reason.encode()),
            (DLQ_ORIGINAL_TOPIC, ORDERS_STATUS_CHANGED.name.encode()),
        ],
    )

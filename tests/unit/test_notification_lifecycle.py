"""How one notification goes from scheduled to told, retried or given up (the domain object)."""

import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from services.notifier.domain.model import Kind
from services.notifier.domain.notification import (
    GaveUp,
    IllegalTransition,
    Message,
    Notification,
    NotificationStatus,
    RetryPolicy,
)

START = datetime(2027, 1, 1, 12, tzinfo=UTC)
LEASE = timedelta(minutes=2)
PICTURE = {"order_id": "o-1", "version": 3, "status": "backordered"}
MESSAGE = Message(kind=Kind.BACKORDERED, recipient="ann@example.com", subject="Hi", body="...")


def retry(max_attempts: int = 3) -> RetryPolicy:
    return RetryPolicy(
        max_attempts=max_attempts, initial_seconds=5, max_seconds=60, rng=random.Random(7)
    )


def scheduled(due: datetime = START) -> Notification:
    return Notification(
        id=uuid.uuid4(),
        order_id="o-1",
        channel="email",
        status=NotificationStatus.SCHEDULED,
        next_attempt_at=due,
        updated_at=START,
    )


def composed(due: datetime = START) -> Notification:
    notification = scheduled(due)
    notification.compose(3, PICTURE, MESSAGE, START)
    return notification


def test_the_stored_statuses_keep_their_strings() -> None:
    assert [status.value for status in NotificationStatus] == [
        "scheduled",
        "sending",
        "retrying",
        "sent",
        "failed",
        "skipped",
    ]


def test_a_composed_notification_is_claimed_when_due_and_settled_as_sent() -> None:
    notification = composed()
    attempt = notification.claim(START, lease=LEASE)
    assert (attempt, notification.status, notification.next_attempt_at) == (
        1,
        NotificationStatus.SENDING,
        START + LEASE,
    )
    assert notification.owns(1)
    notification.settle(START + timedelta(seconds=1))
    assert (notification.status, notification.sent_at) == (
        NotificationStatus.SENT,
        START + timedelta(seconds=1),
    )
    assert not notification.is_open and notification.events == []


def test_a_notification_is_not_claimed_before_it_is_due() -> None:
    notification = composed(due=START + timedelta(seconds=30))
    with pytest.raises(IllegalTransition, match="not due"):
        notification.claim(START, lease=LEASE)
    assert (notification.status, notification.attempts) == (NotificationStatus.SCHEDULED, 0)


def test_nothing_is_claimed_before_its_content_is_fixed() -> None:
    notification = scheduled()
    with pytest.raises(IllegalTransition, match="nothing composed"):
        notification.claim(START, lease=LEASE)
    assert notification.changes() == {}


def test_a_sent_notification_is_never_sent_again() -> None:
    notification = composed()
    notification.claim(START, lease=LEASE)
    notification.settle(START)
    later = START + timedelta(days=1)
    for step in (
        lambda: notification.claim(later, lease=LEASE),
        lambda: notification.settle(later),
        lambda: notification.fail("boom", later, retry=retry()),
        lambda: notification.give_up("boom", later),
        lambda: notification.send_again(later, last_told_version=None),
    ):
        with pytest.raises(IllegalTransition, match="is sent"):
            step()
    assert (notification.status, notification.attempts) == (NotificationStatus.SENT, 1)


def test_a_failed_attempt_is_retried_after_a_backoff_then_given_up_after_the_last() -> None:
    notification = composed()
    now = START
    for attempt in (1, 2):
        assert notification.claim(now, lease=LEASE) == attempt
        status = notification.fail("mail server down", now, retry=retry())
        assert status is NotificationStatus.RETRYING
        assert notification.last_error == "mail server down"
        assert now < notification.next_attempt_at <= now + timedelta(seconds=60)
        now = notification.next_attempt_at
    notification.claim(now, lease=LEASE)
    assert notification.fail("still down", now, retry=retry()) is NotificationStatus.FAILED
    assert notification.attempts == 3
    assert notification.events == [
        GaveUp(
            notification_id=notification.id,
            order_id="o-1",
            channel="email",
            kind=Kind.BACKORDERED,
            recipient="ann@example.com",
            attempts=3,
            reason="still down",
            picture=PICTURE,
        )
    ]


def test_the_backoff_grows_with_each_attempt_up_to_the_maximum() -> None:
    policy = RetryPolicy(max_attempts=10, initial_seconds=5, max_seconds=60, rng=random.Random(1))
    for attempt, ceiling in ((1, 5), (2, 10), (3, 20), (4, 40), (5, 60), (9, 60)):
        delay = policy.delay(attempt).total_seconds()
        assert ceiling / 2 <= delay <= ceiling


def test_a_permanent_failure_gives_up_at_once() -> None:
    notification = composed()
    notification.claim(START, lease=LEASE)
    notification.fail("550 no such user", START, retry=retry(), permanent=True)
    assert (notification.status, notification.attempts) == (NotificationStatus.FAILED, 1)
    assert [event.reason for event in notification.events] == ["550 no such user"]


def test_a_lost_send_is_taken_over_once_its_lease_runs_out_and_the_old_attempt_is_stale() -> None:
    notification = composed()
    notification.claim(START, lease=LEASE)
    with pytest.raises(IllegalTransition, match="not due"):
        notification.claim(START + LEASE / 2, lease=LEASE)
    assert notification.claim(START + LEASE, lease=LEASE) == 2
    assert not notification.owns(1) and notification.owns(2)


def test_a_notification_that_cannot_be_composed_gives_up_with_the_order_as_it_stands() -> None:
    notification = scheduled()
    notification.give_up("cannot compose: broken template", START, picture=PICTURE)
    assert (notification.status, notification.picture) == (NotificationStatus.FAILED, PICTURE)
    (event,) = notification.events
    assert (event.kind, event.recipient, event.attempts) == (None, None, 0)


def test_give_up_is_final_and_dead_letters_once() -> None:
    notification = composed()
    notification.give_up("no way", START)
    with pytest.raises(IllegalTransition, match="is failed"):
        notification.give_up("again", START)
    with pytest.raises(IllegalTransition, match="is failed"):
        notification.claim(START + timedelta(days=1), lease=LEASE)
    assert len(notification.events) == 1


def test_only_a_scheduled_notification_is_composed_or_skipped() -> None:
    notification = scheduled()
    notification.skip(None, START, version=4, picture=PICTURE)
    assert (notification.status, notification.version, notification.last_error) == (
        NotificationStatus.SKIPPED,
        4,
        None,
    )
    with pytest.raises(IllegalTransition, match="is skipped"):
        notification.compose(5, PICTURE, MESSAGE, START)
    sending = composed()
    sending.claim(START, lease=LEASE)
    with pytest.raises(IllegalTransition, match="is sending"):
        sending.skip("channel off", START)


def test_postponing_moves_the_due_time_and_keeps_the_content() -> None:
    notification = composed()
    notification.claim(START, lease=LEASE)
    later = START + LEASE + LEASE
    notification.postpone(later, START + LEASE, reason="channel webhook is not configured here")
    assert (notification.status, notification.next_attempt_at, notification.message) == (
        NotificationStatus.SENDING,
        later,
        MESSAGE,
    )


def test_an_operator_sends_a_failed_notification_again_with_fresh_attempts() -> None:
    notification = composed()
    notification.claim(START, lease=LEASE)
    notification.fail("bounced", START, retry=retry(), permanent=True)
    later = START + timedelta(hours=1)
    assert notification.send_again(later, last_told_version=2)
    assert (notification.status, notification.attempts, notification.next_attempt_at) == (
        NotificationStatus.RETRYING,
        0,
        later,
    )
    assert notification.claim(later, lease=LEASE) == 1


def test_a_failed_notification_is_not_sent_again_once_something_newer_was_told() -> None:
    notification = composed()
    notification.give_up("bounced", START)
    assert not notification.send_again(START, last_told_version=4)
    assert notification.status is NotificationStatus.FAILED


def test_only_a_failed_notification_is_sent_again() -> None:
    notification = composed()
    with pytest.raises(IllegalTransition, match="is scheduled"):
        notification.send_again(START, last_told_version=None)


def test_changes_name_only_what_moved_since_loading() -> None:
    notification = composed()
    loaded = Notification(
        id=notification.id,
        order_id="o-1",
        channel="email",
        status=NotificationStatus.SCHEDULED,
        next_attempt_at=START,
        updated_at=START,
        version=3,
        picture=PICTURE,
        message=MESSAGE,
    )
    assert loaded.changes() == {}
    loaded.claim(START + timedelta(seconds=1), lease=LEASE)
    assert loaded.changes() == {
        "status": NotificationStatus.SENDING,
        "attempts": 1,
        "next_attempt_at": START + timedelta(seconds=1) + LEASE,
        "updated_at": START + timedelta(seconds=1),
    }

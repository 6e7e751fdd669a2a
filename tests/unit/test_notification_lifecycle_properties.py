"""Random histories of one notification: never sent twice, never retried past its last attempt,
never due again before the attempt that failed, never moved once it gave up."""

import random
import uuid
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from services.notifier.domain.model import Kind
from services.notifier.domain.notification import (
    IllegalTransition,
    Message,
    Notification,
    NotificationStatus,
    RetryPolicy,
)

START = datetime(2027, 1, 1, tzinfo=UTC)
LEASE = timedelta(seconds=120)
MESSAGE = Message(kind=Kind.ALLOCATED, recipient="ann@example.com", subject="Ready", body="...")

wait = st.tuples(st.just("wait"), st.integers(0, 1_000))
step = st.tuples(
    st.sampled_from(["claim", "settle", "fail", "fail_permanently", "give_up", "send_again"]),
    st.just(0),
)
history = st.lists(st.one_of(wait, step), max_size=80)


def state(notification: Notification) -> dict[str, Any]:
    return {
        f.name: getattr(notification, f.name) for f in fields(notification) if f.name != "_loaded"
    } | {"events": list(notification.events)}


@settings(max_examples=400, deadline=None)
@given(history, st.integers(1, 6), st.integers(0, 2**32))
def test_any_history_keeps_the_invariants(
    steps: list[tuple[str, int]], max_attempts: int, seed: int
) -> None:
    retry = RetryPolicy(
        max_attempts=max_attempts, initial_seconds=5, max_seconds=900, rng=random.Random(seed)
    )
    notification = Notification(
        id=uuid.uuid4(),
        order_id="o",
        channel="email",
        status=NotificationStatus.SCHEDULED,
        next_attempt_at=START,
        updated_at=START,
    )
    notification.compose(1, {"order_id": "o"}, MESSAGE, START)
    now = START
    sends = gave_up = taken_over = 0
    for name, amount in steps:
        if name == "wait":
            now += timedelta(seconds=amount)
            continue
        before = state(notification)
        was = notification.status
        try:
            if name == "claim":
                notification.claim(now, lease=LEASE)
                # a claim finds the notification due: a retry is never tried early
                assert before["next_attempt_at"] <= now
                taken_over += was is NotificationStatus.SENDING
            elif name == "settle":
                notification.settle(now)
                sends += 1
            elif name in ("fail", "fail_permanently"):
                status = notification.fail(
                    "down", now, retry=retry, permanent=name == "fail_permanently"
                )
                if status is NotificationStatus.RETRYING:
                    # the next try waits past the attempt that failed
                    assert notification.next_attempt_at > now
            elif name == "give_up":
                notification.give_up("operator", now)
            elif notification.send_again(now, last_told_version=None):
                taken_over = 0
        except IllegalTransition:
            # a refused step changes nothing
            assert state(notification) == before
            continue
        gave_up += notification.status is NotificationStatus.FAILED and was is not (
            NotificationStatus.FAILED
        )
        # sent is final: one send at most, and nothing moves it afterwards
        assert sends <= 1
        assert was is not NotificationStatus.SENT
        # a failed notification only moves when an operator sends it again
        assert was is not NotificationStatus.FAILED or name == "send_again"
        # attempts stop at the maximum, but for sends whose lease ran out and were taken over
        assert notification.attempts <= max_attempts + taken_over
        if notification.status is NotificationStatus.RETRYING:
            assert notification.attempts < max_attempts
        # every give-up, and only a give-up, puts out one dead letter
        assert len(notification.events) == gave_up


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 8), st.integers(0, 2**32))
def test_a_receiver_that_never_answers_gets_exactly_the_maximum_attempts(
    max_attempts: int, seed: int
) -> None:
    retry = RetryPolicy(
        max_attempts=max_attempts, initial_seconds=5, max_seconds=900, rng=random.Random(seed)
    )
    notification = Notification(
        id=uuid.uuid4(),
        order_id="o",
        channel="webhook",
        status=NotificationStatus.RETRYING,
        next_attempt_at=START,
        updated_at=START,
        picture={"order_id": "o"},
        message=MESSAGE,
    )
    claims = []
    while notification.is_open:
        now = notification.next_attempt_at
        claims.append(now)
        notification.claim(now, lease=LEASE)
        notification.fail("503", now, retry=retry)
    assert (notification.status, notification.attempts, len(claims)) == (
        NotificationStatus.FAILED,
        max_attempts,
        max_attempts,
    )
    assert claims == sorted(set(claims))
    assert all(later - earlier <= timedelta(seconds=900) for earlier, later in pairwise(claims))

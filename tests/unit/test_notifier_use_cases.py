"""The notifier's use cases through in-memory fakes: which pictures of an order make a message,
what the customer reads, and how each delivery outcome ends (sent, tried again, dead-lettered,
sent again by an operator). The dispatcher runs on fake channels. No broker, no database."""

import asyncio
import contextlib
import json
import random
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry, Counter

from services.notifier import handlers
from services.notifier.channels import Channel, DeliveryFailed, Outgoing
from services.notifier.dispatcher import Dispatcher
from services.notifier.domain.model import Kind
from services.notifier.domain.notification import Notification, NotificationStatus, RetryPolicy
from services.notifier.handlers import DeliveryRules
from services.notifier.rendering import Rendered, Templates
from shared.contracts.headers import DLQ_REASON, NOTIFICATION_CHANNEL, NOTIFICATION_ID
from shared.contracts.outputs import OrderStatusChanged
from shared.contracts.topics import ORDERS_STATUS_CHANGED
from shared.messaging.errors import PoisonMessage
from tests.support.fakes.notifier import (
    FakeNotifierRepository,
    FakeNotifierUnitOfWork,
    RawRecord,
)

ORDER = "o-1"
EMAIL = "ada@example.com"
DAY = datetime(2027, 5, 3, tzinfo=UTC)
RULES = DeliveryRules(
    retry=RetryPolicy(max_attempts=3, initial_seconds=5, max_seconds=60, rng=random.Random(7)),
    lease_seconds=60,
    wait_behind_seconds=1,
)
TEMPLATES = Templates()
# Longer than any backoff or lease above: everything open falls due.
A_WHILE = timedelta(minutes=5)


def picture(
    version: int,
    status: str = "backordered",
    *,
    allocated: int = 0,
    waiting: int = 2,
    eta: datetime | None = None,
    order_id: str = ORDER,
    customer: bool = True,
) -> OrderStatusChanged:
    line_status = "backordered" if status == "partially_allocated" and waiting else status
    return OrderStatusChanged.model_validate(
        {
            "order_id": order_id,
            "status": status,
            "version": version,
            "occurred_at": DAY,
            "customer": {"id": "c-1", "email": EMAIL, "name": "Ada"} if customer else None,
            "lines": [
                {
                    "line_id": "1",
                    "sku": "LAMP",
                    "quantity": max(1, allocated + waiting),
                    "allocated": allocated,
                    "backordered": waiting,
                    "rejected": 0,
                    "status": line_status,
                    "eta": eta,
                }
            ],
        }
    )


def ready(version: int) -> OrderStatusChanged:
    return picture(version, "allocated", allocated=2, waiting=0)


class FakeChannel:
    """Fits `services.notifier.channels.Channel`: keeps what reached it, or fails as told."""

    def __init__(self, name: str = "email", *failures: Exception) -> None:
        self.name = name
        self.sent: list[Outgoing] = []
        self.failures = list(failures)
        self.answer_after = 0.0
        self.broken_template = False

    def recipient(self, latest: OrderStatusChanged) -> str | None:
        return str(latest.customer.email) if latest.customer else None

    def body(
        self, *, notification_id: str, kind: Kind, latest: OrderStatusChanged, rendered: Rendered
    ) -> str:
        if self.broken_template:
            raise KeyError("order_total")
        return rendered.text

    async def send(self, outgoing: Outgoing) -> None:
        await asyncio.sleep(self.answer_after)
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append(outgoing)

    @property
    def subjects(self) -> list[str]:
        return [outgoing.subject for outgoing in self.sent]


class Notifier:
    """The notifier on fakes: takes status changes, and delivers what is due with the real
    dispatcher until nothing is left to do now."""

    def __init__(self, *channels: FakeChannel, rules: DeliveryRules = RULES) -> None:
        self.repo = FakeNotifierRepository()
        self.channels = {channel.name: channel for channel in channels} or {"email": FakeChannel()}
        self.rules = rules
        self.units: list[FakeNotifierUnitOfWork] = []
        self.registry = CollectorRegistry()
        self.outcomes = Counter("notified", "", ["channel", "outcome"], registry=self.registry)
        # What each next commit does: None commits, an error is raised.
        self.commits: list[BaseException | None] = []

    @property
    def email(self) -> FakeChannel:
        return self.channels["email"]

    async def take(
        self,
        *changes: OrderStatusChanged,
        window: float = 0,
        channels: Sequence[str] | None = None,
    ) -> int:
        return await handlers.take_changes(
            changes,
            uow=self.unit(),
            channels=self.channels if channels is None else channels,
            window=window,
        )

    async def deliver(self) -> None:
        dispatcher = Dispatcher(
            units=self.unit,
            outcomes=self.outcomes,
            channels=self.channels,
            templates=TEMPLATES,
            rules=self.rules,
            concurrency=4,
            poll_interval=0.001,
            shutdown_grace=1,
        )
        running = asyncio.create_task(dispatcher.run())
        try:
            async with asyncio.timeout(2):
                while not self.idle():
                    await asyncio.sleep(0.001)
        finally:
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running

    async def later(self, delta: timedelta = A_WHILE) -> None:
        """Lets `delta` pass, then delivers whatever fell due."""
        self.repo.later(delta)
        await self.deliver()

    def idle(self) -> bool:
        now = datetime.now(UTC)
        return not any(
            n.is_due(now) or n.status is NotificationStatus.SENDING for n in self.repo.open()
        )

    async def claim(
        self, notification: Notification, *, channels: Mapping[str, Channel] | None = None
    ) -> handlers.Claimed | None:
        return await handlers.claim(
            notification.id,
            notification.order_id,
            uow=self.unit(),
            channels=self.channels if channels is None else channels,
            templates=TEMPLATES,
            rules=self.rules,
        )

    async def settle(
        self, notification: Notification, attempt: int, failure: DeliveryFailed | None = None
    ) -> str:
        return await handlers.settle(
            notification.id, failure, attempt=attempt, uow=self.unit(), rules=self.rules
        )

    def unit(self) -> FakeNotifierUnitOfWork:
        unit = FakeNotifierUnitOfWork(self.repo, commits=self.commits)
        self.units.append(unit)
        return unit

    def one(self, channel: str = "email", order_id: str = ORDER) -> Notification:
        (notification,) = self.repo.of(order_id, channel)
        return notification

    @property
    def dead_letters(self) -> list[RawRecord]:
        return [record for unit in self.units if unit.committed for record in unit.records]

    def counted(self, channel: str, outcome: str) -> float:
        labels = {"channel": channel, "outcome": outcome}
        return self.registry.get_sample_value("notified_total", labels) or 0.0


async def _committed(uow: FakeNotifierUnitOfWork) -> None:
    await uow.commit()


def headers(record: RawRecord) -> dict[str, bytes]:
    return dict(record.headers)


# --- taking status changes -----------------------------------------------------------------


async def test_a_first_picture_schedules_one_notification_per_channel_after_the_window() -> None:
    notifier = Notifier(FakeChannel("email"), FakeChannel("webhook"))
    assert await notifier.take(picture(1), window=60) == 1
    for channel in ("email", "webhook"):
        scheduled = notifier.one(channel)
        assert scheduled.status is NotificationStatus.SCHEDULED
        assert scheduled.next_attempt_at > datetime.now(UTC) + timedelta(seconds=50)
    await notifier.deliver()
    assert notifier.email.sent == notifier.channels["webhook"].sent == []  # not yet due
    await notifier.later(timedelta(seconds=60))
    assert notifier.email.subjects == [f"Your order {ORDER} is backordered"]
    assert len(notifier.channels["webhook"].sent) == 1


async def test_a_redelivered_or_older_picture_changes_nothing() -> None:
    notifier = Notifier()
    await notifier.take(picture(2, eta=DAY))
    assert await notifier.take(picture(2, eta=DAY)) == 0
    assert await notifier.take(picture(1)) == 0
    assert notifier.repo.pictures[ORDER]["version"] == 2
    await notifier.deliver()
    assert notifier.email.subjects == [f"Your order {ORDER} is backordered"]
    assert "expected 2027-05-03" in notifier.email.sent[0].body
    await notifier.take(picture(2, eta=DAY))
    await notifier.later()
    assert len(notifier.email.sent) == 1


async def test_a_batch_keeps_each_orders_newest_picture_whatever_the_order_read() -> None:
    notifier = Notifier()
    taken = await notifier.take(
        picture(3, eta=DAY), picture(1), picture(2), picture(1, order_id="o-2")
    )
    assert taken == 2
    assert notifier.repo.pictures[ORDER]["version"] == 3
    assert notifier.repo.pictures["o-2"]["version"] == 1
    assert await notifier.take() == 0


async def test_a_burst_of_changes_in_the_window_becomes_one_message_about_the_latest() -> None:
    notifier = Notifier()
    await notifier.take(picture(1), window=60)
    await notifier.take(picture(2, "partially_allocated", allocated=1, waiting=1), window=60)
    await notifier.take(ready(3), window=60)
    assert len(notifier.repo.of(ORDER)) == 1  # they all joined the notification gathering
    await notifier.later(timedelta(seconds=60))
    assert notifier.email.subjects == [f"Your order {ORDER} is ready to ship"]
    assert notifier.one().version == 3


async def test_without_a_channel_orders_are_tracked_and_nobody_is_told() -> None:
    notifier = Notifier()
    assert await notifier.take(picture(1), channels=[]) == 1
    assert notifier.repo.pictures[ORDER]["version"] == 1
    assert notifier.repo.of(ORDER) == []


# --- what makes a message ------------------------------------------------------------------


async def test_each_piece_of_news_is_told_against_what_the_customer_heard_last() -> None:
    notifier = Notifier()
    pictures = [
        picture(1),
        picture(2, eta=DAY),
        picture(3, eta=DAY + timedelta(days=7)),
        picture(4, "partially_allocated", allocated=1, waiting=1, eta=DAY + timedelta(days=7)),
        ready(5),
    ]
    for latest in pictures:
        await notifier.take(latest)
        await notifier.deliver()
    assert notifier.email.subjects == [
        f"Your order {ORDER} is backordered",
        f"Your order {ORDER} now has an expected date",
        f"Your order {ORDER} is delayed",
        f"More of your order {ORDER} is reserved",
        f"Your order {ORDER} is ready to ship",
    ]
    assert "expected 2027-05-10 (later than we said before)" in notifier.email.sent[2].body
    ids = [outgoing.notification_id for outgoing in notifier.email.sent]
    assert len(set(ids)) == 5
    assert notifier.counted("email", "sent") == 5


async def test_a_new_version_with_nothing_new_to_tell_is_skipped() -> None:
    notifier = Notifier()
    await notifier.take(picture(1))
    await notifier.deliver()
    await notifier.take(picture(2))  # say, another line's queue position moved
    await notifier.deliver()
    assert len(notifier.email.sent) == 1
    skipped = [n for n in notifier.repo.of(ORDER) if n.status is NotificationStatus.SKIPPED]
    assert [(n.version, n.last_error) for n in skipped] == [(2, None)]
    assert notifier.counted("email", "skipped") == 1


async def test_nobody_to_tell_on_a_channel_skips_it() -> None:
    notifier = Notifier()
    await notifier.take(picture(1, customer=False))
    await notifier.deliver()
    assert notifier.email.sent == []
    skipped = notifier.one()
    assert (skipped.status, skipped.last_error) == (
        NotificationStatus.SKIPPED,
        "no recipient on this channel",
    )


async def test_a_channel_switched_off_skips_what_was_not_composed_yet() -> None:
    notifier = Notifier()
    await notifier.take(picture(1), channels=["email", "sms"])
    await notifier.deliver()
    assert len(notifier.email.sent) == 1
    sms = notifier.one("sms")
    assert (sms.status, sms.last_error) == (
        NotificationStatus.SKIPPED,
        "channel sms is not configured here",
    )


async def test_content_fixed_for_a_channel_missing_here_waits_for_an_instance_with_it() -> None:
    here = Notifier(FakeChannel("email"), FakeChannel("webhook"))
    await here.take(picture(1))
    claimed = await here.claim(here.one("webhook"))
    assert claimed is not None
    assert claimed.outgoing is not None
    here.repo.later(A_WHILE)  # the instance with the webhook died mid-send
    assert await here.claim(here.one("webhook"), channels={"email": here.email}) is None
    waiting = here.one("webhook")
    assert waiting.is_open
    assert waiting.message is not None
    assert waiting.last_error == "channel webhook is not configured here"
    assert waiting.next_attempt_at > datetime.now(UTC) + timedelta(seconds=50)


async def test_a_notification_waits_behind_an_earlier_one_of_its_order_still_in_flight() -> None:
    notifier = Notifier(FakeChannel("email", DeliveryFailed("SMTP unreachable", permanent=False)))
    await notifier.take(picture(1))
    await notifier.deliver()
    assert notifier.one().status is NotificationStatus.RETRYING
    await notifier.take(ready(2))
    await notifier.deliver()
    behind = next(n for n in notifier.repo.of(ORDER) if n.version is None)
    assert behind.status is NotificationStatus.SCHEDULED
    assert behind.next_attempt_at > datetime.now(UTC)
    await notifier.later()  # the first one gets through; the news waits another turn
    assert notifier.email.subjects == [f"Your order {ORDER} is backordered"]
    await notifier.later()
    assert notifier.email.subjects == [
        f"Your order {ORDER} is backordered",
        f"Your order {ORDER} is ready to ship",
    ]


async def test_an_order_another_instance_holds_is_left_to_it() -> None:
    notifier = Notifier()
    await notifier.take(picture(1))
    notifier.repo.held.add(ORDER)
    assert await notifier.claim(notifier.one()) is None
    assert notifier.one().status is NotificationStatus.SCHEDULED
    notifier.repo.held.clear()
    await notifier.deliver()
    assert len(notifier.email.sent) == 1


# --- delivery outcomes ---------------------------------------------------------------------


async def test_a_delivered_notification_is_sent_once_under_its_own_id() -> None:
    notifier = Notifier()
    await notifier.take(picture(1))
    await notifier.deliver()
    await notifier.later()
    sent = notifier.one()
    assert (sent.status, sent.attempts, sent.version) == (NotificationStatus.SENT, 1, 1)
    assert sent.sent_at is not None
    (outgoing,) = notifier.email.sent
    assert (outgoing.notification_id, outgoing.recipient) == (str(sent.id), EMAIL)
    assert notifier.dead_letters == []


async def test_a_receiver_down_then_back_gets_the_same_message_once_after_retries() -> None:
    down = DeliveryFailed("SMTP unreachable", permanent=False)
    notifier = Notifier(FakeChannel("email", down, down), FakeChannel("webhook"))
    await notifier.take(picture(1))
    await notifier.deliver()
    retrying = notifier.one()
    assert (retrying.status, retrying.attempts) == (NotificationStatus.RETRYING, 1)
    assert retrying.last_error == "SMTP unreachable"
    # half to all of the first backoff
    wait = retrying.next_attempt_at - datetime.now(UTC)
    assert timedelta(seconds=2) < wait <= timedelta(seconds=5)
    assert len(notifier.channels["webhook"].sent) == 1  # not held up by the mail server
    await notifier.later()
    assert notifier.one().attempts == 2
    await notifier.later()
    sent = notifier.one()
    assert (sent.status, sent.attempts) == (NotificationStatus.SENT, 3)
    (outgoing,) = notifier.email.sent
    assert outgoing.notification_id == str(sent.id)
    await notifier.later()
    assert len(notifier.email.sent) == 1
    assert (notifier.counted("email", "retry"), notifier.counted("email", "sent")) == (2, 1)


async def test_every_attempt_sends_the_words_fixed_at_the_first() -> None:
    notifier = Notifier(FakeChannel("email", DeliveryFailed("busy", permanent=False)))
    await notifier.take(picture(1))
    await notifier.deliver()
    first = notifier.one().message
    await notifier.take(picture(2, eta=DAY))  # news meanwhile goes in a message of its own
    await notifier.later()
    await notifier.later()  # the news waited behind the retry
    assert notifier.email.sent[0].body == (first.body if first else None)
    assert notifier.email.subjects == [
        f"Your order {ORDER} is backordered",
        f"Your order {ORDER} now has an expected date",
    ]


async def test_a_refused_recipient_fails_at_once_and_is_dead_lettered() -> None:
    refused = DeliveryFailed("recipient refused: 550 no such user", permanent=True)
    notifier = Notifier(FakeChannel("email", refused))
    await notifier.take(picture(1))
    await notifier.deliver()
    failed = notifier.one()
    assert (failed.status, failed.attempts) == (NotificationStatus.FAILED, 1)
    assert failed.last_error == "recipient refused: 550 no such user"
    (letter,) = notifier.dead_letters
    assert (letter.topic, letter.key) == (ORDERS_STATUS_CHANGED.dlq, ORDER.encode())
    assert json.loads(letter.value) == notifier.repo.pictures[ORDER]
    assert headers(letter)[NOTIFICATION_ID] == str(failed.id).encode()
    assert headers(letter)[NOTIFICATION_CHANNEL] == b"email"
    assert (
        headers(letter)[DLQ_REASON]
        == (
            f"backordered notification by email to {EMAIL} failed after 1 attempt(s): "
            "recipient refused: 550 no such user"
        ).encode()
    )
    assert notifier.counted("email", "failed") == 1
    await notifier.later()
    assert notifier.email.sent == []


async def test_a_receiver_that_keeps_failing_is_given_up_after_the_last_attempt() -> None:
    failing = [DeliveryFailed("webhook answered HTTP 500", permanent=False) for _ in range(3)]
    notifier = Notifier(FakeChannel("webhook", *failing))
    await notifier.take(picture(1))
    for _ in range(3):
        await notifier.later()
    failed = notifier.one("webhook")
    assert (failed.status, failed.attempts) == (NotificationStatus.FAILED, 3)
    (letter,) = notifier.dead_letters
    assert b"failed after 3 attempt(s): webhook answered HTTP 500" in headers(letter)[DLQ_REASON]


@pytest.mark.parametrize(
    ("trouble", "error"),
    [
        ("slow", "no answer within half the lease"),
        ("bug", "unexpected: RuntimeError('socket closed')"),
    ],
)
async def test_a_receiver_too_slow_or_a_channel_bug_counts_as_an_attempt(
    trouble: str, error: str
) -> None:
    channel = FakeChannel("email")
    if trouble == "slow":
        channel.answer_after = 1
    else:
        channel.failures.append(RuntimeError("socket closed"))
    notifier = Notifier(channel, rules=DeliveryRules(RULES.retry, 0.02, 1))
    await notifier.take(picture(1))
    await notifier.deliver()
    retrying = notifier.one()
    assert (retrying.status, retrying.attempts) == (NotificationStatus.RETRYING, 1)
    assert retrying.last_error == error
    assert channel.sent == []


async def test_a_message_that_cannot_be_composed_fails_with_the_orders_picture() -> None:
    channel = FakeChannel("email")
    channel.broken_template = True
    notifier = Notifier(channel)
    await notifier.take(picture(1))
    await notifier.deliver()
    failed = notifier.one()
    assert failed.status is NotificationStatus.FAILED
    assert failed.last_error == "cannot compose: KeyError('order_total')"
    (letter,) = notifier.dead_letters
    assert json.loads(letter.value) == notifier.repo.pictures[ORDER]
    assert b"failed after 0 attempt(s): cannot compose" in headers(letter)[DLQ_REASON]
    assert notifier.counted("email", "failed") == 1
    await notifier.later()  # it does not come back on every poll
    assert channel.sent == []


async def test_a_late_outcome_of_an_attempt_taken_over_changes_nothing() -> None:
    notifier = Notifier()
    await notifier.take(picture(1))
    lost = await notifier.claim(notifier.one())
    assert lost is not None
    notifier.repo.later(A_WHILE)  # its lease ran out: the send counts as lost
    again = await notifier.claim(notifier.one())
    assert again is not None
    assert (lost.attempt, again.attempt) == (1, 2)
    assert await notifier.settle(notifier.one(), lost.attempt) == "stale"
    assert notifier.one().status is NotificationStatus.SENDING
    assert await notifier.settle(notifier.one(), again.attempt) == "sent"
    assert await notifier.settle(notifier.one(), again.attempt) == "stale"


async def test_a_claim_that_does_not_commit_leaves_the_notification_as_it_was() -> None:
    notifier = Notifier()
    await notifier.take(picture(1))
    before = notifier.one()
    async with notifier.unit() as uow:
        await handlers.claim(
            before.id,
            ORDER,
            uow=uow,
            channels=notifier.channels,
            templates=TEMPLATES,
            rules=RULES,
        )
    after = notifier.one()
    assert (after.status, after.message, after.attempts) == (NotificationStatus.SCHEDULED, None, 0)


# --- an operator sends a failed notification again -----------------------------------------


async def failed_once(notifier: Notifier) -> Notification:
    notifier.email.failures.append(DeliveryFailed("mailbox full", permanent=True))
    await notifier.take(picture(1))
    await notifier.deliver()
    return notifier.one()


async def test_a_replayed_dead_letter_sends_the_notification_again_under_its_id() -> None:
    notifier = Notifier()
    failed = await failed_once(notifier)
    assert await handlers.send_again(str(failed.id), uow=notifier.unit())
    again = notifier.one()
    assert (again.status, again.attempts) == (NotificationStatus.RETRYING, 0)
    await notifier.deliver()
    (outgoing,) = notifier.email.sent
    assert outgoing.notification_id == str(failed.id)
    assert outgoing.body == (failed.message.body if failed.message else None)
    # replayed once more: it was sent, so nothing happens
    assert not await handlers.send_again(str(failed.id), uow=notifier.unit())
    await notifier.later()
    assert len(notifier.email.sent) == 1


async def test_a_replay_never_takes_the_customer_back_to_older_news() -> None:
    notifier = Notifier()
    failed = await failed_once(notifier)
    await notifier.take(ready(2))
    await notifier.deliver()
    assert notifier.email.subjects == [f"Your order {ORDER} is ready to ship"]
    assert not await handlers.send_again(str(failed.id), uow=notifier.unit())
    assert notifier.repo.of(ORDER)[0].status is NotificationStatus.FAILED


async def test_a_replay_naming_no_notification_is_refused_or_ignored() -> None:
    notifier = Notifier()
    with pytest.raises(PoisonMessage, match="is not a notification id"):
        await handlers.send_again("not-a-uuid", uow=notifier.unit())
    assert not await handlers.send_again(str(uuid.uuid4()), uow=notifier.unit())


async def test_a_sent_notification_whose_outcome_fails_to_commit_once_is_not_sent_again() -> None:
    """A pooled connection that died with a database restart fails the first statement after
    the send: the outcome is recorded on a second try, not left for the lease to run out and
    the customer to get the message twice."""
    notifier = Notifier()
    await notifier.take(picture(1))
    # The claim commits; the outcome's first commit fails.
    notifier.commits = [None, ConnectionResetError("connection was closed in the middle")]
    await notifier.deliver()
    assert notifier.one().status is NotificationStatus.SENT
    await notifier.later(timedelta(hours=1))
    assert len(notifier.email.sent) == 1

"""One message owed on one channel, and how it goes from scheduled to told: pure, no I/O.

    scheduled --compose--> (content fixed) --claim--> sending --settle--> sent
        |                                              |  ^
        skip --> skipped                         fail  |  | claim (when due again, or when the
                                                       v  |        lease of a lost send ran out)
                                                    retrying
    Any open notification may give up (failed); an operator may send a failed one again.

A refused transition raises `IllegalTransition` and leaves the notification as it was.
"""

import random
import uuid
from collections.abc import Collection
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from services.notifier.domain.model import Kind, retry_delay

# The order as a notification described it, as `orders.status-changed` carries it.
Picture = dict[str, Any]

# What a database column holds at most of an error text.
ERROR_LENGTH = 2000


class NotificationStatus(StrEnum):
    # Waiting out the coalescing window; its content is not fixed yet.
    SCHEDULED = "scheduled"
    # Content fixed and handed to a channel; `next_attempt_at` is when the lease runs out.
    SENDING = "sending"
    # The last attempt failed for a reason that may pass.
    RETRYING = "retrying"
    SENT = "sent"
    FAILED = "failed"
    # Nothing new to tell, nobody to tell it to, or the channel was switched off.
    SKIPPED = "skipped"


OPEN_STATUSES = frozenset(
    {NotificationStatus.SCHEDULED, NotificationStatus.SENDING, NotificationStatus.RETRYING}
)


class IllegalTransition(Exception):
    """A notification was asked for a step its lifecycle does not allow from where it is."""


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int
    initial_seconds: float
    max_seconds: float
    # Injectable so tests can fix the jitter; None: the process-wide generator.
    rng: random.Random | None = field(default=None, compare=False)

    def delay(self, attempt: int) -> timedelta:
        seconds = retry_delay(
            attempt, initial=self.initial_seconds, maximum=self.max_seconds, rng=self.rng
        )
        return timedelta(seconds=seconds)


@dataclass(frozen=True)
class Message:
    """What a channel delivers: fixed once, so every attempt sends the very same words."""

    kind: Kind
    recipient: str
    subject: str
    body: str


@dataclass(frozen=True)
class GaveUp:
    """A notification failed for good: the picture it described goes to the dead letters."""

    notification_id: uuid.UUID
    order_id: str
    channel: str
    kind: Kind | None
    recipient: str | None
    attempts: int
    reason: str
    picture: Picture


@dataclass(eq=False)
class Notification:
    """One message on one channel. Its id is the Message-ID / webhook id receivers dedupe on."""

    id: uuid.UUID
    order_id: str
    channel: str
    status: NotificationStatus
    next_attempt_at: datetime
    updated_at: datetime
    attempts: int = 0
    last_error: str | None = None
    # The version and picture of the order it described (or looked at and found no news in).
    version: int | None = None
    picture: Picture | None = None
    message: Message | None = None
    sent_at: datetime | None = None
    events: list[GaveUp] = field(default_factory=list, repr=False)
    _loaded: dict[str, Any] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._loaded = self._state()

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    def is_due(self, now: datetime) -> bool:
        return self.is_open and self.next_attempt_at <= now

    def owns(self, attempt: int) -> bool:
        """Whether `attempt` is still the one in flight: a send whose lease ran out and was
        taken over by a later attempt may no longer settle the notification."""
        return self.status is NotificationStatus.SENDING and self.attempts == attempt

    def compose(self, version: int, picture: Picture, message: Message, now: datetime) -> None:
        """Fixes what the notification says: the newest picture, against the last one told."""
        self._require({NotificationStatus.SCHEDULED}, "be composed")
        self.version, self.picture, self.message = version, picture, message
        self.updated_at = now

    def skip(
        self,
        reason: str | None,
        now: datetime,
        *,
        version: int | None = None,
        picture: Picture | None = None,
    ) -> None:
        """Final: nothing goes out. `version` and `picture`: what was looked at, if anything."""
        self._require({NotificationStatus.SCHEDULED}, "be skipped")
        self.status, self.last_error = NotificationStatus.SKIPPED, reason
        if version is not None:
            self.version, self.picture = version, picture
        self.updated_at = now

    def postpone(self, until: datetime, now: datetime, *, reason: str | None = None) -> None:
        """Not now: behind an earlier one still in flight, or on a channel not here."""
        self._require(OPEN_STATUSES, "be postponed")
        self.next_attempt_at = until
        if reason is not None:
            self.last_error = reason
        self.updated_at = now

    def claim(self, now: datetime, *, lease: timedelta) -> int:
        """Takes a due notification in flight for one attempt, whose number it returns. A send
        whose lease ran out counts as lost: claiming it again starts the next attempt."""
        self._require(OPEN_STATUSES, "be claimed")
        if self.next_attempt_at > now:
            raise IllegalTransition(
                f"notification {self.id} is not due before {self.next_attempt_at.isoformat()}"
            )
        if self.message is None:
            raise IllegalTransition(f"notification {self.id} has nothing composed to send")
        self.status = NotificationStatus.SENDING
        self.attempts += 1
        self.next_attempt_at = now + lease
        self.updated_at = now
        return self.attempts

    def settle(self, now: datetime) -> None:
        """The attempt in flight reached its recipient: final."""
        self._require({NotificationStatus.SENDING}, "be settled as sent")
        self.status, self.sent_at = NotificationStatus.SENT, now
        self.updated_at = now

    def fail(
        self, error: str, now: datetime, *, retry: RetryPolicy, permanent: bool = False
    ) -> NotificationStatus:
        """The attempt in flight did not get through: try again after a backoff, or give up
        when the reason will not pass or the attempts are used up. Returns the new status."""
        self._require({NotificationStatus.SENDING}, "fail an attempt")
        if permanent or self.attempts >= retry.max_attempts:
            self.give_up(error, now)
        else:
            self.status, self.last_error = NotificationStatus.RETRYING, error[:ERROR_LENGTH]
            self.next_attempt_at = now + retry.delay(self.attempts)
            self.updated_at = now
        return self.status

    def give_up(self, reason: str, now: datetime, *, picture: Picture | None = None) -> None:
        """Final until an operator sends it again. `picture`: the order as it stands, for a
        notification that failed before it described anything."""
        self._require(OPEN_STATUSES, "give up")
        self.status, self.last_error = NotificationStatus.FAILED, reason[:ERROR_LENGTH]
        if self.picture is None:
            self.picture = picture if picture is not None else {"order_id": self.order_id}
        self.updated_at = now
        self.events.append(
            GaveUp(
                notification_id=self.id,
                order_id=self.order_id,
                channel=self.channel,
                kind=self.message.kind if self.message else None,
                recipient=self.message.recipient if self.message else None,
                attempts=self.attempts,
                reason=self.last_error,
                picture=self.picture,
            )
        )

    def send_again(self, now: datetime, *, last_told_version: int | None) -> bool:
        """An operator replayed its dead letter: a fresh set of attempts, unless the customer
        has since been told about a newer version (then this one would take them back)."""
        self._require({NotificationStatus.FAILED}, "be sent again")
        if last_told_version is not None and last_told_version > (self.version or 0):
            return False
        self.status, self.attempts = NotificationStatus.RETRYING, 0
        self.next_attempt_at = self.updated_at = now
        return True

    def changes(self) -> dict[str, Any]:
        """The fields that differ from how the notification was made or loaded: what a
        repository writes back."""
        return {name: value for name, value in self._state().items() if value != self._loaded[name]}

    def _state(self) -> dict[str, Any]:
        hidden = {"id", "events", "_loaded"}
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in hidden}

    def _require(self, allowed: Collection[NotificationStatus], step: str) -> None:
        if self.status not in allowed:
            raise IllegalTransition(f"notification {self.id} is {self.status}: it cannot {step}")

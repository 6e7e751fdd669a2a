"""The notifier's repository in memory, with the semantics of `SqlNotifierRepository`: one
picture kept per order (the newest), at most one scheduled notification per order and channel,
a version described at most once per order and channel, and notifications handed out as copies
that only `save` writes back, as rows are."""

import copy
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from types import TracebackType
from typing import Self

from services.notifier.domain.notification import (
    OPEN_STATUSES,
    Notification,
    NotificationStatus,
    Picture,
)
from shared.contracts.outputs import OrderStatusChanged
from tests.support.fakes.unit_of_work import FakeUnitOfWork


class UniqueViolation(Exception):
    """What PostgreSQL's unique constraint on (order, channel, version) would refuse."""


class FakeNotifierRepository:
    def __init__(self) -> None:
        self.pictures: dict[str, Picture] = {}
        self._rows: dict[uuid.UUID, Notification] = {}
        # Orders whose notify lock another instance holds.
        self.held: set[str] = set()

    # One use case at a time in memory: only a lock another instance holds (`held`) counts.
    async def lock_orders(self, order_ids: Iterable[str]) -> None:
        pass

    async def try_lock_order(self, order_id: str) -> bool:
        return order_id not in self.held

    async def latest(self, order_id: str) -> Picture | None:
        picture = self.pictures.get(order_id)
        return copy.deepcopy(picture) if picture is not None else None

    async def versions(self, order_ids: list[str]) -> dict[str, int]:
        return {
            order_id: int(self.pictures[order_id]["version"])
            for order_id in order_ids
            if order_id in self.pictures
        }

    async def remember(self, changes: list[OrderStatusChanged], *, now: datetime) -> None:
        for change in changes:
            self.pictures[change.order_id] = change.model_dump(mode="json")

    async def schedule(
        self, *, order_ids: list[str], channels: list[str], due: datetime, now: datetime
    ) -> None:
        for order_id in order_ids:
            for channel in channels:
                if not any(
                    n.status is NotificationStatus.SCHEDULED for n in self.of(order_id, channel)
                ):
                    notification = Notification(
                        id=uuid.uuid4(),
                        order_id=order_id,
                        channel=channel,
                        status=NotificationStatus.SCHEDULED,
                        next_attempt_at=due,
                        updated_at=now,
                    )
                    self._rows[notification.id] = notification

    async def due_ids(
        self, *, now: datetime, limit: int, busy: set[uuid.UUID]
    ) -> list[tuple[uuid.UUID, str]]:
        due = sorted(
            (n for n in self._rows.values() if n.is_due(now) and n.id not in busy),
            key=lambda n: n.next_attempt_at,
        )
        return [(n.id, n.order_id) for n in due[:limit]]

    async def claimable(self, notification_id: uuid.UUID, *, now: datetime) -> Notification | None:
        row = self._rows.get(notification_id)
        return _copy(row) if row is not None and row.is_due(now) else None

    async def in_flight_sibling(self, notification: Notification) -> bool:
        in_flight = (NotificationStatus.SENDING, NotificationStatus.RETRYING)
        return any(
            n.status in in_flight and n.id != notification.id
            for n in self.of(notification.order_id, notification.channel)
        )

    async def last_told(self, *, order_id: str, channel: str) -> Notification | None:
        sent = [n for n in self.of(order_id, channel) if n.status is NotificationStatus.SENT]
        # PostgreSQL sorts NULL first in descending order; a sent one always has a version.
        newest = max(sent, key=lambda n: (n.version is None, n.version or 0), default=None)
        return _copy(newest) if newest is not None else None

    async def get_for_update(self, notification_id: uuid.UUID) -> Notification | None:
        row = self._rows.get(notification_id)
        return _copy(row) if row is not None else None

    async def save(self, notification: Notification) -> None:
        changes = notification.changes()
        stored = self._rows.get(notification.id)
        if not changes or stored is None:
            return
        saved = replace(stored, **changes, events=[])
        if saved.version is not None and any(
            n.version == saved.version and n.id != saved.id
            for n in self.of(saved.order_id, saved.channel)
        ):
            raise UniqueViolation(f"{saved.order_id} v{saved.version} on {saved.channel}")
        self._rows[notification.id] = saved

    # What a test looks at, and how it lets time pass.

    def of(self, order_id: str, channel: str | None = None) -> list[Notification]:
        """The order's notifications (on `channel`, if given), oldest first, as stored."""
        return [
            n
            for n in self._rows.values()
            if n.order_id == order_id and (channel is None or n.channel == channel)
        ]

    def open(self) -> list[Notification]:
        return [n for n in self._rows.values() if n.status in OPEN_STATUSES]

    def later(self, delta: timedelta) -> None:
        """As if `delta` had passed: every notification falls due that much sooner."""
        for notification_id, n in self._rows.items():
            self._rows[notification_id] = replace(
                n, next_attempt_at=n.next_attempt_at - delta, events=[]
            )

    def snapshot(self) -> "FakeNotifierRepository":
        return copy.deepcopy(self)

    def restore(self, snapshot: "FakeNotifierRepository") -> None:
        self.pictures, self._rows, self.held = snapshot.pictures, snapshot._rows, snapshot.held


def _copy(notification: Notification) -> Notification:
    """A loaded row: changing it changes nothing stored until it is saved."""
    return replace(notification, picture=copy.deepcopy(notification.picture), events=[])


@dataclass(frozen=True)
class RawRecord:
    topic: str
    key: bytes | None
    value: bytes
    headers: Sequence[tuple[str, bytes]]


class FakeNotifierUnitOfWork(FakeUnitOfWork):
    """Fits `services.notifier.unit_of_work.NotifierWork`. Unlike the base, also a context
    manager for the dispatcher, which opens one per step: leaving it uncommitted rolls the
    repository back to where it stood on entry, as the database would. Restoring the whole
    repository undoes this unit's changes alone, as units never interleave in memory: nothing
    in one waits on the event loop."""

    def __init__(
        self,
        notifications: FakeNotifierRepository | None = None,
        *,
        commits: list[BaseException | None] | None = None,
    ) -> None:
        """`commits`: what each next commit does, shared by the units of one test: None
        commits, an error is raised (a database gone in the middle, say)."""
        super().__init__()
        self.notifications = notifications or FakeNotifierRepository()
        self.records: list[RawRecord] = []
        self._entered: FakeNotifierRepository | None = None
        self._commits = commits if commits is not None else []

    async def commit(self) -> None:
        failure = self._commits.pop(0) if self._commits else None
        if failure is not None:
            raise failure
        await super().commit()

    def publish_raw(
        self, *, topic: str, key: bytes | None, value: bytes, headers: Sequence[tuple[str, bytes]]
    ) -> None:
        self.records.append(RawRecord(topic, key, value, list(headers)))

    async def __aenter__(self) -> Self:
        self._entered = self.notifications.snapshot()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self.committed and self._entered is not None:
            self.notifications.restore(self._entered)

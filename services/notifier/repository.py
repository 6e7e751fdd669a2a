"""Reads and writes the notifier's tables; every change to an order's notifications runs under
that order's notify lock, so a claim and a new change never cross. All of the notifier's SQL is
here.

Notifications come out as domain objects and go back as one UPDATE of the columns that changed.
"""

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from services.notifier.domain.model import Kind
from services.notifier.domain.notification import (
    OPEN_STATUSES,
    Message,
    Notification,
    NotificationStatus,
    Picture,
)
from services.notifier.tables import SCHEDULED_ONLY, NotificationRow, NotifiedOrderRow
from shared.contracts.outputs import OrderStatusChanged
from shared.db.locks import lock_keys, try_lock_key

# One statement whatever the batch's size, so it is compiled once (a multi-row VALUES of a new
# length was compiled afresh for every batch: a fifth of the notifier's samples in a burst).
_REMEMBER = text(
    "INSERT INTO notified_order (order_id, version, picture, updated_at)"
    " SELECT order_id, version, CAST(picture AS jsonb), :now FROM unnest("
    "CAST(:order_ids AS text[]), CAST(:versions AS integer[]), CAST(:pictures AS text[]))"
    " AS change(order_id, version, picture)"
    " ON CONFLICT (order_id) DO UPDATE SET version = excluded.version,"
    " picture = excluded.picture, updated_at = excluded.updated_at"
)


class NotifierRepository(Protocol):
    async def lock_orders(self, order_ids: Iterable[str]) -> None:
        """Holds these orders' notifications for this unit of work, waiting for any claim."""
        ...

    async def try_lock_order(self, order_id: str) -> bool:
        """Like `lock_orders` for one order, but False at once when another unit of work
        holds it."""
        ...

    async def latest(self, order_id: str) -> Picture | None:
        """The newest picture of the order kept so far."""
        ...

    async def versions(self, order_ids: list[str]) -> dict[str, int]:
        """The version of each order's picture kept so far; an order not seen yet is absent."""
        ...

    async def remember(self, changes: list[OrderStatusChanged], *, now: datetime) -> None:
        """Keeps these pictures, one per order, in place of older ones."""
        ...

    async def schedule(
        self, *, order_ids: list[str], channels: list[str], due: datetime, now: datetime
    ) -> None:
        """A notification gathering changes per order and channel, unless one already does."""
        ...

    async def due_ids(
        self, *, now: datetime, limit: int, busy: set[uuid.UUID]
    ) -> list[tuple[uuid.UUID, str]]:
        """Open notifications due by `now`, soonest first, that are not `busy`: (id, order)."""
        ...

    async def claimable(self, notification_id: uuid.UUID, *, now: datetime) -> Notification | None:
        """The notification if it is open, due and not held by another unit of work."""
        ...

    async def in_flight_sibling(self, notification: Notification) -> bool:
        """Whether an earlier notification of this order and channel is still being delivered."""
        ...

    async def last_told(self, *, order_id: str, channel: str) -> Notification | None:
        """The last notification that reached its recipient on this channel."""
        ...

    async def get_for_update(self, notification_id: uuid.UUID) -> Notification | None:
        """The notification, held for this unit of work."""
        ...

    async def save(self, notification: Notification) -> None:
        """Writes back what changed since it was loaded; nothing if nothing did."""
        ...


def _key(order_id: str) -> str:
    return "notify:" + order_id


class SqlNotifierRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def lock_orders(self, order_ids: Iterable[str]) -> None:
        await lock_keys(self._session, (_key(order_id) for order_id in order_ids))

    async def try_lock_order(self, order_id: str) -> bool:
        return await try_lock_key(self._session, _key(order_id))

    async def latest(self, order_id: str) -> Picture | None:
        row = await self._session.get(NotifiedOrderRow, order_id, populate_existing=True)
        return row.picture if row else None

    async def versions(self, order_ids: list[str]) -> dict[str, int]:
        rows = await self._session.execute(
            select(col(NotifiedOrderRow.order_id), col(NotifiedOrderRow.version)).where(
                col(NotifiedOrderRow.order_id).in_(order_ids)
            )
        )
        return dict(rows.all())

    async def remember(self, changes: list[OrderStatusChanged], *, now: datetime) -> None:
        if not changes:
            return
        await self._session.execute(
            _REMEMBER,
            {
                "order_ids": [change.order_id for change in changes],
                "versions": [change.version for change in changes],
                "pictures": [change.model_dump_json() for change in changes],
                "now": now,
            },
        )

    async def schedule(
        self, *, order_ids: list[str], channels: list[str], due: datetime, now: datetime
    ) -> None:
        if not order_ids or not channels:
            return
        await self._session.execute(
            insert(NotificationRow)
            .values(
                [
                    {
                        "id": uuid.uuid4(),
                        "order_id": order_id,
                        "channel": channel,
                        "status": NotificationStatus.SCHEDULED.value,
                        "next_attempt_at": due,
                        "created_at": now,
                        "updated_at": now,
                    }
                    for order_id in order_ids
                    for channel in channels
                ]
            )
            .on_conflict_do_nothing(
                index_elements=["order_id", "channel"], index_where=text(SCHEDULED_ONLY)
            )
        )

    async def due_ids(
        self, *, now: datetime, limit: int, busy: set[uuid.UUID]
    ) -> list[tuple[uuid.UUID, str]]:
        rows = await self._session.execute(
            select(col(NotificationRow.id), col(NotificationRow.order_id))
            .where(
                col(NotificationRow.status).in_(_values(OPEN_STATUSES)),
                col(NotificationRow.next_attempt_at) <= now,
                col(NotificationRow.id).not_in(busy) if busy else text("true"),
            )
            .order_by(col(NotificationRow.next_attempt_at))
            .limit(limit)
        )
        return [(row[0], row[1]) for row in rows]

    async def claimable(self, notification_id: uuid.UUID, *, now: datetime) -> Notification | None:
        row = (
            await self._session.scalars(
                select(NotificationRow)
                .where(
                    col(NotificationRow.id) == notification_id,
                    col(NotificationRow.status).in_(_values(OPEN_STATUSES)),
                    col(NotificationRow.next_attempt_at) <= now,
                )
                .with_for_update(skip_locked=True)
                .execution_options(populate_existing=True)
            )
        ).first()
        return _notification(row) if row else None

    async def in_flight_sibling(self, notification: Notification) -> bool:
        in_flight = (NotificationStatus.SENDING, NotificationStatus.RETRYING)
        found = await self._session.scalar(
            select(col(NotificationRow.id))
            .where(
                col(NotificationRow.order_id) == notification.order_id,
                col(NotificationRow.channel) == notification.channel,
                col(NotificationRow.status).in_(_values(in_flight)),
                col(NotificationRow.id) != notification.id,
            )
            .limit(1)
        )
        return found is not None

    async def last_told(self, *, order_id: str, channel: str) -> Notification | None:
        row = (
            await self._session.scalars(
                select(NotificationRow)
                .where(
                    col(NotificationRow.order_id) == order_id,
                    col(NotificationRow.channel) == channel,
                    col(NotificationRow.status) == NotificationStatus.SENT.value,
                )
                .order_by(col(NotificationRow.version).desc())
                .limit(1)
            )
        ).first()
        return _notification(row) if row else None

    async def get_for_update(self, notification_id: uuid.UUID) -> Notification | None:
        row = (
            await self._session.scalars(
                select(NotificationRow)
                .where(col(NotificationRow.id) == notification_id)
                .with_for_update()
                .execution_options(populate_existing=True)
            )
        ).first()
        return _notification(row) if row else None

    async def save(self, notification: Notification) -> None:
        changes = notification.changes()
        if not changes:
            return
        message = changes.pop("message", None)
        values: dict[str, Any] = {
            name: value.value if isinstance(value, NotificationStatus) else value
            for name, value in changes.items()
        }
        if message is not None:
            values |= {
                "kind": message.kind.value,
                "recipient": message.recipient,
                "subject": message.subject,
                "body": message.body,
            }
        await self._session.execute(
            update(NotificationRow)
            .where(col(NotificationRow.id) == notification.id)
            .values(values)
            # The loaded row objects are never changed in place: nothing in the session to sync.
            .execution_options(synchronize_session=False)
        )


def _notification(row: NotificationRow) -> Notification:
    message = None
    if row.kind and row.recipient and row.subject is not None and row.body is not None:
        message = Message(
            kind=Kind(row.kind), recipient=row.recipient, subject=row.subject, body=row.body
        )
    return Notification(
        id=row.id,
        order_id=row.order_id,
        channel=row.channel,
        status=NotificationStatus(row.status),
        next_attempt_at=row.next_attempt_at,
        updated_at=row.updated_at,
        attempts=row.attempts,
        last_error=row.last_error,
        version=row.version,
        picture=row.picture,
        message=message,
        sent_at=row.sent_at,
    )


def _values(statuses: Iterable[NotificationStatus]) -> list[str]:
    return sorted(status.value for status in statuses)

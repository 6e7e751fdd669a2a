"""Reads and writes the notifier's tables; every change to an order's notifications runs under
that order's notify lock, so a claim and a new change never cross."""

import uuid
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from services.notifier.tables import OPEN_STATUSES, NotificationRow, NotifiedOrderRow
from shared.contracts.outputs import OrderStatusChanged
from shared.db.locks import lock_keys, try_lock_key


def _key(order_id: str) -> str:
    return "notify:" + order_id


async def lock_orders(session: AsyncSession, order_ids: Iterable[str]) -> None:
    await lock_keys(session, (_key(order_id) for order_id in order_ids))


async def try_lock_order(session: AsyncSession, order_id: str) -> bool:
    return await try_lock_key(session, _key(order_id))


async def latest(session: AsyncSession, order_id: str) -> NotifiedOrderRow | None:
    return await session.get(NotifiedOrderRow, order_id, populate_existing=True)


async def versions(session: AsyncSession, order_ids: list[str]) -> dict[str, int]:
    """The version of each order's picture kept so far; an order not seen yet is absent."""
    rows = await session.execute(
        select(col(NotifiedOrderRow.order_id), col(NotifiedOrderRow.version)).where(
            col(NotifiedOrderRow.order_id).in_(order_ids)
        )
    )
    return dict(rows.tuples().all())


async def remember(
    session: AsyncSession, changes: list[OrderStatusChanged], *, now: datetime
) -> None:
    """Keeps these pictures, one per order, in place of older ones."""
    if not changes:
        return
    upsert = insert(NotifiedOrderRow).values(
        [
            {
                "order_id": change.order_id,
                "version": change.version,
                "picture": change.model_dump(mode="json"),
                "updated_at": now,
            }
            for change in changes
        ]
    )
    await session.execute(
        upsert.on_conflict_do_update(
            index_elements=["order_id"],
            set_={name: upsert.excluded[name] for name in ("version", "picture", "updated_at")},
        )
    )


async def schedule(
    session: AsyncSession,
    *,
    order_ids: list[str],
    channels: list[str],
    due: datetime,
    now: datetime,
) -> None:
    """A notification gathering changes per order and channel, unless one already does."""
    if not order_ids or not channels:
        return
    await session.execute(
        insert(NotificationRow)
        .values(
            [
                {
                    "id": uuid.uuid4(),
                    "order_id": order_id,
                    "channel": channel,
                    "status": "scheduled",
                    "next_attempt_at": due,
                    "created_at": now,
                    "updated_at": now,
                }
                for order_id in order_ids
                for channel in channels
            ]
        )
        .on_conflict_do_nothing(
            index_elements=["order_id", "channel"], index_where=text("status = 'scheduled'")
        )
    )


async def due_ids(
    session: AsyncSession, *, now: datetime, limit: int, busy: set[uuid.UUID]
) -> list[tuple[uuid.UUID, str]]:
    rows = await session.execute(
        select(col(NotificationRow.id), col(NotificationRow.order_id))
        .where(
            col(NotificationRow.status).in_(OPEN_STATUSES),
            col(NotificationRow.next_attempt_at) <= now,
            col(NotificationRow.id).not_in(busy) if busy else text("true"),
        )
        .order_by(col(NotificationRow.next_attempt_at))
        .limit(limit)
    )
    return [(row[0], row[1]) for row in rows]


async def claimable(
    session: AsyncSession, notification_id: uuid.UUID, *, now: datetime
) -> NotificationRow | None:
    return (
        await session.scalars(
            select(NotificationRow)
            .where(
                col(NotificationRow.id) == notification_id,
                col(NotificationRow.status).in_(OPEN_STATUSES),
                col(NotificationRow.next_attempt_at) <= now,
            )
            .with_for_update(skip_locked=True)
            .execution_options(populate_existing=True)
        )
    ).first()


async def in_flight_sibling(session: AsyncSession, row: NotificationRow) -> bool:
    """Whether an earlier notification of this order and channel is still being delivered."""
    found = await session.scalar(
        select(col(NotificationRow.id))
        .where(
            col(NotificationRow.order_id) == row.order_id,
            col(NotificationRow.channel) == row.channel,
            col(NotificationRow.status).in_(("sending", "retrying")),
            col(NotificationRow.id) != row.id,
        )
        .limit(1)
    )
    return found is not None


async def last_told(
    session: AsyncSession, *, order_id: str, channel: str
) -> NotificationRow | None:
    """The last notification that reached its recipient on this channel."""
    return (
        await session.scalars(
            select(NotificationRow)
            .where(
                col(NotificationRow.order_id) == order_id,
                col(NotificationRow.channel) == channel,
                col(NotificationRow.status) == "sent",
            )
            .order_by(col(NotificationRow.version).desc())
            .limit(1)
        )
    ).first()


async def get_for_update(
    session: AsyncSession, notification_id: uuid.UUID
) -> NotificationRow | None:
    return (
        await session.scalars(
            select(NotificationRow)
            .where(col(NotificationRow.id) == notification_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).first()

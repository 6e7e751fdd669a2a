"""The recovery relay: publishes committed outbox rows in id order, in batches, and deletes them
once acked. Rows normally leave from memory right after their commit (`shared/messaging/outbox.py`);
this relay sends the ones left behind: by a process that died between its commit and its send, by
a send that failed, or by another instance whose partitions this one was just assigned.

One relay per source works at a time (a transaction-scoped advisory lock). Ids are drawn at
insert, not at commit, so id order is the order of events for a key only because every writer
of a key holds a lock on it until commit (the SKU row, the order id, the SKU's policy).
A crash between the broker's ack and the delete republishes the batch with the same event
ids: consumers dedupe.

A row the broker refuses for good (too large for the producer or the topic, say) would be
refused on every retry and hold back every row behind it. It is parked instead: moved to
`outbox_parked` with the reason, counted, logged, and listed by `backorder outbox parked`.
Any other failure retries the whole batch, so nothing is skipped or reordered.
"""

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from operator import attrgetter
from typing import Any, NamedTuple

from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    InvalidTopicError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
)
from prometheus_client import Counter
from sqlalchemy import func, insert, select, text
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.db.engine import SessionFactory
from shared.db.tables import OutboxParked, decode_headers

log = logging.getLogger(__name__)

# Refusals about the record itself: sending it again can only fail again.
_REFUSED_FOR_GOOD = (
    MessageSizeTooLargeError,
    RecordTooLargeError,
    RecordListTooLargeError,
    InvalidTopicError,
)


class _Row(NamedTuple):
    """An outbox row as the relay takes it: a plain tuple, no ORM object per event."""

    id: int
    source: str
    topic: str
    key: bytes | None
    value: bytes
    headers: list[Any]
    created_at: datetime


# A record as it leaves: topic, key, value, headers.
Record = tuple[str, bytes | None, bytes, Sequence[tuple[str, bytes]]]

_FORGET = text("DELETE FROM outbox_message WHERE id = ANY(CAST(:ids AS bigint[]))")

_WAITING = text(
    "SELECT EXISTS (SELECT 1 FROM outbox_message WHERE source = :source"
    " AND created_at < now() - make_interval(secs => :seconds)"
    " AND id <> ALL(CAST(:own AS bigint[])))"
)

# Rows locked by another transaction are rows being deleted after their send (a batch's bulk
# delete, not yet committed, which may wait on this process to commit): skipped, not waited on.
_TAKE_OLDEST = text(
    "DELETE FROM outbox_message WHERE id IN ("
    " SELECT id FROM outbox_message WHERE source = :source ORDER BY id LIMIT :limit"
    " FOR UPDATE SKIP LOCKED)"
    " RETURNING id, source, topic, key, value, headers, created_at"
)


class OutboxRelay:
    def __init__(
        self,
        *,
        session_factory: SessionFactory,
        producer_factory: Callable[[], AIOKafkaProducer],
        source: str,
        batch_size: int,
        parked: Counter | None = None,
    ) -> None:
        """The relay owns its producer: an idempotent producer whose batch the broker refused
        is out of step with the broker's sequence numbers for that partition for good, and only
        a new producer (a new producer id) sends there again."""
        self._session_factory = session_factory
        self._producer_factory = producer_factory
        self._producer: AIOKafkaProducer | None = None
        self._source = source
        self._batch_size = batch_size
        self._parked = parked

    async def close(self) -> None:
        if self._producer is not None:
            producer, self._producer = self._producer, None
            await producer.stop()

    async def _started_producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            producer = self._producer_factory()
            await producer.start()
            self._producer = producer
        return self._producer

    async def _renew_producer(self) -> None:
        with contextlib.suppress(Exception):
            await self.close()

    async def relay_once(self, *, forget: Sequence[int] = ()) -> list[int] | None:
        """One round: the oldest rows sent (or parked) and deleted, `forget` (rows already sent
        from memory) deleted unsent. Returns the ids taken, or None while another instance's
        relay holds the source."""
        async with self._session_factory() as session, session.begin():
            locked = await session.scalar(
                select(func.pg_try_advisory_xact_lock(func.hashtext("outbox:" + self._source)))
            )
            if not locked:
                return None
            if forget:
                await session.execute(_FORGET, {"ids": list(forget)})
            # Read and deleted in one statement: a failed send raises, the transaction rolls
            # back and the rows are there again for the next round, in the same order.
            taken = await session.execute(
                _TAKE_OLDEST, {"source": self._source, "limit": self._batch_size}
            )
            rows = sorted((_Row(*row) for row in taken), key=attrgetter("id"))
            if not rows:
                return []
            refused = await self._send(rows)
            for row, error in refused:
                await self._park(session, row, error)
        return [row.id for row in rows]

    async def tidy(self, *, forget: Sequence[int], older_than: float, own: Sequence[int]) -> bool:
        """Deletes `forget` (rows sent already); says whether rows other than `own` have waited
        longer than `older_than` seconds."""
        async with self._session_factory() as session, session.begin():
            if forget:
                await session.execute(_FORGET, {"ids": list(forget)})
            waiting = await session.scalar(
                _WAITING, {"source": self._source, "seconds": older_than, "own": list(own)}
            )
        return bool(waiting)

    async def send_all(self, records: Sequence[Record]) -> None:
        """Sends records from memory, in order, and waits for every ack; raises on any failure
        (the caller then leaves them to `relay_once`, which parks what is refused for good)."""
        producer = await self._started_producer()
        pending: list[asyncio.Future[object]] = []
        try:
            for topic, key, value, headers in records:
                pending.append(
                    await producer.send(topic, value=value, key=key, headers=list(headers))
                )
        finally:
            results = await asyncio.gather(*pending, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                if isinstance(result, _REFUSED_FOR_GOOD):
                    # Out of step with the broker's sequence for that partition: renewed.
                    await self._renew_producer()
                raise result

    async def renew_producer(self) -> None:
        await self._renew_producer()

    async def _send(self, rows: Sequence[_Row]) -> list[tuple[_Row, BaseException]]:
        """Sends the batch; returns the rows refused for good. Raises on any other failure."""
        refused: list[tuple[_Row, BaseException]] = []
        pending: list[tuple[_Row, asyncio.Future[object]]] = []
        try:
            for row in rows:
                try:
                    pending.append((row, await self._send_one(row)))
                except _REFUSED_FOR_GOOD as error:  # the producer's own check: it never left
                    refused.append((row, error))
        finally:
            results = await asyncio.gather(*(sent for _, sent in pending), return_exceptions=True)
        failed = [
            (row, result)
            for (row, _), result in zip(pending, results, strict=True)
            if isinstance(result, BaseException)
        ]
        if not any(isinstance(error, _REFUSED_FOR_GOOD) for _, error in failed):
            if failed:
                raise failed[0][1]
            return refused
        # The broker refuses a whole record batch, so rows beside the culprit were refused with
        # it; and the producer's sequence for that partition is now out of step, so the batches
        # after it failed too. Sent again one at a time, in order, by a new producer, each row
        # shows whether it is the culprit.
        await self._renew_producer()
        for row, _ in sorted(failed, key=lambda failure: failure[0].id):
            try:
                await (await self._send_one(row))
            except _REFUSED_FOR_GOOD as error:
                refused.append((row, error))
                await self._renew_producer()
        return refused

    async def _send_one(self, row: _Row) -> "asyncio.Future[object]":
        producer = await self._started_producer()
        future: asyncio.Future[object] = await producer.send(
            row.topic, value=row.value, key=row.key, headers=decode_headers(row.headers)
        )
        return future

    async def _park(self, session: AsyncSession, row: _Row, error: BaseException) -> None:
        reason = f"{type(error).__name__}: {error}"[:1000]
        log.error(
            "outbox row %s for %s parked, the broker refuses it for good: %s (%d bytes)",
            row.id,
            row.topic,
            reason,
            len(row.value),
        )
        await session.execute(
            insert(OutboxParked).values(
                id=row.id,
                source=row.source,
                topic=row.topic,
                key=row.key,
                value=row.value,
                headers=row.headers,
                created_at=row.created_at,
                reason=reason,
            )
        )
        if self._parked is not None:
            self._parked.labels(row.topic).inc()

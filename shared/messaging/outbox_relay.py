"""Publishes committed outbox rows in id order, in batches, and deletes them once acked.

One relay per source works at a time (a transaction-scoped advisory lock). Ids are drawn at
insert, not at commit, so id order is the order of events for a key only because every writer
of a key holds a lock on it until commit (the SKU row, the order id, the SKU's policy).
A crash between the broker's ack and the delete republishes the batch with the same event
ids: consumers dedupe.
"""

import asyncio
import contextlib
import logging

from aiokafka import AIOKafkaProducer
from sqlalchemy import delete, func, select

from shared.db.engine import SessionFactory
from shared.db.tables import OutboxMessage, decode_headers
from shared.messaging.errors import is_transient

log = logging.getLogger(__name__)


class OutboxRelay:
    def __init__(
        self,
        *,
        session_factory: SessionFactory,
        producer: AIOKafkaProducer,
        source: str,
        batch_size: int,
        poll_interval: float,
    ) -> None:
        self._session_factory = session_factory
        self._producer = producer
        self._source = source
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Called after a commit that added rows, so they leave without waiting for the poll."""
        self._wake.set()

    async def relay_once(self) -> int:
        async with self._session_factory() as session, session.begin():
            locked = await session.scalar(
                select(func.pg_try_advisory_xact_lock(func.hashtext("outbox:" + self._source)))
            )
            if not locked:
                return 0
            rows = (
                await session.scalars(
                    select(OutboxMessage)
                    .where(OutboxMessage.source == self._source)  # type: ignore[arg-type]
                    .order_by(OutboxMessage.id)  # type: ignore[arg-type]
                    .limit(self._batch_size)
                )
            ).all()
            if not rows:
                return 0
            pending = [
                await self._producer.send(
                    row.topic, value=row.value, key=row.key, headers=decode_headers(row.headers)
                )
                for row in rows
            ]
            await asyncio.gather(*pending)
            await session.execute(
                delete(OutboxMessage).where(
                    OutboxMessage.id.in_([row.id for row in rows])  # type: ignore[union-attr]
                )
            )
        return len(rows)

    async def run(self) -> None:
        attempt = 0
        while True:
            try:
                sent = await self.relay_once()
                attempt = 0
            except Exception as error:
                if not is_transient(error):
                    log.exception("outbox relay failed")
                attempt += 1
                await asyncio.sleep(min(10.0, 0.2 * 2**attempt))
                continue
            if sent < self._batch_size:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._poll_interval)

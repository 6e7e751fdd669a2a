"""A process's way out: its batches' events leave from memory right after their commit.

The guarantee, for every event a committed batch published:
- it is sent at least once, and, for one key, never before an event committed earlier for that
  key (by this process or any other): per-key order holds across crashes and rebalances;
- the batch's offsets are committed only after the broker acked all of its events (the handler
  returns only then, and FastStream commits after the handler);
- it may be sent twice, with the same event id, after a crash, a failed send or a rebalance;
  consumers dedupe on the id.

How:
1. The batch's rows are written to `outbox_message` in its transaction, as before. The same
   statement deletes the rows this process sent before (no delete of its own per batch) and
   asks whether another process's rows for the same keys are still there.
2. Under a process-wide lock, the transaction commits and its rows are sent from memory, and the
   lock is held until the broker acked them: this process sends in commit order, one batch at a
   time, so a failed send never has a later batch overtake it.
3. The rows are deleted in bulk with the next batch (or after `idle_flush` without one).
4. The recovery relay (`OutboxRelay`) sends whatever is in the table, in id order, before this
   process sends anything new: at start, after a failed send or commit, after this process was
   assigned partitions, and when another process's rows for the same keys are still waiting.
   A batch committed then leaves through the relay, with whatever is ahead of it.
A check every `poll_interval` also recovers rows that wait longer than `stale_after` (a unit of
work committed without this outbox, say).
"""

import asyncio
import logging
import time

from shared import faults
from shared.backoff import Backoff
from shared.db.unit_of_work import UnitOfWork
from shared.messaging.assignments import assignments
from shared.messaging.errors import is_transient
from shared.messaging.outbox_relay import OutboxRelay

log = logging.getLogger(__name__)

_BACKOFF = Backoff(initial=0.2, maximum=10.0)
# Another instance's relay holds the source: it is sending, wait for it.
_LOCKED_OUT_WAIT = 0.05


class Outbox:
    def __init__(
        self,
        *,
        relay: OutboxRelay,
        batch_size: int,
        poll_interval: float,
        stale_after: float,
    ) -> None:
        self._relay = relay
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._stale_after = stale_after
        self._lock = asyncio.Lock()
        # Sent and acked, to be deleted with the next batch.
        self._sent: list[int] = []
        # Written by this process and not known deleted: never "another process's rows".
        self._own: set[int] = set()
        self._must_recover = True  # at start: a previous life may have left rows
        self._assignments_seen = assignments()
        self._last_commit = time.monotonic()

    async def commit(self, uow: UnitOfWork) -> None:
        forget, self._sent = self._sent, []
        if forget:
            faults.reached("before_bulk_delete")
        try:
            staged = await uow.stage(forget=forget, own=list(self._own))
        except BaseException:
            self._sent[:0] = forget
            raise
        if not staged.ids:
            # Nothing to send, so no place in the order of sends to keep.
            try:
                await uow.finish()
            except BaseException:
                self._sent[:0] = forget
                raise
            self._own.difference_update(forget)
            return
        self._own.update(staged.ids)
        async with self._lock:
            faults.reached("before_db_commit")
            try:
                await uow.finish()
            except BaseException:
                # It may have committed all the same: whatever it wrote is for the relay.
                self._sent[:0] = forget
                self._own.difference_update(staged.ids)
                self._must_recover = True
                raise
            self._own.difference_update(forget)
            self._last_commit = time.monotonic()
            faults.reached("after_db_commit")
            if staged.behind or self._needs_recovery():
                await self._recover()
                return
            faults.reached("before_send")
            try:
                await self._relay.send_all(uow.outgoing)
            except Exception as error:
                log.warning(
                    "sending %d committed event(s) failed (%s: %s); the recovery relay sends them",
                    len(staged.ids),
                    type(error).__name__,
                    error,
                )
                await self._recover()
                return
            self._sent.extend(staged.ids)
            faults.reached("after_send")

    def _needs_recovery(self) -> bool:
        return self._must_recover or self._assignments_seen != assignments()

    async def _recover(self) -> None:
        """Sends every committed row in id order, this process's own sent rows deleted unsent;
        called under the lock. Retries until done: nothing newer may leave before."""
        self._must_recover = True
        seen = assignments()
        attempt = 0
        taken = 0
        while True:
            forget, self._sent = self._sent, []
            try:
                ids = await self._relay.relay_once(forget=forget)
            except Exception as error:
                self._sent[:0] = forget
                attempt += 1
                log.warning(
                    "outbox recovery failed (%s: %s), retrying",
                    type(error).__name__,
                    error,
                    exc_info=not is_transient(error),
                )
                if not is_transient(error):
                    await self._relay.renew_producer()
                await asyncio.sleep(_BACKOFF.delay(attempt))
                continue
            if ids is None:
                self._sent[:0] = forget
                await asyncio.sleep(_LOCKED_OUT_WAIT)
                continue
            self._own.difference_update(forget)
            self._own.difference_update(ids)
            taken += len(ids)
            if len(ids) < self._batch_size:
                break
        if taken:
            log.info("outbox recovery sent %d event(s) in id order", taken)
        self._must_recover = False
        self._assignments_seen = seen

    async def close(self) -> None:
        """Deletes what was sent, so a stop and a start send nothing twice."""
        async with self._lock:
            forget, self._sent = self._sent, []
            if forget:
                await self._relay.tidy(forget=forget, older_than=self._stale_after, own=[])

    async def run(self) -> None:
        """The start's recovery, then a check every `poll_interval`: rows sent a while ago are
        deleted without waiting for a batch, and rows waiting too long are recovered."""
        while True:
            try:
                await self._tick()
            except Exception as error:
                log.warning("outbox check failed: %s", error, exc_info=not is_transient(error))
            await asyncio.sleep(self._poll_interval)

    async def _tick(self) -> None:
        async with self._lock:
            if self._needs_recovery():
                await self._recover()
                return
            idle = time.monotonic() - self._last_commit >= self._poll_interval
            forget = self._sent if idle else []
            if forget:
                faults.reached("before_bulk_delete")
            self._sent = [] if idle else self._sent
            try:
                stale = await self._relay.tidy(
                    forget=forget, older_than=self._stale_after, own=list(self._own)
                )
            except BaseException:
                self._sent[:0] = forget
                raise
            self._own.difference_update(forget)
            if stale:
                await self._recover()

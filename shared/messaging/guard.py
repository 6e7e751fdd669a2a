"""The consume guard: every handler runs inside it.

- transient failures (database or broker unreachable) are retried with exponential backoff,
  for as long as it takes: the message is neither skipped nor dead-lettered;
- poison messages (bad bytes, schema violations, business conflicts) go to the dead-letter topic
  and the consumer moves on;
- anything else is retried a few times, then dead-lettered, so one bug cannot stall a partition.

Consumers take records in batches, one transaction per batch. A batch that fails for any reason
but a transient one is taken apart: each record is handled on its own, under the rules above,
so a poison record is dead-lettered alone and the others apply, in their order. (The batch's
transaction rolled back, so nothing of it was applied twice.)

The guard commits the offsets itself once the handler returned, so after its database
transaction committed and the broker acked what it published (at-least-once; handlers are
idempotent). A commit refused after a rebalance took the partitions is an ordinary event: it is
logged as a warning, and the new owner reads the batch again.
"""

import asyncio
import copy
import logging
from typing import Any

from aiokafka.structs import ConsumerRecord
from faststream import BaseMiddleware
from faststream._internal.basic_types import AsyncFuncAny
from faststream._internal.context.repository import ContextRepo
from faststream.message import AckStatus, StreamMessage

from shared import faults
from shared.backoff import Backoff
from shared.contracts.headers import CORRELATION_ID
from shared.logs import correlation_id
from shared.messaging.dead_letter import DeadLetters
from shared.messaging.errors import is_transient, poison_reason
from shared.messaging.records import records_of

log = logging.getLogger(__name__)


class RetryPolicy:
    def __init__(self, *, initial: float, maximum: float, unexpected_attempts: int) -> None:
        self.backoff = Backoff(initial, maximum)
        self.unexpected_attempts = unexpected_attempts


class ConsumeGuard(BaseMiddleware):
    def __init__(
        self,
        msg: Any | None,
        /,
        *,
        context: ContextRepo,
        dead_letters: DeadLetters,
        retry: RetryPolicy,
    ) -> None:
        super().__init__(msg, context=context)
        self._dead_letters = dead_letters
        self._retry = retry

    async def consume_scope(self, call_next: AsyncFuncAny, msg: StreamMessage[Any]) -> Any:
        result = await self._scoped(call_next, msg)
        faults.reached("before_offset_commit")
        await _commit_offsets(msg)
        faults.reached("after_offset_commit")
        return result

    async def _scoped(self, call_next: AsyncFuncAny, msg: StreamMessage[Any]) -> Any:
        token = correlation_id.set(msg.headers.get(CORRELATION_ID) or msg.correlation_id)
        try:
            return await self._guarded(call_next, msg)
        finally:
            correlation_id.reset(token)

    async def _guarded(self, call_next: AsyncFuncAny, msg: StreamMessage[Any]) -> Any:
        records = records_of(msg)
        attempt = 0
        unexpected = 0
        while True:
            attempt += 1
            try:
                result = await call_next(msg)
                # FastStream's own Received/Processed lines fall outside this scope; this one
                # carries the correlation id.
                log.info(
                    "handled %s record(s) of %s", len(records), records[0].topic,
                    extra={"attempts": attempt},
                )  # fmt: skip
                return result
            except Exception as error:
                reason = poison_reason(error)
                if reason is None and not is_transient(error):
                    unexpected += 1
                    if unexpected >= self._retry.unexpected_attempts or len(records) > 1:
                        reason = f"processing failed: {type(error).__name__}: {error}"[:1000]
                if reason is not None:
                    if len(records) > 1:
                        await self._take_apart(call_next, msg, records, reason)
                    else:
                        await self._dead_letter(msg, reason)
                    return None
                delay = self._retry.backoff.delay(attempt)
                log.warning(
                    "retrying in %.2fs after %s: %s",
                    delay,
                    type(error).__name__,
                    error,
                    exc_info=not is_transient(error),
                )
                await asyncio.sleep(delay)
            # A retried handler must decode afresh: clear FastStream's cached decoded body.
            msg.clear_cache()

    async def _take_apart(
        self,
        call_next: AsyncFuncAny,
        msg: StreamMessage[Any],
        records: "tuple[ConsumerRecord[bytes, bytes], ...]",
        reason: str,
    ) -> None:
        """A batch failed for a reason that is not transient: nothing of it was applied, and
        each record now runs alone, so only the one at fault is retried or dead-lettered."""
        log.info("taking a batch of %s apart after %s", len(records), reason)
        for record in records:
            alone = _alone(msg, record)
            # Handlers take their `KafkaMessage` from FastStream's context.
            with self.context.scope("message", alone):
                await self._scoped(call_next, alone)

    async def _dead_letter(self, msg: StreamMessage[Any], reason: str) -> None:
        """Never gives up: skipping would lose the message. A dead letter is cut to fit what
        the dead-letter topic takes (`build_dead_letter`), so what holds the partition here is
        a broker that cannot be reached, and the log says so."""
        attempt = 0
        while True:
            attempt += 1
            try:
                await self._dead_letters.send(records_of(msg)[0], reason)
                return
            except Exception as error:
                log.log(
                    logging.WARNING if is_transient(error) else logging.CRITICAL,
                    "dead-lettering failed (%s: %s), retrying",
                    type(error).__name__,
                    error,
                )
                await asyncio.sleep(self._retry.backoff.delay(attempt))


async def _commit_offsets(msg: StreamMessage[Any]) -> None:
    try:
        await msg.ack()
    except Exception as error:
        log.warning(
            "offsets not committed (%s: %s): the partitions moved, their new owner reads the"
            " batch again and finds it done",
            type(error).__name__,
            error,
        )
        # FastStream would try again after the guard, and log the same refusal as CRITICAL.
        msg.committed = AckStatus.ACKED


def _alone(msg: StreamMessage[Any], record: "ConsumerRecord[bytes, bytes]") -> StreamMessage[Any]:
    """The batch message narrowed to one of its records, as FastStream would have parsed it."""
    single = copy.copy(msg)
    headers = {name: value.decode(errors="replace") for name, value in record.headers}
    single.raw_message = (record,)
    single.body = [record.value or b""]
    single.batch_headers = [headers]
    single.headers = headers
    single.correlation_id = headers.get(CORRELATION_ID) or msg.correlation_id
    return single

"""The consume guard: every handler runs inside it.

- transient failures (database or broker unreachable) are retried with exponential backoff,
  for as long as it takes: the message is neither skipped nor dead-lettered;
- poison messages (bad bytes, schema violations, business conflicts) go to the dead-letter topic
  and the consumer moves on;
- anything else is retried a few times, then dead-lettered, so one bug cannot stall a partition.

The offset is committed by FastStream only after the guard returns, so after the handler's
database transaction has committed (at-least-once; handlers are idempotent).
"""

import asyncio
import logging
import random
from typing import Any

from faststream import BaseMiddleware
from faststream._internal.basic_types import AsyncFuncAny
from faststream._internal.context.repository import ContextRepo
from faststream.message import StreamMessage

from shared.contracts.headers import CORRELATION_ID
from shared.logs import correlation_id
from shared.messaging.dead_letter import DeadLetters
from shared.messaging.errors import is_transient, poison_reason

log = logging.getLogger(__name__)


class RetryPolicy:
    def __init__(self, *, initial: float, maximum: float, unexpected_attempts: int) -> None:
        self.initial = initial
        self.maximum = maximum
        self.unexpected_attempts = unexpected_attempts

    def backoff(self, attempt: int) -> float:
        """Full jitter: spreads the retries of many consumers after a shared outage."""
        return random.uniform(0, min(self.maximum, self.initial * 2 ** (attempt - 1)))


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
        token = correlation_id.set(msg.headers.get(CORRELATION_ID) or msg.correlation_id)
        try:
            return await self._guarded(call_next, msg)
        finally:
            correlation_id.reset(token)

    async def _guarded(self, call_next: AsyncFuncAny, msg: StreamMessage[Any]) -> Any:
        attempt = 0
        unexpected = 0
        while True:
            attempt += 1
            try:
                result = await call_next(msg)
                # FastStream's own Received/Processed lines fall outside this scope; this one
                # carries the correlation id.
                log.info("handled %s", msg.raw_message.topic, extra={"attempts": attempt})
                return result
            except Exception as error:
                reason = poison_reason(error)
                if reason is None and not is_transient(error):
                    unexpected += 1
                    if unexpected >= self._retry.unexpected_attempts:
                        reason = f"processing failed: {type(error).__name__}: {error}"[:1000]
                if reason is not None:
                    await self._dead_letter(msg, reason)
                    return None
                delay = self._retry.backoff(attempt)
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

    async def _dead_letter(self, msg: StreamMessage[Any], reason: str) -> None:
        """Never gives up: skipping would lose the message. A dead letter the broker refuses
        (say, too large with its headers) holds the partition and says so in the log."""
        attempt = 0
        while True:
            attempt += 1
            try:
                await self._dead_letters.send(msg.raw_message, reason)
                return
            except Exception as error:
                log.log(
                    logging.WARNING if is_transient(error) else logging.CRITICAL,
                    "dead-lettering failed (%s: %s), retrying",
                    type(error).__name__,
                    error,
                )
                await asyncio.sleep(self._retry.backoff(attempt))

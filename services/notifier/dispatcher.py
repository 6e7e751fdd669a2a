"""Delivers due notifications, many at a time, so one slow or failing receiver holds up nothing
else. On shutdown, sends already under way finish and are recorded before the process exits."""

import asyncio
import logging
import uuid
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from functools import partial
from typing import Generic, TypeVar

from prometheus_client import Counter

from services.notifier import handlers
from services.notifier.channels import Channel, DeliveryFailed
from services.notifier.domain.notification import NotificationStatus, RetryPolicy
from services.notifier.handlers import DeliveryRules
from services.notifier.rendering import Templates
from services.notifier.unit_of_work import NotifierUnitOfWork, NotifierWork
from shared.backoff import Backoff
from shared.logs import correlation_id
from shared.messaging.errors import is_transient
from shared.runtime import Runtime

log = logging.getLogger(__name__)


W = TypeVar("W", bound=NotifierWork)


class Dispatcher(Generic[W]):
    """Takes its units of work and its outcome counter rather than the runtime, so the fast
    tier runs it on fakes. `units` opens one per step, none held across a send."""

    def __init__(
        self,
        *,
        units: Callable[[], AbstractAsyncContextManager[W]],
        outcomes: Counter,
        channels: Mapping[str, Channel],
        templates: Templates,
        rules: DeliveryRules,
        concurrency: int,
        poll_interval: float,
        shutdown_grace: float,
    ) -> None:
        self._units = units
        self._outcomes = outcomes
        self._channels = channels
        self._templates = templates
        self._rules = rules
        self._concurrency = concurrency
        self._poll_interval = poll_interval
        self._shutdown_grace = shutdown_grace
        self._in_flight: dict[uuid.UUID, asyncio.Task[None]] = {}

    async def run(self) -> None:
        try:
            while True:
                try:
                    await self._start_due()
                except Exception as error:
                    log.warning(
                        "notification poll failed: %s", error, exc_info=not is_transient(error)
                    )
                await asyncio.sleep(self._poll_interval)
        finally:
            if self._in_flight:
                # Let sends under way finish and be recorded, so a restart repeats none of them.
                await asyncio.wait(self._in_flight.values(), timeout=self._shutdown_grace)

    async def _start_due(self) -> None:
        free = self._concurrency - len(self._in_flight)
        if free <= 0:
            return
        async with self._units() as uow:
            due = await uow.notifications.due_ids(
                now=datetime.now(UTC), limit=free, busy=set(self._in_flight)
            )
        for notification_id, order_id in due:
            task = asyncio.create_task(self._deliver(notification_id, order_id))
            self._in_flight[notification_id] = task
            task.add_done_callback(partial(self._finished, notification_id))

    async def _settle(
        self, notification_id: uuid.UUID, failure: DeliveryFailed | None, *, attempt: int
    ) -> str:
        """Records what the send did. It went out already, so a settle that fails would have
        it sent again once the lease runs out: a transient failure (a pooled connection that
        died with a database restart, found only now) is retried at once, briefly."""
        tried = 0
        while True:
            tried += 1
            try:
                async with self._units() as uow:
                    outcome = await handlers.settle(
                        notification_id, failure, attempt=attempt, uow=uow, rules=self._rules
                    )
                    await uow.commit()
                return outcome
            except Exception as error:
                if tried == _SETTLE_ATTEMPTS or not is_transient(error):
                    raise
                await asyncio.sleep(_SETTLE_BACKOFF.delay(tried))

    async def _claim(self, notification_id: uuid.UUID, order_id: str) -> handlers.Claimed | None:
        try:
            async with self._units() as uow:
                claimed = await handlers.claim(
                    notification_id,
                    order_id,
                    uow=uow,
                    channels=self._channels,
                    templates=self._templates,
                    rules=self._rules,
                )
                await uow.commit()
            return claimed
        except Exception as error:
            if is_transient(error):
                raise
            log.exception("notification %s cannot be composed; it fails", notification_id)
            async with self._units() as uow:
                channel = await handlers.give_up(
                    notification_id, f"cannot compose: {error!r}", uow=uow
                )
                await uow.commit()
            if channel:
                self._outcomes.labels(channel, NotificationStatus.FAILED).inc()
            return None

    def _finished(self, notification_id: uuid.UUID, _: "asyncio.Task[None]") -> None:
        self._in_flight.pop(notification_id, None)

    async def _deliver(self, notification_id: uuid.UUID, order_id: str) -> None:
        # Its own task, so its own context: every line this send logs (the channel's too)
        # names the order, as the lines of the messages about it do.
        correlation_id.set(order_id)
        rules = self._rules
        try:
            claimed = await self._claim(notification_id, order_id)
            if claimed is None:
                return
            if claimed.outgoing is None:
                self._outcomes.labels(claimed.channel, NotificationStatus.SKIPPED).inc()
                return
            failure: DeliveryFailed | None = None
            try:
                # Well inside the lease, so no other instance takes it over while this one sends.
                async with asyncio.timeout(rules.lease_seconds / 2):
                    await self._channels[claimed.channel].send(claimed.outgoing)
            except TimeoutError:
                failure = DeliveryFailed("no answer within half the lease", permanent=False)
            except DeliveryFailed as error:
                failure = error
            except Exception as error:  # a channel bug must still count as an attempt
                log.exception("notification %s: unexpected error sending", notification_id)
                failure = DeliveryFailed(f"unexpected: {error!r}", permanent=False)
            if failure:
                log.warning("notification %s by %s: %s", notification_id, claimed.channel, failure)
            outcome = await self._settle(notification_id, failure, attempt=claimed.attempt)
            self._outcomes.labels(claimed.channel, outcome).inc()
        except Exception as error:
            # The row stays claimed; its lease runs out and the notification is tried again.
            log.warning(
                "notification %s not settled: %s", notification_id, error,
                exc_info=not is_transient(error),
            )  # fmt: skip


_SETTLE_ATTEMPTS = 3
_SETTLE_BACKOFF = Backoff(initial=0.1, maximum=1.0)


async def run_dispatcher(runtime: Runtime, channels: Mapping[str, Channel]) -> None:
    settings = runtime.settings
    await Dispatcher(
        units=partial(
            NotifierUnitOfWork,
            runtime.session_factory,
            source=runtime.service,
            outbox=runtime.outbox,
        ),
        outcomes=runtime.metrics.notifications,
        channels=channels,
        templates=Templates(settings.notify_templates_dir, timezone=settings.shop_zone),
        rules=DeliveryRules(
            retry=RetryPolicy(
                max_attempts=settings.notify_max_attempts,
                initial_seconds=settings.notify_retry_initial_seconds,
                max_seconds=settings.notify_retry_max_seconds,
            ),
            lease_seconds=settings.notify_lease_seconds,
            wait_behind_seconds=settings.notify_poll_interval_seconds,
        ),
        concurrency=settings.notify_concurrency,
        poll_interval=settings.notify_poll_interval_seconds,
        shutdown_grace=settings.notify_shutdown_grace_seconds,
    ).run()

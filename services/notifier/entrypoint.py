"""Where the notifier listens: every new version of an order. Delivery runs beside it."""

import contextlib
import logging

import httpx
from faststream import Context
from faststream.kafka import KafkaMessage, KafkaRouter

from services.notifier import handlers
from services.notifier.channels import Channel
from services.notifier.channels.email import EmailChannel
from services.notifier.channels.webhook import WebhookChannel
from services.notifier.dispatcher import run_dispatcher
from services.notifier.unit_of_work import NotifierUnitOfWork
from shared.contracts.headers import NOTIFICATION_ID, REPLAYED_FROM
from shared.contracts.outputs import OrderStatusChangedReadBack
from shared.contracts.topics import ORDERS_STATUS_CHANGED
from shared.messaging.records import delivered
from shared.messaging.subscriptions import consumes
from shared.runtime import Runtime
from shared.settings import Settings

log = logging.getLogger(__name__)

SERVICE = "notifier"
router = KafkaRouter()


def enabled_channels(settings: Settings) -> list[str]:
    return [
        name
        for name, configured in (("email", settings.smtp_host), ("webhook", settings.webhook_url))
        if configured
    ]


@consumes(router, ORDERS_STATUS_CHANGED, service=SERVICE)
async def on_statuses_changed(
    changes: list[OrderStatusChangedReadBack], message: KafkaMessage, runtime: Runtime = Context()
) -> None:
    async with NotifierUnitOfWork(
        runtime.session_factory, source=runtime.service, outbox=runtime.outbox
    ) as uow:
        news = []
        for item in delivered(changes, message):
            resend = item.header(NOTIFICATION_ID) if item.header(REPLAYED_FROM) else None
            with item.handling():
                if resend:
                    await handlers.send_again(resend, uow=uow)
                else:
                    news.append(item.body)  # taken together, below
        await handlers.take_changes(
            news,
            uow=uow,
            channels=enabled_channels(runtime.settings),
            window=runtime.settings.notify_coalesce_seconds,
        )
        await uow.commit()


async def deliver_notifications(runtime: Runtime) -> None:
    """Opens the channels the configuration names and delivers until the service stops."""
    settings = runtime.settings
    names = enabled_channels(settings)
    channels: dict[str, Channel] = {}
    async with contextlib.AsyncExitStack() as stack:
        if "email" in names:
            channels["email"] = EmailChannel(settings)
        if "webhook" in names:
            client = await stack.enter_async_context(
                httpx.AsyncClient(timeout=settings.webhook_timeout_seconds, follow_redirects=False)
            )
            channels["webhook"] = WebhookChannel(settings, client)
        if not channels:
            log.warning("no notification channel configured: orders are tracked, nobody is told")
        await run_dispatcher(runtime, channels)

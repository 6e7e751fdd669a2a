"""Webhooks to the shop over HTTP (httpx), signed so the receiver can trust them."""

import json
import time

import httpx

from services.notifier.channels import DeliveryFailed, Outgoing
from services.notifier.channels.signing import (
    ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    sign,
)
from services.notifier.domain.model import Kind, delay_incentives
from services.notifier.rendering import Rendered
from shared.contracts.outputs import OrderStatusChanged
from shared.settings import Settings

# Worth another try: the receiver is busy, restarting or timed out.
_TRANSIENT_STATUS = {408, 425, 429}


class WebhookChannel:
    name = "webhook"

    def __init__(self, settings: Settings, client: httpx.AsyncClient) -> None:
        assert settings.webhook_url, "webhook needs BACKORDER_WEBHOOK_URL"
        assert settings.webhook_secret, "webhook needs BACKORDER_WEBHOOK_SECRET"
        self._url = str(settings.webhook_url)
        self._secret = settings.webhook_secret.get_secret_value().encode()
        self._client = client

    def recipient(self, latest: OrderStatusChanged) -> str | None:
        return self._url

    def body(
        self, *, notification_id: str, kind: Kind, latest: OrderStatusChanged, rendered: Rendered
    ) -> str:
        incentives = delay_incentives(kind, latest)
        return json.dumps(
            {
                "id": notification_id,
                "kind": kind.value,
                "subject": rendered.subject,
                "text": rendered.text,
                "order": latest.model_dump(mode="json"),
                # Absent unless a waiting line's SKU offers something for the wait.
                **({"delay_incentives": incentives} if incentives else {}),
            },
            separators=(",", ":"),
        )

    async def send(self, outgoing: Outgoing) -> None:
        body = outgoing.body.encode()
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            ID_HEADER: outgoing.notification_id,
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(self._secret, timestamp=timestamp, body=body),
        }
        try:
            # The configured URL, not the one recorded at claim time: a moved endpoint is
            # reached by the retries and replays of notifications that failed on the old one.
            response = await self._client.post(self._url, content=body, headers=headers)
        except httpx.HTTPError as error:
            raise DeliveryFailed(f"webhook unreachable: {error!r}", permanent=False) from error
        if response.is_success:
            return
        status = response.status_code
        permanent = not (status >= 500 or status in _TRANSIENT_STATUS)
        raise DeliveryFailed(f"webhook answered HTTP {status}", permanent=permanent)

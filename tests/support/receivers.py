"""Real receivers on loopback: an SMTP server (aiosmtpd) and an HTTP server taking webhooks.

The webhook receiver checks signatures with its own HMAC code, not the project's, the way a
shop's receiver would; a request with a bad or stale signature is refused and counted.
"""

import asyncio
import email
import email.policy
import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


@dataclass(frozen=True)
class Mail:
    message_id: str
    to: str
    subject: str
    body: str


class _Inbox:
    def __init__(self, mailbox: "Mailbox") -> None:
        self._mailbox = mailbox

    async def handle_RCPT(  # noqa: N802 (aiosmtpd calls it by this name)
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address.startswith("nobody"):
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802 (aiosmtpd calls it by this name)
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        await asyncio.sleep(self._mailbox.delay)
        assert isinstance(envelope.content, bytes)
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        body = message.get_body(("plain",))
        self._mailbox.mails.append(
            Mail(
                message_id=str(message["Message-ID"]),
                to=str(message["To"]),
                subject=str(message["Subject"]),
                body=body.get_content() if body else "",
            )
        )
        return "250 OK"


@dataclass
class Mailbox:
    """An SMTP server that can be taken down and brought back on the same port."""

    port: int
    mails: list[Mail] = field(default_factory=list)
    # Seconds each mail takes to be accepted, like a busy server.
    delay: float = 0.0
    _controller: Controller | None = None

    def start(self) -> None:
        self._controller = Controller(_Inbox(self), hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller:
            self._controller.stop()
            self._controller = None

    def to(self, address: str) -> list[Mail]:
        return [mail for mail in self.mails if mail.to == address]


@dataclass(frozen=True)
class Hook:
    notification_id: str
    kind: str
    subject: str
    order: dict[str, Any]
    # The whole body as the shop received it.
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass
class WebhookReceiver:
    port: int
    secret: bytes
    hooks: list[Hook] = field(default_factory=list)
    refused_signatures: int = 0
    # What the receiver answers instead of 200, e.g. 503 while "down for maintenance".
    answer: int = 200
    # Orders whose webhooks this receiver always fails with HTTP 500.
    failing_orders: set[str] = field(default_factory=set)
    # Seconds each request takes to be answered, like a busy receiver.
    delay: float = 0.0
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/backorder"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                self.send_response(receiver.receive(dict(self.headers.items()), body))
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def receive(self, headers: dict[str, str], body: bytes) -> int:
        time.sleep(self.delay)
        timestamp = headers.get("Backorder-Timestamp", "")
        expected = hmac.new(self.secret, timestamp.encode() + b"." + body, hashlib.sha256)
        signature = headers.get("Backorder-Signature", "")
        fresh = timestamp.isdigit() and abs(time.time() - int(timestamp)) < 300
        if not (fresh and hmac.compare_digest("v1=" + expected.hexdigest(), signature)):
            self.refused_signatures += 1
            return 401
        if self.answer != 200:
            return self.answer
        payload = json.loads(body)
        if payload["order"]["order_id"] in self.failing_orders:
            return 500
        if payload["id"] != headers.get("Backorder-Notification-Id"):
            return 400
        self.hooks.append(
            Hook(
                notification_id=payload["id"],
                kind=payload["kind"],
                subject=payload["subject"],
                order=payload["order"],
                payload=payload,
            )
        )
        return 200

    def for_order(self, order_id: str) -> list[Hook]:
        return [hook for hook in self.hooks if hook.order["order_id"] == order_id]

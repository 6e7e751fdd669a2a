"""Customer email over SMTP (aiosmtplib): plain, STARTTLS or implicit TLS, optional login."""

import ssl
from email.message import EmailMessage
from email.utils import parseaddr

import aiosmtplib

from services.notifier.channels import DeliveryFailed, Outgoing
from services.notifier.domain.model import Kind
from services.notifier.rendering import Rendered
from shared.contracts.outputs import OrderStatusChanged
from shared.settings import Settings


class EmailChannel:
    name = "email"

    def __init__(self, settings: Settings) -> None:
        assert settings.smtp_host, "email needs BACKORDER_SMTP_HOST"
        self._settings = settings
        self._tls = (
            ssl.create_default_context(cafile=settings.smtp_cafile)
            if settings.smtp_security != "none"
            else None
        )
        domain = parseaddr(settings.notify_from)[1].rpartition("@")[2] or "localhost"
        self._message_id_domain = domain

    def recipient(self, latest: OrderStatusChanged) -> str | None:
        return str(latest.customer.email) if latest.customer else None

    def body(
        self, *, notification_id: str, kind: Kind, latest: OrderStatusChanged, rendered: Rendered
    ) -> str:
        return rendered.text

    async def send(self, outgoing: Outgoing) -> None:
        settings = self._settings
        message = EmailMessage()
        message["From"] = settings.notify_from
        message["To"] = outgoing.recipient
        message["Subject"] = outgoing.subject
        # The same id on every attempt: a resend after a crash is recognisable as the same mail.
        message["Message-ID"] = f"<{outgoing.notification_id}@{self._message_id_domain}>"
        message.set_content(outgoing.body)
        password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
        try:
            await aiosmtplib.send(
                message,
                hostname=settings.smtp_host,
                port=settings.smtp_port,
                username=settings.smtp_username,
                password=password,
                use_tls=settings.smtp_security == "tls",
                start_tls=settings.smtp_security == "starttls",
                tls_context=self._tls,
                timeout=settings.smtp_timeout_seconds,
            )
        except aiosmtplib.SMTPRecipientsRefused as error:
            # 4xx (greylisting, mailbox full) may pass; 5xx will not.
            permanent = all(refusal.code >= 500 for refusal in error.recipients)
            raise DeliveryFailed(f"recipient refused: {error}", permanent=permanent) from error
        except aiosmtplib.SMTPResponseException as error:
            permanent = 500 <= error.code < 600
            raise DeliveryFailed(
                f"SMTP {error.code}: {error.message}", permanent=permanent
            ) from error
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
            raise DeliveryFailed(f"SMTP unreachable: {error!r}", permanent=False) from error

"""Email over TLS with a login, against a real SMTP server that insists on both."""

import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from services.notifier.channels import DeliveryFailed, Outgoing
from services.notifier.channels.email import EmailChannel
from services.testing import free_port
from shared.settings import Settings
from tests.support.receivers import Mailbox, _Inbox

USER, PASSWORD = "shop-mailer", "correct horse battery staple"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("smtp-tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def login(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: object
) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        USER.encode(),
        PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False)


def server_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return context


@pytest.fixture(params=["starttls", "tls"])
def secured_mailbox(
    request: pytest.FixtureRequest, certificate: tuple[Path, Path]
) -> Iterator[tuple[Mailbox, str]]:
    mailbox = Mailbox(port=free_port())
    tls = server_context(certificate)
    mode = {"tls_context": tls, "require_starttls": True}
    if request.param == "tls":
        # aiosmtpd only counts STARTTLS as TLS when it decides to offer AUTH
        mode = {"ssl_context": tls, "auth_require_tls": False}
    controller = Controller(
        _Inbox(mailbox),
        hostname="127.0.0.1",
        port=mailbox.port,
        authenticator=login,
        auth_required=True,
        **mode,  # type: ignore[arg-type]
    )
    controller.start()
    try:
        yield mailbox, request.param
    finally:
        controller.stop()


def channel(port: int, security: str, cafile: Path | None, password: str) -> EmailChannel:
    return EmailChannel(
        Settings(
            smtp_host="127.0.0.1",
            smtp_port=port,
            smtp_security=security,
            smtp_username=USER,
            smtp_password=password,
            smtp_cafile=cafile,
            smtp_timeout_seconds=5,
            notify_from="Shop <orders@shop.example>",
        )
    )


def outgoing(notification_id: str) -> Outgoing:
    return Outgoing(
        notification_id=notification_id,
        recipient="ada@shop.example",
        subject="Your order o-1 is backordered",
        body="Hello Ada,\n",
    )


# The implicit-TLS server is TLS from the first byte; aiosmtpd cannot tell and warns.
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
async def test_mail_goes_out_encrypted_and_logged_in_and_not_otherwise(
    secured_mailbox: tuple[Mailbox, str], certificate: tuple[Path, Path]
) -> None:
    mailbox, security = secured_mailbox
    await channel(mailbox.port, security, certificate[0], PASSWORD).send(outgoing("n-1"))
    assert [(m.to, m.subject, m.message_id) for m in mailbox.mails] == [
        ("ada@shop.example", "Your order o-1 is backordered", "<n-1@shop.example>")
    ]

    with pytest.raises(DeliveryFailed) as wrong_password:
        await channel(mailbox.port, security, certificate[0], "guess").send(outgoing("n-2"))
    assert wrong_password.value.permanent  # 535: trying again will not help
    # a server whose certificate is not trusted gets nothing, password included
    with pytest.raises(DeliveryFailed, match=r"CERTIFICATE_VERIFY_FAILED|certificate verify"):
        await channel(mailbox.port, security, None, PASSWORD).send(outgoing("n-3"))
    assert len(mailbox.mails) == 1

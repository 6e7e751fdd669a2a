"""How every Kafka client of the project connects: plain, or SASL_SSL with SCRAM."""

import ssl
from typing import Any

from aiokafka.helpers import create_ssl_context
from faststream.security import BaseSecurity, SASLScram256, SASLScram512

from shared.settings import Settings


def _ssl_context(settings: Settings) -> ssl.SSLContext:
    cafile = str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None
    context: ssl.SSLContext = create_ssl_context(cafile=cafile)
    return context


def _password(settings: Settings) -> str:
    assert settings.kafka_sasl_password is not None  # checked by Settings
    return settings.kafka_sasl_password.get_secret_value()


def kafka_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for aiokafka producers, consumers and admin clients."""
    options: dict[str, Any] = {"bootstrap_servers": settings.kafka_bootstrap_servers}
    if settings.kafka_security_protocol == "SASL_SSL":
        options |= {
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": settings.kafka_sasl_mechanism,
            "sasl_plain_username": settings.kafka_sasl_username,
            "sasl_plain_password": _password(settings),
            "ssl_context": _ssl_context(settings),
        }
    return options


def faststream_security(settings: Settings) -> BaseSecurity | None:
    if settings.kafka_security_protocol != "SASL_SSL":
        return None
    scram = SASLScram512 if settings.kafka_sasl_mechanism == "SCRAM-SHA-512" else SASLScram256
    return scram(
        username=settings.kafka_sasl_username or "",
        password=_password(settings),
        ssl_context=_ssl_context(settings),
    )

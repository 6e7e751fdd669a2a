"""Configuration from the environment; a bad value stops the process at start-up."""

import os
from functools import lru_cache
from typing import Literal

from pydantic import (
    AliasChoices,
    Field,
    FilePath,
    PositiveFloat,
    PositiveInt,
    SecretStr,
    ValidationError,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BACKORDER_", extra="ignore")

    database_url: str = Field(
        default="postgresql+asyncpg://backorder@127.0.0.1:55432/backorder",
        validation_alias=AliasChoices("DATABASE_URL", "BACKORDER_DATABASE_URL"),
        pattern=r"^postgresql(\+asyncpg)?://",
    )
    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:59092",
        validation_alias=AliasChoices(
            "KAFKA_BOOTSTRAP_SERVERS", "BACKORDER_KAFKA_BOOTSTRAP_SERVERS"
        ),
        min_length=1,
    )
    # Kafka over SASL_SSL with SCRAM, or plain on a trusted network.
    kafka_security_protocol: Literal["PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["SCRAM-SHA-256", "SCRAM-SHA-512"] = "SCRAM-SHA-512"
    kafka_sasl_username: str | None = None
    # From the environment, or a file named BACKORDER_KAFKA_SASL_PASSWORD in BACKORDER_SECRETS_DIR.
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: FilePath | None = None
    # PostgreSQL over TLS: require (encrypted) or verify-full (encrypted, certificate checked).
    database_ssl: Literal["disable", "require", "verify-full"] = "disable"
    database_ssl_rootcert: FilePath | None = None
    # SKUs that never received an inventory.sku-policy message follow this.
    default_backorders: Literal["allow", "deny"] = "allow"
    # A cancel whose order has not arrived within this time is dead-lettered.
    cancel_wait_seconds: PositiveFloat = 300.0
    cancel_sweep_interval_seconds: PositiveFloat = 1.0
    outbox_batch_size: PositiveInt = 500
    outbox_poll_interval_seconds: PositiveFloat = 0.5
    retry_initial_backoff_seconds: PositiveFloat = 0.2
    retry_max_backoff_seconds: PositiveFloat = 10.0
    # An unexpected (non-transient, non-validation) error is retried this often, then dead-lettered.
    unexpected_error_attempts: PositiveInt = 3
    max_message_bytes: PositiveInt = 262_144
    # Overrides the declared replication factor, e.g. 3 on a production cluster.
    topic_replication_factor: PositiveInt | None = None
    # Metrics and health endpoints; 0 picks a free port (it is logged).
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=0, ge=0, le=65535)
    metrics_interval_seconds: PositiveFloat = 5.0
    metrics_top_skus: PositiveInt = 20
    log_format: Literal["json", "text"] = "json"
    # The look-up API's bearer token; the API refuses to start without one.
    api_token: SecretStr | None = None
    api_port: int = Field(default=58080, ge=0, le=65535)
    # none, console (spans printed to stdout) or otlp (OTEL_EXPORTER_OTLP_* say where).
    tracing_exporter: Literal["none", "console", "otlp"] = "none"

    @model_validator(mode="after")
    def _secured_settings_are_complete(self) -> "Settings":
        if self.kafka_security_protocol == "SASL_SSL" and not (
            self.kafka_sasl_username and self.kafka_sasl_password
        ):
            raise ValueError("SASL_SSL needs BACKORDER_KAFKA_SASL_USERNAME and _PASSWORD")
        if self.database_ssl == "verify-full" and self.database_ssl_rootcert is None:
            raise ValueError("database_ssl=verify-full needs BACKORDER_DATABASE_SSL_ROOTCERT")
        return self

    @property
    def async_database_url(self) -> str:
        return self.database_url.replace("postgresql://", "postgresql+asyncpg://", 1)


class ConfigurationError(Exception):
    """Bad configuration, described without echoing values: they may be secrets."""


@lru_cache
def get_settings() -> Settings:
    secrets_dir = os.environ.get("BACKORDER_SECRETS_DIR")
    try:
        return Settings(_secrets_dir=secrets_dir) if secrets_dir else Settings()
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}"
            for e in error.errors(include_input=False, include_url=False)
        )
        raise ConfigurationError(f"invalid configuration: {problems}") from None

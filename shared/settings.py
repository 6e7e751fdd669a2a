"""Configuration from the environment; a bad value stops the process at start-up."""

import os
from datetime import timedelta
from functools import lru_cache
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AliasChoices,
    AnyHttpUrl,
    DirectoryPath,
    Field,
    FilePath,
    PositiveFloat,
    PositiveInt,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared import faults
from shared.contracts.common import MAX_DURATION
from shared.priority import PriorityTiers

_TEN_YEARS = 10 * 365 * 86_400.0


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
    default_backorders: Literal["allow", "deny", "returning_customers"] = "allow"
    # A cancel whose order has not arrived within this time is dead-lettered.
    cancel_wait_seconds: PositiveFloat = 300.0
    cancel_sweep_interval_seconds: PositiveFloat = 1.0
    # A line waiting longer than this is cancelled, unless its SKU's policy says otherwise.
    # ISO 8601 ("P30D") or seconds; unset: lines wait as long as it takes.
    max_wait: timedelta | None = Field(default=None, gt=timedelta(0), le=MAX_DURATION)
    expiry_sweep_interval_seconds: PositiveFloat = 30.0
    # Priority tiers an order may ask for, highest first; the last is the default tier (see
    # shared/priority.py). One tier: every line waits in one queue, in arrival order.
    priority_tiers: str = Field(default="standard", min_length=1)
    # A line waiting longer than this in its rank is promoted one rank, unless its SKU's policy
    # says otherwise; unset: no aging. ISO 8601 ("P3D") or seconds.
    priority_aging: timedelta | None = Field(default=None, gt=timedelta(0), le=MAX_DURATION)
    aging_sweep_interval_seconds: PositiveFloat = 30.0
    # How many waiting lines one decision retells when a line of a higher tier goes ahead of
    # them (a priority order, a promotion), first in queue order; 0: none. What a decision
    # costs grows with this, never with the queue (services/allocator/domain/ranks.py).
    position_retell_limit: int = Field(default=100, ge=0, le=10_000)
    # The retention job (shared/db/retention.py). Dedupe rows, and rows that make a repeated
    # message a no-op, go once older than the longest a record of the service's input topics
    # (or their dead-letter topics) can still be delivered, plus this margin; closed history
    # (cancelled lines, delivered notifications) once older than retention_closed_seconds, and
    # never before the former where a redelivered message would need it.
    retention_dedupe_margin_seconds: float = Field(default=86_400.0, ge=0, le=_TEN_YEARS)
    retention_closed_seconds: float = Field(default=30 * 86_400.0, ge=60, le=_TEN_YEARS)
    retention_interval_seconds: float = Field(default=3_600.0, ge=1, le=86_400)
    # Rows deleted per chunk, each chunk its own transaction.
    retention_chunk_size: int = Field(default=1_000, ge=1, le=100_000)
    outbox_batch_size: PositiveInt = 500
    # Events leave from memory at commit; every poll interval a process deletes what it sent
    # (when no batch did) and recovers rows left waiting longer than `outbox_stale_after`.
    outbox_poll_interval_seconds: PositiveFloat = 0.5
    outbox_stale_after_seconds: PositiveFloat = 5.0
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
    # This process's name in its service's consumer group (static membership, KIP-345): restarted
    # under the same name within the session timeout, it takes its partitions back without a
    # rebalance. Two live processes of one service must never share a name (each replaces the
    # other in the group in turn, for as long as both run); unset: a new member on every start,
    # and a rebalance on every start and stop.
    instance_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._-]{1,100}$")
    # For the crash proofs only: `point:n` SIGKILLs the process the n-th time it reaches
    # `point` (shared/faults.py). Never set in production.
    fault: str | None = None
    metrics_interval_seconds: PositiveFloat = 5.0
    metrics_top_skus: PositiveInt = 20
    log_format: Literal["json", "text"] = "json"
    # The look-up API's bearer token; the API refuses to start without one.
    api_token: SecretStr | None = None
    api_port: int = Field(default=58080, ge=0, le=65535)
    # Email to customers, sent when smtp_host is set. Passwords only travel encrypted.
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_security: Literal["none", "starttls", "tls"] = "starttls"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_cafile: FilePath | None = None
    smtp_timeout_seconds: PositiveFloat = 15.0
    notify_from: str = Field(default="Backorders <backorders@localhost>", min_length=3)
    # Webhooks to the shop, signed with HMAC-SHA256 (see docs/notifications.md), when url is set.
    webhook_url: AnyHttpUrl | None = None
    webhook_secret: SecretStr | None = None
    webhook_timeout_seconds: PositiveFloat = 10.0
    # Changes to one order within this window become one message about the latest state.
    notify_coalesce_seconds: float = Field(default=30.0, ge=0)
    # Transient failures are retried with exponential backoff and jitter, then dead-lettered.
    notify_max_attempts: PositiveInt = 8
    notify_retry_initial_seconds: PositiveFloat = 5.0
    notify_retry_max_seconds: PositiveFloat = 900.0
    notify_poll_interval_seconds: PositiveFloat = 1.0
    # A notification in flight longer than this is taken as lost and sent again (same id).
    notify_lease_seconds: float = Field(default=120.0, ge=2)
    # On SIGTERM, sends under way get this long to finish and be recorded; keep it below the
    # platform's kill grace (Kubernetes: terminationGracePeriodSeconds, 30 by default).
    notify_shutdown_grace_seconds: PositiveFloat = 20.0
    notify_concurrency: PositiveInt = 16
    # A folder of templates replacing the built-in ones file by file.
    notify_templates_dir: DirectoryPath | None = None
    # The IANA time zone customers read their dates in ("Europe/Berlin"); dates are kept in UTC.
    shop_timezone: str = "UTC"
    # none, console (spans printed to stdout) or otlp (OTEL_EXPORTER_OTLP_* say where).
    tracing_exporter: Literal["none", "console", "otlp"] = "none"

    @model_validator(mode="after")
    def _secured_settings_are_complete(self) -> "Settings":
        if self.kafka_security_protocol == "SASL_SSL" and not (
            self.kafka_sasl_username and self.kafka_sasl_password
        ):
            raise ValueError("SASL_SSL needs BACKORDER_KAFKA_SASL_USERNAME and _PASSWORD")
        if self.webhook_url and (
            self.webhook_secret is None or len(self.webhook_secret.get_secret_value()) < 16
        ):
            raise ValueError("webhook_url needs BACKORDER_WEBHOOK_SECRET of 16 characters or more")
        if self.smtp_username and not self.smtp_password:
            raise ValueError("smtp_username needs BACKORDER_SMTP_PASSWORD")
        if self.smtp_username and self.smtp_security == "none":
            raise ValueError("SMTP authentication needs smtp_security starttls or tls")
        if self.database_ssl == "verify-full" and self.database_ssl_rootcert is None:
            raise ValueError("database_ssl=verify-full needs BACKORDER_DATABASE_SSL_ROOTCERT")
        if (
            self.priority_aging is not None
            and not PriorityTiers.parse(self.priority_tiers).top_rank
        ):
            # With one tier there is no rank to be promoted to: the setting would do nothing.
            raise ValueError("priority_aging needs two or more BACKORDER_PRIORITY_TIERS")
        return self

    @field_validator("priority_tiers")
    @classmethod
    def _valid_tiers(cls, value: str) -> str:
        PriorityTiers.parse(value)
        return value

    @field_validator("fault")
    @classmethod
    def _known_fault(cls, value: str | None) -> str | None:
        if value:
            faults.parse(value)
        return value

    @property
    def tiers(self) -> PriorityTiers:
        return PriorityTiers.parse(self.priority_tiers)

    @field_validator("shop_timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("not a known IANA time zone") from None
        return value

    @property
    def shop_zone(self) -> ZoneInfo:
        return ZoneInfo(self.shop_timezone)

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

"""Configuration from the environment; a bad value stops the process at start-up."""

from functools import lru_cache
from typing import Literal

from pydantic import AliasChoices, Field, PositiveFloat, PositiveInt
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
    # none, console (spans printed to stdout) or otlp (OTEL_EXPORTER_OTLP_* say where).
    tracing_exporter: Literal["none", "console", "otlp"] = "none"

    @property
    def async_database_url(self) -> str:
        return self.database_url.replace("postgresql://", "postgresql+asyncpg://", 1)


@lru_cache
def get_settings() -> Settings:
    return Settings()

"""Configuration fails fast, and secrets come from the environment or files without leaking."""

from pathlib import Path

import pytest
from pydantic import ValidationError

from shared.settings import ConfigurationError, Settings, get_settings


def test_sasl_password_from_a_secret_file_is_never_shown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "BACKORDER_KAFKA_SASL_PASSWORD").write_text("s3cret-from-file")
    monkeypatch.setenv("BACKORDER_SECRETS_DIR", str(tmp_path))
    monkeypatch.setenv("BACKORDER_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("BACKORDER_KAFKA_SASL_USERNAME", "backorder")
    get_settings.cache_clear()
    try:
        settings = get_settings()
        assert settings.kafka_sasl_password is not None
        assert settings.kafka_sasl_password.get_secret_value() == "s3cret-from-file"
        assert "s3cret-from-file" not in repr(settings)
        assert "s3cret-from-file" not in str(settings.model_dump())
    finally:
        get_settings.cache_clear()


def test_incomplete_security_settings_stop_the_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BACKORDER_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    with pytest.raises(ValidationError, match="SASL_SSL needs"):
        Settings()
    monkeypatch.delenv("BACKORDER_KAFKA_SECURITY_PROTOCOL")
    monkeypatch.setenv("BACKORDER_DATABASE_SSL", "verify-full")
    with pytest.raises(ValidationError, match="verify-full needs"):
        Settings()


def test_a_bad_value_is_refused_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BACKORDER_DEFAULT_BACKORDERS", "sometimes")
    with pytest.raises(ValidationError):
        Settings()


def test_a_configuration_error_never_echoes_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "mysql://admin:hunter2secret@db/backorder")
    monkeypatch.setenv("BACKORDER_KAFKA_SASL_PASSWORD", "another-secret")
    get_settings.cache_clear()
    try:
        with pytest.raises(ConfigurationError) as refused:
            get_settings()
    finally:
        get_settings.cache_clear()
    message = str(refused.value)
    assert "DATABASE_URL" in message
    assert "hunter2secret" not in message
    assert "another-secret" not in message


def test_notification_settings_that_would_leak_or_forge_stop_the_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BACKORDER_WEBHOOK_URL", "https://shop.example/hooks")
    with pytest.raises(ValidationError, match="BACKORDER_WEBHOOK_SECRET"):
        Settings()
    monkeypatch.setenv("BACKORDER_WEBHOOK_SECRET", "short")
    with pytest.raises(ValidationError, match="16 characters"):
        Settings()
    monkeypatch.setenv("BACKORDER_WEBHOOK_SECRET", "long-enough-secret-123")
    monkeypatch.setenv("BACKORDER_SMTP_USERNAME", "mailer")
    monkeypatch.setenv("BACKORDER_SMTP_PASSWORD", "pw")
    monkeypatch.setenv("BACKORDER_SMTP_SECURITY", "none")
    with pytest.raises(ValidationError, match="starttls or tls"):
        Settings()
    monkeypatch.setenv("BACKORDER_SMTP_SECURITY", "tls")
    monkeypatch.setenv("BACKORDER_MAX_WAIT", "P30D")
    settings = Settings()
    assert settings.max_wait is not None
    assert settings.max_wait.days == 30


def test_aging_without_a_second_tier_stops_the_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BACKORDER_PRIORITY_AGING", "P3D")
    with pytest.raises(ValidationError, match="needs two or more"):
        Settings()
    monkeypatch.setenv("BACKORDER_PRIORITY_TIERS", "vip,standard")
    assert Settings().priority_aging is not None

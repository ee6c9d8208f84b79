"""Settings come from the environment and refuse what would be unsafe or malformed."""

from __future__ import annotations

import pytest

from adserver.app import create_app
from adserver.config import DEFAULT_DATABASE_URL, Settings, SettingsError


def test_defaults_are_the_embedded_sqlite_database_with_the_scheduler_on() -> None:
    settings = Settings.from_env({})
    assert settings.database_url == DEFAULT_DATABASE_URL == "sqlite:///./adserver.db"
    assert settings.scheduler is True
    assert settings.smtp_url is None


def test_every_contract_setting_is_read() -> None:
    settings = Settings.from_env(
        {
            "ADSERVER_DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1/ads",
            "ADSERVER_SECRET_KEY": "s" * 32,
            "ADSERVER_BASE_URL": "https://ads.example.com/",
            "ADSERVER_SMTP_URL": "smtp://user:pass@mail.example.com:587?starttls=1",
            "ADSERVER_SCHEDULER": "off",
        }
    )
    assert settings.database_url == "postgresql+psycopg://postgres@127.0.0.1/ads"
    assert settings.secret_key == "s" * 32
    assert settings.base_url == "https://ads.example.com"
    assert settings.smtp_url == "smtp://user:pass@mail.example.com:587?starttls=1"
    assert settings.scheduler is False


def test_scheduler_accepts_only_on_or_off() -> None:
    with pytest.raises(SettingsError, match="ADSERVER_SCHEDULER must be 'on' or 'off'"):
        Settings.from_env({"ADSERVER_SCHEDULER": "sometimes"})


def test_retention_must_be_a_positive_number_of_days() -> None:
    with pytest.raises(SettingsError, match="ADSERVER_RETENTION_DAYS must be a whole number"):
        Settings.from_env({"ADSERVER_RETENTION_DAYS": "ninety"})
    with pytest.raises(SettingsError, match="must be positive"):
        Settings.from_env({"ADSERVER_RETENTION_DAYS": "0"})


@pytest.mark.parametrize("secret", ["", "short"])
def test_the_app_refuses_a_missing_or_weak_secret(secret: str) -> None:
    with pytest.raises(SettingsError, match="ADSERVER_SECRET_KEY is missing"):
        create_app(Settings(secret_key=secret))


def test_allowed_hosts_are_names() -> None:
    settings = Settings.from_env({"ADSERVER_ALLOWED_HOSTS": "Ads.Example.com, cdn.example.com"})
    assert settings.allowed_hosts == ("ads.example.com", "cdn.example.com")
    with pytest.raises(SettingsError, match="ADSERVER_ALLOWED_HOSTS takes host names"):
        Settings.from_env({"ADSERVER_ALLOWED_HOSTS": "https://ads.example.com/"})

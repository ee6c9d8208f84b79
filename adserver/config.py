"""Settings, read once from the environment (see the contract's Settings section)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from adserver.notify.mail import MailConfigError, SmtpConfig

DEFAULT_DATABASE_URL = "sqlite:///./adserver.db"


class SettingsError(ValueError):
    """A setting is missing or malformed; the message says which and how to fix it."""


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    secret_key: str = ""
    base_url: str = "http://127.0.0.1:8000"
    smtp_url: str | None = None
    #: The From address of reports and notifications.
    mail_from: str = "adserver@localhost"
    #: A campaign short of what even delivery would have reached by more than this share is
    #: behind pace (the publisher's summary, and its notification after two hours).
    pace_margin: float = 0.2
    scheduler: bool = True
    #: How long an impression or view token stays valid, in seconds.
    beacon_ttl: int = 2 * 3600
    #: How long a click token stays valid, in seconds (a reader may leave a tab open).
    click_ttl: int = 24 * 3600
    #: Raw events older than this many days are pruned; hourly statistics are kept.
    retention_days: int = 90
    #: Where events go while the database is unreachable (replayed when it is back).
    spool_dir: Path = field(default_factory=lambda: Path("."))
    #: Group commit: at most this many events per group, and a group waits this many seconds
    #: after its first event for company (none: it takes what arrived during the last commit).
    group_max_events: int = 500
    group_max_wait: float = 0.0
    #: Request and served counters are flushed this often (seconds).
    counter_flush_interval: float = 5.0
    #: How often the inventory checks for admin changes (seconds).
    inventory_poll_interval: float = 1.0
    tally_interval: int = 60
    pacing_interval: int = 60
    #: Mount the demo article and its landing page; only ``adserver demo`` sets it.
    demo: bool = False
    #: Host names accepted besides the one in ``base_url`` (``ADSERVER_ALLOWED_HOSTS``).
    allowed_hosts: tuple[str, ...] = ()
    #: The bearer token /metrics asks for besides an admin token; ``public`` opens it to all.
    metrics_token: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``ADSERVER_*`` variables, refusing malformed values."""
        env = os.environ if env is None else env
        scheduler = env.get("ADSERVER_SCHEDULER", "on").strip().lower()
        if scheduler not in {"on", "off"}:
            raise SettingsError(f"ADSERVER_SCHEDULER must be 'on' or 'off', not {scheduler!r}")
        settings = cls(
            database_url=env.get("ADSERVER_DATABASE_URL", DEFAULT_DATABASE_URL),
            secret_key=env.get("ADSERVER_SECRET_KEY", ""),
            base_url=env.get("ADSERVER_BASE_URL", cls.base_url).rstrip("/"),
            smtp_url=_smtp_url(env.get("ADSERVER_SMTP_URL", "")),
            mail_from=env.get("ADSERVER_MAIL_FROM") or cls.mail_from,
            pace_margin=_int(env, "ADSERVER_PACE_MARGIN", 20, maximum=99) / 100,
            scheduler=scheduler == "on",
            retention_days=_int(env, "ADSERVER_RETENTION_DAYS", cls.retention_days),
            spool_dir=Path(env.get("ADSERVER_SPOOL_DIR", ".")),
            allowed_hosts=_hosts(env.get("ADSERVER_ALLOWED_HOSTS", "")),
            metrics_token=env.get("ADSERVER_METRICS_TOKEN", "").strip() or None,
        )
        return settings

    def with_changes(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]

    def require_secret(self) -> None:
        """Refuse to serve with no secret: tokens and sessions would be forgeable."""
        if len(self.secret_key) < 16:
            raise SettingsError(
                "ADSERVER_SECRET_KEY is missing or shorter than 16 characters; it signs event "
                "tokens and sessions. Generate one with: "
                "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )


def _smtp_url(raw: str) -> str | None:
    """The SMTP URL if it parses (a bad one is refused at start, not at the first report)."""
    if not raw.strip():
        return None
    try:
        SmtpConfig.parse(raw)
    except MailConfigError as exc:
        raise SettingsError(str(exc)) from None
    return raw.strip()


def _int(env: Mapping[str, str], name: str, default: int, *, maximum: int | None = None) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, not {raw!r}") from None
    if value <= 0:
        raise SettingsError(f"{name} must be positive, not {value}")
    if maximum is not None and value > maximum:
        raise SettingsError(f"{name} must be at most {maximum}, not {value}")
    return value


def _hosts(raw: str) -> tuple[str, ...]:
    """Host names from a comma or space separated list, as ``Host`` headers spell them."""
    hosts = tuple(h.strip().lower() for h in raw.replace(",", " ").split() if h.strip())
    for host in hosts:
        if "/" in host or host.startswith("*"):
            raise SettingsError(
                f"ADSERVER_ALLOWED_HOSTS takes host names such as ads.example.com, not {host!r}"
            )
    return hosts

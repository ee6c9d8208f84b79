"""The scheduled work of this package, each a function of the time it runs at, as
``jobs/registry.py`` lists them: due reports, the outbox, notifications."""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime

from sqlalchemy import Engine

from adserver.config import Settings
from adserver.notify.mail import Mailer
from adserver.notify.notices import run_notices
from adserver.notify.outbox import drain, prune
from adserver.notify.reports import run_due_reports


def holder() -> str:
    """This process, as outbox claims name it."""
    return f"{socket.gethostname()}:{os.getpid()}"[:64]


def reports_job(engine: Engine, settings: Settings, now: float) -> str:
    """Build what is due, then send it at once (the mail job would, within a minute; a crash
    in between leaves it to the mail job)."""
    at = datetime.fromtimestamp(now, UTC)
    due = run_due_reports(engine, settings, now=at)
    if not due.queued:
        return str(due)
    return f"{due}; {drain(engine, Mailer.from_url(settings.smtp_url), holder=holder(), now=at)}"


def mail_job(engine: Engine, settings: Settings, now: float) -> str:
    """Send what is due (retries included), and forget messages settled long ago."""
    at = datetime.fromtimestamp(now, UTC)
    result = drain(engine, Mailer.from_url(settings.smtp_url), holder=holder(), now=at)
    pruned = prune(engine, now=at, keep_days=settings.retention_days)
    return f"{result}; forgot {pruned} old messages"


def notices_job(engine: Engine, settings: Settings, now: float) -> str:
    at = datetime.fromtimestamp(now, UTC)
    note = run_notices(engine, settings, now=at)
    return f"{note}; {drain(engine, Mailer.from_url(settings.smtp_url), holder=holder(), now=at)}"

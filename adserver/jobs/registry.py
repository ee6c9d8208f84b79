"""The scheduled jobs: one line each, and the process that runs only them."""

from __future__ import annotations

import signal
import threading
from datetime import UTC, datetime

from sqlalchemy import Engine

from adserver.accounts.housekeeping import prune_accounts
from adserver.config import Settings
from adserver.core.metrics import Metrics
from adserver.delivery.pacing import refresh_delivery
from adserver.jobs.retention import prune_events, prune_job_runs
from adserver.jobs.scheduler import Job, JobScheduler
from adserver.notify.jobs import mail_job, notices_job, reports_job
from adserver.reporting.tally import run_tally

JOB_NAMES = ("tally", "pacing", "retention", "reports", "mail", "notices", "accounts")
RETENTION_INTERVAL = 3600
#: Reports fall due at whole local hours; once a minute finds them within a minute.
REPORTS_INTERVAL = 60
MAIL_INTERVAL = 60
NOTICES_INTERVAL = 300


def _utc(now: float) -> datetime:
    return datetime.fromtimestamp(now, UTC)


def default_jobs(engine: Engine, settings: Settings) -> list[Job]:
    def tally(now: float) -> str:
        return f"rolled up {run_tally(engine)} events"

    def pacing(now: float) -> str:
        return f"{refresh_delivery(engine, now=now)} campaigns changed"

    def retention(now: float) -> str:
        events = prune_events(engine, now=now, retention_days=settings.retention_days)
        runs = prune_job_runs(engine, now=now)
        return f"deleted {events} events and {runs} job runs"

    return [
        Job("tally", settings.tally_interval, tally),
        Job("pacing", settings.pacing_interval, pacing),
        Job("retention", RETENTION_INTERVAL, retention),
        Job("reports", REPORTS_INTERVAL, lambda now: reports_job(engine, settings, now)),
        Job("mail", MAIL_INTERVAL, lambda now: mail_job(engine, settings, now)),
        Job("notices", NOTICES_INTERVAL, lambda now: notices_job(engine, settings, now)),
        Job("accounts", RETENTION_INTERVAL, lambda now: prune_accounts(engine, now=_utc(now))),
    ]


def run_until_signalled(engine: Engine, settings: Settings) -> Metrics:
    """``adserver scheduler``: run the jobs until SIGTERM or SIGINT, then stop cleanly."""
    stop = threading.Event()
    previous = {
        signum: signal.signal(signum, lambda *_: stop.set())
        for signum in (signal.SIGTERM, signal.SIGINT)
    }
    metrics = Metrics()
    scheduler = JobScheduler(engine, default_jobs(engine, settings), metrics=metrics)
    scheduler.start()
    try:
        print(
            f"adserver scheduler running as {scheduler.holder}: "
            + ", ".join(f"{job.name} every {job.interval}s" for job in scheduler.jobs),
            flush=True,
        )
        while not stop.wait(1.0):
            pass
    finally:
        scheduler.shutdown()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return metrics

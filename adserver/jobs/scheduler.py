"""Scheduled jobs (APScheduler 3) and the lease that runs each job once per period.

Every process that runs the scheduler (each server worker with ``ADSERVER_SCHEDULER=on``, any
``adserver scheduler``) fires each job at the start of each period. The fire first inserts
``(job, period)`` into ``job_run``; the insert that wins runs the job and records how it went,
the others skip. APScheduler's own job stores are never shared (its FAQ: that gives duplicate or
missed runs); each process keeps its jobs in memory and the database row is the only lock.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine, func, select, update
from sqlalchemy.exc import SQLAlchemyError

from adserver.core.db import insert_for
from adserver.core.metrics import Metrics
from adserver.core.models import JobRun, table

log = logging.getLogger(__name__)

JOB_RUN = table(JobRun)


@dataclass(frozen=True)
class Job:
    """A named piece of work run once every ``interval`` seconds; ``work(now)`` returns a short
    note for ``job_run.detail``."""

    name: str
    interval: int
    work: Callable[[float], str]


class JobScheduler:
    """Runs ``jobs`` on a background thread pool, each once per period across all processes."""

    def __init__(
        self,
        engine: Engine,
        jobs: Sequence[Job],
        *,
        metrics: Metrics | None = None,
        holder: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.engine = engine
        self.jobs = list(jobs)
        self.holder = (holder or f"{socket.gethostname()}:{os.getpid()}")[:64]
        self._metrics = metrics
        self._clock = clock
        self._insert = insert_for(engine)
        self._scheduler: BackgroundScheduler | None = None

    @property
    def running(self) -> bool:
        return self._scheduler is not None and self._scheduler.running

    def start(self) -> None:
        """Run every job now (if no process has this period yet), then at each period start."""
        scheduler = BackgroundScheduler(
            timezone=UTC,
            executors={"default": ThreadPoolExecutor(max_workers=max(1, len(self.jobs)))},
        )
        now = self._clock()
        for job in self.jobs:
            # Periods start at multiples of the interval, so every process fires together.
            first = datetime.fromtimestamp((now // job.interval + 1) * job.interval, UTC)
            scheduler.add_job(
                self.run,
                IntervalTrigger(seconds=job.interval, start_date=first, timezone=UTC),
                args=[job],
                id=job.name,
                name=job.name,
                next_run_time=datetime.fromtimestamp(now, UTC),
                coalesce=True,
                max_instances=1,
                misfire_grace_time=job.interval,
            )
        scheduler.start()
        self._scheduler = scheduler

    def shutdown(self) -> None:
        """Stop firing and wait for running jobs to finish."""
        if self._scheduler is not None and self._scheduler.running:
            self._scheduler.shutdown(wait=True)

    def run(self, job: Job) -> str:
        """Run ``job`` for the current period if this process wins its lease: returns
        ``ok``, ``failed`` or ``skipped`` (another process has the period)."""
        now = self._clock()
        period = int(now // job.interval)
        try:
            won = self._claim(job, period, now)
        except SQLAlchemyError as exc:
            log.warning("job %s: could not take the lease for period %d: %s", job.name, period, exc)
            return self._count(job, "failed")
        if not won:
            return self._count(job, "skipped")
        try:
            detail, ok = job.work(now), True
        except Exception as exc:
            log.exception("job %s failed", job.name)
            detail, ok = f"{exc.__class__.__name__}: {exc}", False
        try:
            with self.engine.begin() as connection:
                connection.execute(
                    update(JOB_RUN)
                    .where(JOB_RUN.c.job == job.name, JOB_RUN.c.period == period)
                    .values(finished_at=datetime.now(UTC), ok=ok, detail=detail[:1000])
                )
        except SQLAlchemyError as exc:
            log.warning("job %s: could not record its outcome: %s", job.name, exc)
        return self._count(job, "ok" if ok else "failed")

    def _claim(self, job: Job, period: int, now: float) -> bool:
        with self.engine.begin() as connection:
            row = connection.execute(
                self._insert(JOB_RUN)
                .values(
                    job=job.name,
                    period=period,
                    holder=self.holder,
                    started_at=datetime.fromtimestamp(now, UTC),
                )
                .on_conflict_do_nothing()
                .returning(JOB_RUN.c.job)
            ).first()
        return row is not None

    def _count(self, job: Job, outcome: str) -> str:
        if self._metrics is not None:
            self._metrics.job_runs.labels(job.name, outcome).inc()
        return outcome


def scheduler_health(
    engine: Engine, scheduler: JobScheduler | None, now: float, *, names: Sequence[str]
) -> dict[str, Any]:
    """For /healthz: whether this process runs the scheduler, and each job's last success (of
    ``names``, and of any other job on record) and how long ago that was, whichever process
    ran it."""
    state: dict[str, Any] = {"running": scheduler is not None and scheduler.running}
    try:
        with engine.connect() as connection:
            last = {
                row.job: row.finished_at
                for row in connection.execute(
                    select(JOB_RUN.c.job, func.max(JOB_RUN.c.finished_at).label("finished_at"))
                    .where(JOB_RUN.c.ok.is_(True))
                    .group_by(JOB_RUN.c.job)
                )
            }
    except SQLAlchemyError as exc:
        state.update(jobs={}, error=f"database unavailable: {exc.__class__.__name__}")
        return state
    jobs: dict[str, Any] = {}
    for name in [*names, *sorted(set(last) - set(names))]:
        success = last.get(name)
        jobs[name] = {
            "last_success": success.isoformat() if success else None,
            "lag_seconds": round(now - success.timestamp(), 1) if success else None,
        }
    state["jobs"] = jobs
    return state

"""Retention: raw events past their days and old job-run records are deleted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, delete, text

from adserver.core.models import JobRun, table

#: job_run rows are kept this long (they are operational history, not statistics).
JOB_HISTORY_DAYS = 7
JOB_RUN = table(JobRun)


def prune_events(
    engine: Engine, *, now: float, retention_days: int, batch_size: int = 10_000
) -> int:
    """Delete tallied raw events older than ``retention_days``; never one still untallied.

    Deletes in batches so a first run over a large backlog never holds SQLite's write lock long.
    Hourly statistics are kept.
    """
    cutoff = int(now) - retention_days * 86400
    deleted = 0
    while True:
        with engine.begin() as connection:
            count = connection.execute(
                text(
                    "DELETE FROM event WHERE id IN (SELECT id FROM event "
                    "WHERE at < :cutoff AND tally_batch IS NOT NULL LIMIT :n)"
                ),
                {"cutoff": cutoff, "n": batch_size},
            ).rowcount
        deleted += count
        if count < batch_size:
            return deleted


def prune_job_runs(engine: Engine, *, now: float, keep_days: int = JOB_HISTORY_DAYS) -> int:
    cutoff = datetime.fromtimestamp(now, UTC) - timedelta(days=keep_days)
    with engine.begin() as connection:
        return connection.execute(delete(JOB_RUN).where(JOB_RUN.c.started_at < cutoff)).rowcount

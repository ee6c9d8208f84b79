"""Scheduled jobs: one run per period across processes, recorded, visible in /healthz."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from adserver.config import Settings
from adserver.core.db import make_engine, migrate
from adserver.core.metrics import Metrics
from adserver.jobs.registry import JOB_NAMES
from adserver.jobs.scheduler import Job, JobScheduler, scheduler_health
from tests.conftest import OPS, SECRET, postgres_database, start_server
from tests.placements import place, record
from tests.waiting import wait_for

PERIOD = 1_800_000_000  # a multiple of 60: the start of a one-minute period


def job_runs(engine: Engine, job: str) -> list[tuple[int, str, bool | None, str | None]]:
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT period, holder, ok, detail FROM job_run WHERE job = :j ORDER BY period"),
            {"j": job},
        ).all()
    return [(int(p), h, None if ok is None else bool(ok), d) for p, h, ok, d in rows]


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def outcomes(metrics: Metrics, job: str) -> dict[str, float]:
    return {
        outcome: metrics.registry.get_sample_value(
            "adserver_job_runs_total", {"job": job, "outcome": outcome}
        )
        or 0.0
        for outcome in ("ok", "failed", "skipped")
    }


def test_each_period_runs_once_whichever_process_fires_first(engine: Engine) -> None:
    calls: list[float] = []
    job = Job("probe", 60, lambda now: calls.append(now) or f"call {len(calls)}")
    clock = Clock(PERIOD + 0.2)
    metrics_a, metrics_b = Metrics(), Metrics()
    a = JobScheduler(engine, [job], metrics=metrics_a, holder="a", clock=clock)
    b = JobScheduler(engine, [job], metrics=metrics_b, holder="b", clock=clock)

    assert a.run(job) == "ok"
    clock.now = PERIOD + 0.5
    assert b.run(job) == "skipped"
    assert a.run(job) == "skipped"
    clock.now = PERIOD + 60.1
    assert b.run(job) == "ok"
    assert a.run(job) == "skipped"

    assert calls == [PERIOD + 0.2, PERIOD + 60.1]
    period = PERIOD // 60
    assert job_runs(engine, "probe") == [
        (period, "a", True, "call 1"),
        (period + 1, "b", True, "call 2"),
    ]
    assert outcomes(metrics_a, "probe") == {"ok": 1, "failed": 0, "skipped": 2}
    assert outcomes(metrics_b, "probe") == {"ok": 1, "failed": 0, "skipped": 1}


def test_a_failing_run_is_recorded_and_the_next_period_runs_again(engine: Engine) -> None:
    attempts: list[float] = []

    def flaky(now: float) -> str:
        attempts.append(now)
        if len(attempts) == 1:
            raise RuntimeError("database on fire")
        return "fine"

    job = Job("flaky", 10, flaky)
    clock = Clock(PERIOD)
    metrics = Metrics()
    scheduler = JobScheduler(engine, [job], metrics=metrics, holder="x", clock=clock)
    assert scheduler.run(job) == "failed"
    assert scheduler.run(job) == "skipped"  # the period was taken; it is not retried
    clock.now += 10
    assert scheduler.run(job) == "ok"
    assert job_runs(engine, "flaky") == [
        (PERIOD // 10, "x", False, "RuntimeError: database on fire"),
        (PERIOD // 10 + 1, "x", True, "fine"),
    ]
    assert outcomes(metrics, "flaky") == {"ok": 1, "failed": 1, "skipped": 1}


def test_health_shows_each_jobs_last_success_and_lag(engine: Engine) -> None:
    jobs = [Job("tally", 60, lambda now: "t"), Job("pacing", 60, lambda now: "p")]
    scheduler = JobScheduler(engine, jobs, holder="h")
    before = time.time()
    assert scheduler.run(jobs[0]) == "ok"
    health = scheduler_health(engine, scheduler, time.time() + 30, names=[j.name for j in jobs])
    assert health["running"] is False  # built here, never started
    assert set(health["jobs"]) == {"tally", "pacing"}
    assert health["jobs"]["pacing"] == {"last_success": None, "lag_seconds": None}
    tally = health["jobs"]["tally"]
    assert tally["last_success"].endswith("+00:00")
    assert 30 <= tally["lag_seconds"] <= 30 + (time.time() - before) + 0.1

    # A process that does not run the scheduler still reports what others did.
    other = scheduler_health(engine, None, time.time(), names=JOB_NAMES)
    assert other["running"] is False
    assert (
        set(other["jobs"]) == set(JOB_NAMES) >= {"tally", "pacing", "retention", "reports", "mail"}
    )
    assert other["jobs"]["tally"]["last_success"] == tally["last_success"]


def test_scheduler_starts_runs_at_once_and_stops(engine: Engine) -> None:
    ran: list[float] = []
    job = Job("probe", 3600, lambda now: ran.append(now) or "ran")
    scheduler = JobScheduler(engine, [job], holder="s")
    scheduler.start()
    try:
        assert scheduler.running
        wait_for(lambda: job_runs(engine, "probe") and job_runs(engine, "probe")[0][2], "a run")
    finally:
        scheduler.shutdown()
    assert not scheduler.running
    assert len(ran) == 1


@pytest.fixture
def scheduling_server(
    server_settings: tuple[Settings, Any], engine: Engine
) -> Iterator[tuple[Any, Engine]]:
    settings, sock = server_settings
    server = start_server(
        settings.with_changes(scheduler=True, tally_interval=1, pacing_interval=1), sock
    )
    yield server, engine
    server.stop()


def test_the_server_tallies_by_itself_and_healthz_shows_the_scheduler(
    scheduling_server: tuple[Any, Engine],
) -> None:
    server, engine = scheduling_server
    cpm = place(engine, pricing="cpm", price_micros=1_000_000)
    record(engine, [cpm.event(f"d{n}", "imp") for n in range(5)])

    def tallied() -> bool:
        with engine.connect() as connection:
            return connection.execute(
                text("SELECT sum(impressions) FROM hourly_stat")
            ).scalar() == 5 and bool(
                connection.execute(
                    text("SELECT impressions FROM campaign_delivery WHERE campaign_id = :c"),
                    {"c": cpm.ids[2]},
                ).scalar()
                == 5
            )

    wait_for(tallied, "the scheduled tally and pacing refresh")
    with server.client() as client:
        health = client.get("/healthz", headers=OPS).json()
        metrics = client.get("/metrics", headers=OPS).text
    assert health["scheduler"]["running"] is True
    assert set(health["scheduler"]["jobs"]) == set(JOB_NAMES)
    assert health["scheduler"]["jobs"]["tally"]["last_success"] is not None
    assert health["scheduler"]["jobs"]["tally"]["lag_seconds"] >= 0
    assert 'adserver_job_runs_total{job="tally",outcome="ok"}' in metrics


def start_cli_scheduler(url: str) -> subprocess.Popen[str]:
    env = {**os.environ, "ADSERVER_DATABASE_URL": url, "ADSERVER_SECRET_KEY": SECRET}
    process = subprocess.Popen(
        [sys.executable, "-m", "adserver.cli", "scheduler"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line.startswith("adserver scheduler running as "), line + process.stderr.read()
    return process


def test_scheduler_command_runs_the_jobs_until_sigterm(database_url: str, engine: Engine) -> None:
    process = start_cli_scheduler(database_url)
    try:
        for job in ("tally", "pacing", "retention"):
            wait_for(lambda job=job: [r for r in job_runs(engine, job) if r[2]], f"{job} run")
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            assert stream is not None
            stream.close()


SCHEDULER_PROCESS = """
import json, sys
from adserver.config import Settings
from adserver.core.db import make_engine
from adserver.jobs.registry import run_until_signalled

settings = Settings(database_url=sys.argv[1], tally_interval=1, pacing_interval=1)
engine = make_engine(settings.database_url)
metrics = run_until_signalled(engine, settings)
engine.dispose()
print(json.dumps({
    outcome: metrics.registry.get_sample_value(
        "adserver_job_runs_total", {"job": "tally", "outcome": outcome}
    ) or 0
    for outcome in ("ok", "skipped", "failed")
}))
"""


@pytest.mark.postgres
@pytest.mark.slow
def test_two_scheduler_processes_run_each_tally_period_once(tmp_path: Path) -> None:
    with postgres_database() as url:
        migrate(url)
        engine = make_engine(url)
        try:
            cpm = place(engine, pricing="cpm", price_micros=1_000_000)
            record(engine, [cpm.event(f"d{n}", "imp") for n in range(40)])
            processes = [
                subprocess.Popen(
                    [sys.executable, "-c", SCHEDULER_PROCESS, url],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
                for _ in range(2)
            ]
            try:
                holders = []
                for process in processes:
                    assert process.stdout is not None
                    line = process.stdout.readline()
                    assert line.startswith("adserver scheduler running as "), line
                    holders.append(line.split()[4].rstrip(":"))
                first = int(time.time()) + 1  # both fire from this period on
                last = first + 5
                wait_for(
                    lambda: [r for r in job_runs(engine, "tally") if r[0] == last and r[2]],
                    "six tally periods",
                )
                for process in processes:
                    process.send_signal(signal.SIGTERM)
                reports = []
                for process in processes:
                    out, err = process.communicate(timeout=30)
                    assert process.returncode == 0, err
                    reports.append(json.loads(out.strip().splitlines()[-1]))
            finally:
                for process in processes:
                    if process.poll() is None:
                        process.kill()
                        process.communicate()
            runs = job_runs(engine, "tally")
            periods = [period for period, _, _, _ in runs]
            # Every period in the window ran, each exactly once, by one of the two processes.
            assert set(range(first, last + 1)) <= set(periods)
            assert len(periods) == len(set(periods))
            assert {holder for _, holder, _, _ in runs} <= set(holders)
            assert all(ok for _, _, ok, _ in runs)
            # Runs done (counted by each process itself) match the rows: no period ran twice.
            assert sum(r["ok"] for r in reports) == len(runs)
            assert sum(r["failed"] for r in reports) == 0
            # Both fired every period; whoever lost the insert skipped it.
            assert sum(r["skipped"] for r in reports) >= last - first
            with engine.connect() as connection:
                counted = connection.execute(text("SELECT sum(impressions) FROM hourly_stat"))
                assert counted.scalar() == 40
        finally:
            engine.dispose()

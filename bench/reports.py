"""``python -m bench.reports``: 1,000 advertisers' weekly reports built and handed to a local
SMTP server (issue 14's target: under 60 s on this machine, nothing else running).

The database: 10 sites (four time zones, two currencies) with 3 slots each, 1,000 advertisers
with one campaign each on one slot and two creatives, and every hour of the last two weeks
filled for every campaign (the reported week and the one before it, for the top line's
comparison): about 700,000 hourly rows and their daily rollups. Each advertiser has a weekly
schedule (Monday 08:00 UTC) with one recipient. The timed part is exactly what the scheduler
does at the hour: ``run_due_reports`` (figures from ``run_stats``, chart, HTML, text, CSV,
archive, outbox) and then ``drain`` (one SMTP connection a batch) to an aiosmtpd server in its
own process that accepts and discards.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, func, insert, select

from adserver.config import Settings
from adserver.core.clock import local_hour_start
from adserver.core.db import make_engine, migrate
from adserver.core.models import (
    Advertiser,
    Campaign,
    CampaignSlot,
    Creative,
    Outbox,
    ReportSchedule,
    Site,
    Slot,
    table,
)
from adserver.notify.mail import Mailer
from adserver.notify.outbox import drain
from adserver.notify.reports import run_due_reports
from adserver.reporting.hourly import COUNTERS, add_counts
from bench import cpu

ADVERTISERS, SITES, SLOTS_PER_SITE = 1000, 10, 3
ZONES = ("Europe/London", "America/New_York", "Asia/Kolkata", "UTC")
TARGET_SECONDS = 60.0
#: Monday 2026-03-16 09:00 UTC: the week of 9-15 March is due, the one before compared.
NOW = datetime(2026, 3, 16, 9, tzinfo=UTC)


def populate(engine: Engine, *, advertisers: int, rng: random.Random) -> int:
    """The database described above; returns the number of hourly rows written."""
    t = {name: table(model) for name, model in (
        ("site", Site), ("slot", Slot), ("advertiser", Advertiser), ("campaign", Campaign),
        ("link", CampaignSlot), ("creative", Creative), ("schedule", ReportSchedule),
    )}  # fmt: skip
    created = NOW - timedelta(days=60)
    with engine.begin() as connection:
        connection.execute(insert(t["site"]), [
            dict(id=s + 1, key=f"site{s}", name=f"Site {s}", domains=[], status="active",
                 timezone=ZONES[s % len(ZONES)], currency="GBP" if s % 5 == 4 else "USD",
                 created_at=created, updated_at=created)
            for s in range(SITES)
        ])  # fmt: skip
        connection.execute(insert(t["slot"]), [
            dict(id=s * SLOTS_PER_SITE + n + 1, site_id=s + 1, name=f"slot{n}", sizes=["728x90"],
                 status="active", updated_at=created)
            for s in range(SITES) for n in range(SLOTS_PER_SITE)
        ])  # fmt: skip
        connection.execute(insert(t["advertiser"]), [
            dict(id=a + 1, name=f"Advertiser {a}", email=f"ads{a}@example.com", status="active",
                 created_at=created, updated_at=created)
            for a in range(advertisers)
        ])  # fmt: skip
        connection.execute(insert(t["campaign"]), [
            dict(id=a + 1, advertiser_id=a + 1, name=f"Campaign {a}", status="active",
                 tier="standard", pricing="cpm", price_micros=2_500_000, weight=1,
                 starts_at=datetime(2026, 3, 1), ends_at=datetime(2026, 4, 30),
                 goal_kind="impressions", goal_total=100_000, pacing="even", targeting={},
                 rotation="even", roadblock=False, labels=[], utm=False,
                 created_at=created, updated_at=created)
            for a in range(advertisers)
        ])  # fmt: skip
        slots = SITES * SLOTS_PER_SITE
        connection.execute(insert(t["link"]), [
            dict(campaign_id=a + 1, slot_id=a % slots + 1) for a in range(advertisers)
        ])  # fmt: skip
        connection.execute(insert(t["creative"]), [
            dict(id=a * 2 + n + 1, campaign_id=a + 1, name=f"Creative {a}-{n}", kind="text",
                 width=728, height=90, click_url="https://example.com/", weight=1,
                 status="active", impression_trackers=[], title="Buy", created_at=created,
                 updated_at=created)
            for a in range(advertisers) for n in range(2)
        ])  # fmt: skip
        connection.execute(insert(t["schedule"]), [
            dict(advertiser_id=a + 1, period="week", weekday=0, hour=8, timezone="UTC",
                 recipients=[f"ads{a}@example.com"], active=True, version=1,
                 created_at=created, updated_at=created)
            for a in range(advertisers)
        ])  # fmt: skip
    rows: list[tuple[int, ...]] = []
    written = 0
    first = int((NOW - timedelta(days=16)).timestamp())
    for a in range(advertisers):
        slot = a % (SITES * SLOTS_PER_SITE)
        site = slot // SLOTS_PER_SITE
        zone = ZoneInfo(ZONES[site % len(ZONES)])
        for hour in range(first, int(NOW.timestamp()), 3600):
            impressions = rng.randint(0, 40)
            clicks = 1 if rng.random() < impressions / 400 else 0
            counts = dict(
                served=impressions + 2, impressions=impressions, viewable=impressions * 2 // 3,
                clicks=clicks, invalid_impressions=1 if rng.random() < 0.05 else 0,
                spend_nanos=impressions * 2_500_000,
            )  # fmt: skip
            key = (local_hour_start(hour, zone), site + 1, slot + 1, a + 1, a * 2 + 1)
            rows.append((*key, *(counts.get(c, 0) for c in COUNTERS)))
        if len(rows) > 50_000:
            with engine.begin() as connection:
                add_counts(connection, rows)
            written += len(rows)
            rows = []
    with engine.begin() as connection:
        add_counts(connection, rows)
    return written + len(rows)


def smtp_sink(port: int) -> subprocess.Popen[bytes]:
    """aiosmtpd in its own process, accepting every message and keeping none."""
    process = subprocess.Popen(
        [sys.executable, "-m", "aiosmtpd", "-n", "-c", "aiosmtpd.handlers.Sink",
         "-l", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    import socket

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return process
        if process.poll() is not None:
            raise RuntimeError("the SMTP server did not start")
        time.sleep(0.05)
    raise RuntimeError("the SMTP server did not answer")


def run(url: str, *, advertisers: int, port: int) -> dict[str, float]:
    migrate(url)
    engine = make_engine(url)
    try:
        started = time.perf_counter()
        rows = populate(engine, advertisers=advertisers, rng=random.Random(14))
        print(f"  data: {advertisers} advertisers, {rows:,} hourly rows "
              f"in {time.perf_counter() - started:.1f} s")  # fmt: skip
        settings = Settings(
            database_url=url, secret_key="bench-secret-0123456789", base_url="https://ads.example"
        )
        sink = smtp_sink(port)
        try:
            t0, c0 = time.perf_counter(), time.process_time()
            due = run_due_reports(engine, settings, now=NOW)
            t1, c1 = time.perf_counter(), time.process_time()
            sent = drain(
                engine, Mailer.from_url(f"smtp://127.0.0.1:{port}"), holder="bench", now=NOW
            )
            t2, c2 = time.perf_counter(), time.process_time()
            used = cpu.sample([sink.pid])
            sink_cpu = sum(used.threads.values()) if used is not None else float("nan")
        finally:
            sink.terminate()
            sink.wait(timeout=10)
        with engine.connect() as connection:
            outbox = table(Outbox)
            statuses: dict[str, int] = dict(
                connection.execute(
                    select(outbox.c.status, func.count()).group_by(outbox.c.status)
                ).all()
            )
    finally:
        engine.dispose()
    figures = {
        "built": float(due.built),
        "build_seconds": t1 - t0,
        "send_seconds": t2 - t1,
        "total_seconds": t2 - t0,
        "sent": float(sent.sent),
        "build_cpu_seconds": c1 - c0,
        "send_cpu_seconds": c2 - c1,
        "smtp_server_cpu_seconds": sink_cpu,
    }
    print(
        f"  built {due.built} reports in {t1 - t0:.1f} s "
        f"({(t1 - t0) / max(1, due.built) * 1000:.1f} ms each; {c1 - c0:.1f} s of CPU)"
    )
    print(f"  handed {sent.sent} messages to SMTP in {t2 - t1:.1f} s ({c2 - c1:.1f} s of CPU, "
          f"the SMTP server's {sink_cpu:.1f} s on its own core); outbox {statuses}")  # fmt: skip
    verdict = (
        "PASS" if figures["total_seconds"] < TARGET_SECONDS and sent.sent == advertisers else "FAIL"
    )
    print(f"  total {figures['total_seconds']:.1f} s (target < {TARGET_SECONDS:.0f} s): {verdict}")
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.reports", description=__doc__)
    parser.add_argument("--advertisers", type=int, default=ADVERTISERS)
    parser.add_argument("--postgres", help="also on this PostgreSQL URL (an empty database)")
    parser.add_argument("--port", type=int, default=8725, help="the SMTP sink's port")
    args = parser.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory() as workdir:
        print("SQLite:")
        results.append(run(f"sqlite:///{Path(workdir) / 'bench.db'}",
                           advertisers=args.advertisers, port=args.port))  # fmt: skip
    if args.postgres:
        print("PostgreSQL:")
        results.append(run(args.postgres, advertisers=args.advertisers, port=args.port))
    ok = all(r["total_seconds"] < TARGET_SECONDS and r["sent"] == args.advertisers for r in results)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

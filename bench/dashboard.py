"""``python -m bench.dashboard``: the advertiser's dashboard and the admin overview over a year
of hourly statistics, on SQLite and PostgreSQL.

The database: 50 sites with 3 slots each (four time zones, two currencies), 40 advertisers
with 5 campaigns each (200 campaigns, each on the 3 slots of one site), and every hour of the
last 365 days filled: a row per campaign and slot plus a row of slot requests, about 6.6
million hourly rows, with invalid traffic once a day per slot. The rows go in with bulk inserts
(COPY on PostgreSQL); the daily rollups are then rebuilt from them and checked.

A real ``adserver serve`` process answers; the client signs in as advertiser users and as the
admin and times whole requests (an upper bound on server time). Targets (issue 13): median
under 100 ms and 95th percentile under 250 ms for each page.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import re
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import psycopg
from sqlalchemy import Engine, insert, text

from adserver.accounts.passwords import hash_password
from adserver.core.clock import local_hour_start
from adserver.core.db import make_engine, migrate
from adserver.core.models import (
    Advertiser,
    Campaign,
    CampaignSlot,
    Creative,
    Site,
    Slot,
    User,
    table,
)
from adserver.delivery.pacing import refresh_delivery
from adserver.reporting.rollups import disagreements, rebuild
from bench import cpu, servers

SITES, SLOTS_PER_SITE, ADVERTISERS, CAMPAIGNS_PER_ADVERTISER = 50, 3, 40, 5
ZONES = ("Europe/London", "America/New_York", "Asia/Kolkata", "UTC")
PASSWORD = "bench-password-1"
POSTGRES = "postgres@127.0.0.1:5432"
MEDIAN_TARGET, P95_TARGET = 100.0, 250.0
#: (case, URL path and query) timed for each database; advertisers rotate.
PAGES = (
    ("dashboard, last 30 days", "/dashboard"),
    ("dashboard, last 7 days", "/dashboard?range=7d"),
    ("dashboard, today (hourly chart)", "/dashboard?range=today"),
    ("dashboard, last month", "/dashboard?range=last-month"),
    ("dashboard, one campaign, 30 days", "/dashboard?campaign={campaign}"),
    ("dashboard CSV, by day", "/dashboard/days.csv"),
    ("admin overview", "/admin"),
)
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def build(engine: Engine, *, days: int, now: datetime, log: Any) -> dict[str, Any]:
    """The inventory, users and a year of statistics; returns what the client needs."""
    rng = random.Random(13)
    hashed = hash_password(PASSWORD)
    site_rows: list[dict[str, Any]] = []
    slot_rows: list[dict[str, Any]] = []
    slots_of: dict[int, list[int]] = {}
    for s in range(SITES):
        site_rows.append(
            {
                "id": s + 1,
                "key": f"site{s:02d}",
                "name": f"Site {s:02d}",
                "domains": [f"site{s:02d}.example"],
                "timezone": ZONES[s % len(ZONES)],
                "currency": "EUR" if s % 5 == 4 else "USD",
            }
        )
        slots_of[s + 1] = []
        for n, (name, sizes) in enumerate(
            (("top", ["728x90"]), ("side", ["300x250"]), ("below", ["728x90", "300x250"]))
        ):
            slot_id = s * SLOTS_PER_SITE + n + 1
            slot_rows.append({"id": slot_id, "site_id": s + 1, "name": name, "sizes": sizes})
            slots_of[s + 1].append(slot_id)
    start_local = (now - timedelta(days=days)).replace(tzinfo=None)
    advertisers, campaigns, links, creatives, users = [], [], [], [], []
    placements: list[tuple[int, int, int, int]] = []
    for a in range(ADVERTISERS):
        advertisers.append({"id": a + 1, "name": f"Advertiser {a:02d}", "email": f"a{a}@x.test"})
        users.append(
            {
                "email": f"buyer{a:02d}@bench.test",
                "role": "advertiser",
                "advertiser_id": a + 1,
                "password_hash": hashed,
            }
        )
        for n in range(CAMPAIGNS_PER_ADVERTISER):
            cid = a * CAMPAIGNS_PER_ADVERTISER + n + 1
            site = (cid - 1) % SITES + 1
            campaigns.append(
                {
                    "id": cid,
                    "advertiser_id": a + 1,
                    "name": f"Campaign {cid:03d}",
                    "status": "active",
                    "pricing": "cpm",
                    "price_micros": rng.choice((1_500_000, 2_000_000, 3_250_000)),
                    "starts_at": start_local,
                    "ends_at": (now + timedelta(days=rng.randint(3, 60))).replace(tzinfo=None),
                    "goal_kind": "impressions",
                    "goal_total": rng.randint(500_000, 5_000_000),
                    "targeting": {},
                    "labels": [],
                }
            )
            creatives.append(
                {
                    "id": cid,
                    "campaign_id": cid,
                    "name": f"Banner {cid:03d}",
                    "kind": "html",
                    "html": "<a href='%%CLICK_URL%%'>ad</a>",
                    "width": 300,
                    "height": 250,
                    "click_url": "https://advertiser.example/",
                    "impression_trackers": [],
                }
            )
            for slot_id in slots_of[site]:
                links.append({"campaign_id": cid, "slot_id": slot_id})
                placements.append((site, slot_id, cid, cid))
    users.append(
        {"email": "ops@bench.test", "role": "admin", "advertiser_id": None, "password_hash": hashed}
    )
    with engine.begin() as connection:
        for model, rows in (
            (Site, site_rows),
            (Slot, slot_rows),
            (Advertiser, advertisers),
            (Campaign, campaigns),
            (CampaignSlot, links),
            (Creative, creatives),
            (User, users),
        ):
            connection.execute(insert(table(model)), rows)
        if connection.dialect.name == "postgresql":
            for name in ("site", "slot", "advertiser", "campaign", "creative"):
                connection.execute(
                    text(f"SELECT setval('{name}_id_seq', (SELECT max(id) FROM {name}))")
                )
    started = time.perf_counter()
    count = _statistics(engine, placements, slots_of, site_rows, days=days, now=now)
    log(f"  {count:,} hourly rows in {time.perf_counter() - started:.0f} s")
    started = time.perf_counter()
    with engine.begin() as connection:
        rebuild(connection)
    log(f"  daily rollups rebuilt in {time.perf_counter() - started:.0f} s")
    started = time.perf_counter()
    refresh_delivery(engine, now=now.timestamp())
    log(f"  pacing figures refreshed in {time.perf_counter() - started:.1f} s")
    with engine.begin() as connection:
        connection.execute(text("ANALYZE"))
    return {
        "advertisers": [u["email"] for u in users if u["role"] == "advertiser"],
        "campaigns": {a + 1: a * CAMPAIGNS_PER_ADVERTISER + 1 for a in range(ADVERTISERS)},
        "rows": count,
    }


def _statistics(
    engine: Engine,
    placements: list[tuple[int, int, int, int]],
    slots_of: dict[int, list[int]],
    sites: list[dict[str, Any]],
    *,
    days: int,
    now: datetime,
) -> int:
    """Every hour of ``days`` days, in bulk: one request row per slot and one row per campaign
    and slot, site-local hour buckets; invalid impressions once a day per slot."""
    rng = random.Random(7)
    zones = {s["id"]: ZoneInfo(s["timezone"]) for s in sites}
    first = int((now - timedelta(days=days)).timestamp()) // 3600 * 3600
    last = int(now.timestamp()) // 3600 * 3600
    count = 0
    with _bulk(engine) as write:
        hour = first
        while hour <= last:
            rows: list[tuple[int, ...]] = []
            invalid: list[tuple[Any, ...]] = []
            buckets = {site: local_hour_start(hour, zone) for site, zone in zones.items()}
            noon = datetime.fromtimestamp(hour, UTC).hour == 12
            for site, slots in slots_of.items():
                for slot in slots:
                    rows.append((buckets[site], site, slot, 0, 0, rng.randint(80, 400)) + (0,) * 8)
                    if noon:
                        invalid.append((buckets[site], site, slot, 0, 0, "imp", "bot", 3))
            for site, slot, campaign, creative in placements:
                served = rng.randint(10, 100)
                impressions = served - rng.randint(0, 5)
                viewable = impressions * rng.randint(40, 80) // 100
                clicks = impressions // rng.randint(40, 400)
                rows.append(
                    (
                        buckets[site],
                        site,
                        slot,
                        campaign,
                        creative,
                        0,
                        served,
                        impressions,
                        viewable,
                        clicks,
                        rng.randint(0, 2),
                        0,
                        0,
                        impressions * 2_000_000,
                    )
                )
            write(rows, invalid)
            count += len(rows)
            hour += 3600
    return count


@contextlib.contextmanager
def _bulk(engine: Engine) -> Iterator[Any]:
    """A writer of hourly and invalid rows: COPY on PostgreSQL, executemany on SQLite."""
    hourly_columns = (
        "hour, site_id, slot_id, campaign_id, creative_id, requests, served, impressions, "
        "viewable, clicks, invalid_impressions, invalid_views, invalid_clicks, spend_nanos"
    )
    invalid_columns = "hour, site_id, slot_id, campaign_id, creative_id, kind, reason, count"
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        if engine.dialect.name == "postgresql":
            postgres: Any = raw.driver_connection
            pending: list[tuple[list[tuple[int, ...]], list[tuple[Any, ...]]]] = []

            def flush() -> None:
                with (
                    postgres.cursor() as pg,
                    pg.copy(f"COPY hourly_stat ({hourly_columns}) FROM STDIN") as copy,
                ):
                    for rows, _ in pending:
                        for row in rows:
                            copy.write_row(row)
                with (
                    postgres.cursor() as pg,
                    pg.copy(f"COPY invalid_stat ({invalid_columns}) FROM STDIN") as copy,
                ):
                    for _, invalid in pending:
                        for row in invalid:
                            copy.write_row(row)
                pending.clear()

            def write(rows: list[tuple[int, ...]], invalid: list[tuple[Any, ...]]) -> None:
                pending.append((rows, invalid))
                if len(pending) >= 240:
                    flush()

            yield write
            flush()
        else:
            marks = ", ".join("?" * 14)

            def write(rows: list[tuple[int, ...]], invalid: list[tuple[Any, ...]]) -> None:
                cursor.executemany(f"INSERT INTO hourly_stat VALUES ({marks})", rows)
                if invalid:
                    cursor.executemany(
                        f"INSERT INTO invalid_stat ({invalid_columns}) VALUES ({marks[:22]})",
                        invalid,
                    )

            yield write
        raw.commit()
    finally:
        raw.close()


def sign_in(base: str, email: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=60)
    page = client.get("/login")
    found = _CSRF.search(page.text)
    assert found, "no CSRF field on /login"
    answer = client.post(
        "/login", data={"email": email, "password": PASSWORD, "csrf_token": found.group(1)}
    )
    if answer.status_code != 303:
        raise RuntimeError(f"could not sign in as {email}: {answer.status_code}")
    return client


def measure(
    server: servers.ServerProcess, fixture: dict[str, Any], *, requests: int, log: Any
) -> list[dict[str, Any]]:
    """Each page ``requests`` times (after two to warm up): wall time per request as the client
    sees it, and the server process's CPU time per request (with SQLite, the queries' too)."""
    base = server.url
    advertisers = [sign_in(base, email) for email in fixture["advertisers"]]
    admin = sign_in(base, "ops@bench.test")
    results = []
    try:
        for name, path in PAGES:
            times = []
            before = None
            for n in range(requests + 2):
                if n == 2:
                    before = cpu.sample(server.pids())
                number = n % len(advertisers)
                client = admin if path.startswith("/admin") else advertisers[number]
                url = path.format(campaign=fixture["campaigns"][number + 1])
                started = time.perf_counter()
                answer = client.get(url)
                elapsed = (time.perf_counter() - started) * 1000
                if answer.status_code != 200:
                    raise RuntimeError(f"{url}: {answer.status_code} {answer.text[:200]}")
                if n >= 2:  # the first two warm the caches of the process and the database
                    times.append(elapsed)
            used = cpu.usage(before, cpu.sample(server.pids()), requests)
            cpu_ms = used.us_per_request / 1000 if used is not None else None
            times.sort()
            median = statistics.median(times)
            p95 = times[max(0, round(0.95 * len(times)) - 1)]
            ok = median < MEDIAN_TARGET and p95 < P95_TARGET
            results.append(
                {"case": name, "median_ms": median, "p95_ms": p95, "cpu_ms": cpu_ms, "ok": ok}
            )
            load = os.getloadavg()[0]
            log(
                f"  {name:<34} median {median:6.1f} ms  p95 {p95:6.1f} ms  "
                + (f"server CPU {cpu_ms:5.1f} ms  " if cpu_ms is not None else "")
                + f"load {load:4.1f}  "
                + ("PASS" if ok else "FAIL")
            )
    finally:
        for client in [*advertisers, admin]:
            client.close()
    return results


def run(
    url: str, label: str, *, days: int, requests: int, check: bool, workdir: Path, log: Any
) -> bool:
    log(f"{label}: building {days} days of statistics")
    migrate(url)
    engine = make_engine(url)
    now = datetime.now(UTC)
    try:
        fixture = build(engine, days=days, now=now, log=log)
        wrong: list[str] = []
        if check:
            started = time.perf_counter()
            with engine.connect() as connection:
                wrong = disagreements(connection)
            verdict = "yes" if not wrong else "NO " + ", ".join(wrong[:5])
            log(
                f"  rollups agree with the hours: {verdict} ({time.perf_counter() - started:.0f} s)"
            )
    finally:
        engine.dispose()
    env = {
        "ADSERVER_DATABASE_URL": url,
        "ADSERVER_SECRET_KEY": secrets.token_urlsafe(32),
        "ADSERVER_SCHEDULER": "off",
        "ADSERVER_BASE_URL": "http://127.0.0.1",
    }
    with servers.running(
        "adserver", servers.adserver_command("uvicorn", 1), env=env, workdir=workdir
    ) as server:
        results = measure(server, fixture, requests=requests, log=log)
    return not wrong and all(r["ok"] for r in results)


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    name = f"adserver_bench_{secrets.token_hex(4)}"
    with psycopg.connect(f"postgresql://{POSTGRES}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://{POSTGRES}/{name}"
    finally:
        with psycopg.connect(f"postgresql://{POSTGRES}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.dashboard", description=__doc__)
    parser.add_argument("--days", type=int, default=365, help="days of hourly statistics")
    parser.add_argument("--requests", type=int, default=40, help="timed requests per page")
    parser.add_argument("--databases", default="sqlite,postgres", help="comma list")
    parser.add_argument(
        "--skip-check", action="store_true", help="do not check the rollups against the hours"
    )
    args = parser.parse_args(argv)

    def log(line: str) -> None:
        print(line, flush=True)

    ok = True
    with tempfile.TemporaryDirectory(prefix="adserver-dashboard-bench-") as tmp:
        workdir = Path(tmp)
        for database in [d for d in args.databases.split(",") if d]:
            if database == "sqlite":
                url = f"sqlite:///{workdir / 'bench.db'}"
                ok &= run(
                    url,
                    "SQLite",
                    days=args.days,
                    requests=args.requests,
                    check=not args.skip_check,
                    workdir=workdir,
                    log=log,
                )
            elif database == "postgres":
                with postgres_database() as url:
                    ok &= run(
                        url,
                        "PostgreSQL",
                        days=args.days,
                        requests=args.requests,
                        check=not args.skip_check,
                        workdir=workdir,
                        log=log,
                    )
            else:
                parser.error(f"unknown database {database!r}: sqlite or postgres")
    log("all targets met" if ok else "some targets missed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""In-process cases: the pure decision engine, snapshot builds, the tally and tag.js's size."""

from __future__ import annotations

import gzip
import os
import random
import secrets
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, text

from adserver.core.resources import PACKAGE_DIR
from adserver.delivery.decide import DecideRequest, SlotRequest, decide
from adserver.delivery.inventory import build_snapshot
from bench.fixture import Fixture


@contextmanager
def on_core(core: int) -> Iterator[None]:
    """Run the block on one core, as the servers are, when the machine allows."""
    if not hasattr(os, "sched_setaffinity") or (os.cpu_count() or 1) < 2:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {core})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def pure_decide(engine: Engine, fixture: Fixture, *, calls: int) -> dict[str, Any]:
    """``decide`` for 3 slots on the bench inventory, each call timed on its own."""
    with engine.connect() as connection:
        snapshot = build_snapshot(connection, base_url="http://127.0.0.1", now=time.time())
    now = time.time()
    slots = tuple(SlotRequest(name) for name in fixture.slot_names)
    requests = [
        DecideRequest(
            site=key,
            slots=slots,
            now=now,
            path=f"/news/story-{page}.html",
            keywords=frozenset({"travel"}) if page == 3 else frozenset(),
            device="desktop",
            country="IN",
        )
        for page in range(4)
        for key in fixture.sites
    ]
    rng = random.Random(1)
    timer = time.perf_counter_ns
    with on_core(0):
        for request in requests * 20:  # warm up
            decide(snapshot, request, rng)
        times = []
        for i in range(calls):
            request = requests[i % len(requests)]
            started = timer()
            result = decide(snapshot, request, rng)
            times.append(timer() - started)
            if not all(result.decisions.values()):
                raise AssertionError(f"an unfilled slot on {request.site}: {result.decisions}")
    times.sort()
    return {
        "calls": calls,
        "median_us": round(statistics.median(times) / 1000, 2),
        "p99_us": round(times[int(len(times) * 0.99)] / 1000, 2),
        "campaigns": fixture.campaigns,
        "slots_per_call": len(slots),
    }


def snapshot_build(engine: Engine, *, times: int = 3) -> dict[str, Any]:
    """How long a full snapshot rebuild takes (it runs aside, in the refresher thread)."""
    durations = []
    for _ in range(times):
        started = time.perf_counter()
        with engine.connect() as connection:
            snapshot = build_snapshot(connection, base_url="http://127.0.0.1", now=time.time())
        durations.append(time.perf_counter() - started)
    return {
        "median_ms": round(statistics.median(durations) * 1000, 1),
        "creatives": len(snapshot.creatives),
    }


def tag_size() -> dict[str, Any]:
    source = (PACKAGE_DIR / "static" / "tag.js").read_bytes()
    return {"bytes": len(source), "gzipped_bytes": len(gzip.compress(source, 9, mtime=0))}


def tally(engine: Engine, fixture: Fixture, *, events: int) -> dict[str, Any]:
    """Insert ``events`` raw events fast, then time ``run_tally`` over all of them."""
    try:
        from adserver.reporting.tally import run_tally
    except ImportError:
        return {"skipped": "adserver.tally is not there yet"}
    inserted = _insert_events(engine, fixture, events)
    started = time.perf_counter()
    rolled = run_tally(engine)
    seconds = time.perf_counter() - started
    with engine.connect() as connection:
        pending = connection.execute(
            text("SELECT count(*) FROM event WHERE tally_batch IS NULL")
        ).scalar_one()
        impressions = connection.execute(
            text("SELECT coalesce(sum(impressions), 0) FROM hourly_stat")
        ).scalar_one()
    valid_imps = inserted["valid_imp"]
    if rolled != events or pending or impressions != valid_imps:
        raise AssertionError(
            f"tally rolled {rolled} of {events} ({pending} pending), "
            f"impressions {impressions} != {valid_imps}"
        )
    return {
        "events": events,
        "seconds": round(seconds, 2),
        "events_per_second": round(events / seconds),
        "seconds_per_million": round(seconds * 1_000_000 / events, 2),
        "insert_seconds": inserted["seconds"],
    }


def _insert_events(engine: Engine, fixture: Fixture, events: int) -> dict[str, Any]:
    """Events over the last 48 hours: 80% valid impressions, views and clicks of some of them,
    and invalid ones (bots, duplicates); one executemany on the raw SQLite connection."""
    rng = random.Random(3)
    now = int(time.time())
    placements = fixture.placements
    rows = []
    decision = 0
    while len(rows) < events:
        p = placements[rng.randrange(len(placements))]
        at = now - rng.randrange(48 * 3600)
        hour = at - at % 3600
        decision += 1
        decision_id = f"d{decision:015d}"
        kinds = ["imp"]
        if rng.random() < 0.6:
            kinds.append("view")
        if rng.random() < 0.02:
            kinds.append("click")
        bot = rng.random() < 0.05
        for kind in kinds:
            valid = not bot
            reason = None if valid else "bot"
            dedup = f"{decision_id}:{kind}" if valid else None
            rows.append(
                (
                    secrets.token_urlsafe(16),
                    decision_id,
                    kind,
                    at,
                    hour,
                    p.site_id,
                    p.slot_id,
                    p.campaign_id,
                    p.creative_id,
                    valid,
                    reason,
                    dedup,
                )
            )
    rows = rows[:events]
    valid_imp = sum(1 for r in rows if r[2] == "imp" and r[9])
    started = time.perf_counter()
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.executemany(
            "INSERT INTO event (id, decision_id, kind, at, hour, site_id, slot_id, campaign_id, "
            "creative_id, valid, reason, dedup_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        raw.commit()
    finally:
        raw.close()
    return {"valid_imp": valid_imp, "seconds": round(time.perf_counter() - started, 2)}

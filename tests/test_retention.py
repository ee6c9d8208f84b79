"""Retention: raw events past their days are deleted once tallied; statistics stay."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, text

from adserver.jobs.retention import prune_events
from adserver.reporting.tally import run_tally
from tests.placements import place, record


def utc(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp())  # type: ignore[misc]


def test_retention_deletes_only_old_tallied_events(engine: Engine) -> None:
    cpm = place(engine, pricing="cpm", price_micros=1_000_000)
    now = utc(2026, 11, 20, 12)
    old = now - 91 * 86400
    record(engine, [cpm.event(f"old{n}", "imp", at=old + n) for n in range(25)])
    record(engine, [cpm.event(f"new{n}", "imp", at=now - 86400) for n in range(3)])
    run_tally(engine)
    # Old, but not yet tallied: must stay until the tally has counted it.
    record(engine, [cpm.event("old-pending", "imp", at=old)])

    assert prune_events(engine, now=now, retention_days=90, batch_size=10) == 25
    with engine.connect() as connection:
        left = connection.execute(
            text("SELECT decision_id, tally_batch IS NULL FROM event ORDER BY decision_id")
        ).all()
        kept = connection.execute(text("SELECT sum(impressions) FROM hourly_stat")).scalar()
    assert [(d, bool(p)) for d, p in left] == [
        ("new0", False),
        ("new1", False),
        ("new2", False),
        ("old-pending", True),
    ]
    assert kept == 28
    assert prune_events(engine, now=now, retention_days=90) == 0
    run_tally(engine)
    assert prune_events(engine, now=now, retention_days=90) == 1

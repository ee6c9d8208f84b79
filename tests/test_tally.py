"""The tally: exact, idempotent, priced, site-local, and exact with concurrent writers."""

from __future__ import annotations

import multiprocessing
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, text

from adserver.cli import main
from adserver.core.clock import local_day, local_hour_start
from adserver.reporting.tally import run_tally
from tests.conftest import SECRET
from tests.event_mix import Mix, send
from tests.placements import AT, UTC_ZONE, Placement, place, record


def hourly(engine: Engine) -> dict[tuple[int, int, int], dict[str, int]]:
    """(hour, site, campaign) -> counters, for rows with anything in them."""
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT hour, site_id, campaign_id, impressions, viewable, clicks, "
                "invalid_impressions, invalid_views, invalid_clicks, spend_nanos FROM hourly_stat"
            )
        ).all()
    return {
        (r.hour, r.site_id, r.campaign_id): {
            k: int(v) for k, v in r._mapping.items() if k not in ("hour", "site_id", "campaign_id")
        }
        for r in rows
    }


def invalid(engine: Engine) -> Counter[tuple[int, str, str]]:
    """(campaign, kind, reason) -> count."""
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT campaign_id, kind, reason, count FROM invalid_stat")
        ).all()
    totals: Counter[tuple[int, str, str]] = Counter()
    for r in rows:
        totals[(r.campaign_id, r.kind, r.reason)] += r.count
    return totals


def stat_rows(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as connection:
        return [
            tuple(r)
            for r in connection.execute(
                text("SELECT * FROM hourly_stat ORDER BY hour, site_id, slot_id, creative_id")
            )
        ] + [
            tuple(r)
            for r in connection.execute(
                text("SELECT * FROM invalid_stat ORDER BY hour, creative_id, kind, reason")
            )
        ]


def test_tally_counts_each_event_once_and_again_adds_nothing(engine: Engine) -> None:
    cpm = place(engine, pricing="cpm", price_micros=2_500_000)  # 2.50 per 1,000
    events = []
    for n in range(10):
        events.append(cpm.event(f"d{n}", "imp"))
        if n < 6:
            events.append(cpm.event(f"d{n}", "view"))
        if n < 2:
            events.append(cpm.event(f"d{n}", "click"))
    events += [cpm.event(f"d{n}", "imp") for n in range(3)]  # duplicates
    events += [cpm.event("bot1", "imp", reason="bot"), cpm.event("bot2", "imp", reason="bot")]
    events += [cpm.event("old", "click", reason="expired"), cpm.event("lone", "click")]
    record(engine, events)

    assert run_tally(engine, batch_size=4) == len(events)
    hour = local_hour_start(AT, UTC_ZONE)
    assert hourly(engine) == {
        (hour, cpm.ids[0], cpm.ids[2]): {
            "impressions": 10,
            "viewable": 6,
            "clicks": 2,
            "invalid_impressions": 5,
            "invalid_views": 0,
            "invalid_clicks": 2,
            "spend_nanos": 10 * 2_500_000,  # 0.025 in currency units
        }
    }
    assert invalid(engine) == {
        (cpm.ids[2], "imp", "duplicate"): 3,
        (cpm.ids[2], "imp", "bot"): 2,
        (cpm.ids[2], "click", "expired"): 1,
        (cpm.ids[2], "click", "no-impression"): 1,
    }
    before = stat_rows(engine)
    assert run_tally(engine) == 0
    assert stat_rows(engine) == before

    record(engine, [cpm.event("late", "imp"), cpm.event("late", "imp")])
    assert run_tally(engine) == 2
    figures = hourly(engine)[(hour, cpm.ids[0], cpm.ids[2])]
    assert (figures["impressions"], figures["invalid_impressions"]) == (11, 6)
    assert figures["spend_nanos"] == 11 * 2_500_000


def test_batches_of_any_size_add_up_to_the_same(engine: Engine) -> None:
    cpm = place(engine, pricing="cpm", price_micros=1_000_000)
    record(engine, [cpm.event(f"d{n}", "imp", at=AT + 600 * n) for n in range(25)])
    assert run_tally(engine, batch_size=7) == 25
    assert sum(row["impressions"] for row in hourly(engine).values()) == 25
    with engine.connect() as connection:
        pending = connection.execute(
            text("SELECT count(*) FROM event WHERE tally_batch IS NULL")
        ).scalar()
        batches = connection.execute(text("SELECT count(DISTINCT tally_batch) FROM event")).scalar()
    assert pending == 0
    assert batches == 4


def test_concurrent_tallies_never_count_an_event_twice(engine: Engine) -> None:
    cpm = place(engine, pricing="cpm", price_micros=1_000_000)
    record(engine, [cpm.event(f"d{n}", "imp", at=AT + n) for n in range(2000)])
    with ThreadPoolExecutor(4) as pool:
        counts = list(pool.map(lambda _: run_tally(engine, batch_size=37), range(4)))
    assert sum(counts) == 2000
    assert sum(row["impressions"] for row in hourly(engine).values()) == 2000


def test_spend_cpc_bills_valid_clicks_and_house_nothing(engine: Engine) -> None:
    cpc = place(engine, pricing="cpc", price_micros=400_000)  # 0.40 a click
    house = place(engine, pricing="house", price_micros=0)
    events = []
    for n in range(5):
        events.append(cpc.event(f"c{n}", "imp"))
        events.append(house.event(f"h{n}", "imp"))
        events.append(house.event(f"h{n}", "click"))
    events += [cpc.event(f"c{n}", "click") for n in range(3)]
    events += [cpc.event("c0", "click"), cpc.event("nobody", "click")]  # duplicate, no imp
    events.append(cpc.event("bot", "click", reason="bot"))
    record(engine, events)
    run_tally(engine)
    hour = local_hour_start(AT, UTC_ZONE)
    rows = hourly(engine)
    assert rows[(hour, cpc.ids[0], cpc.ids[2])]["clicks"] == 3
    assert rows[(hour, cpc.ids[0], cpc.ids[2])]["invalid_clicks"] == 3
    assert rows[(hour, cpc.ids[0], cpc.ids[2])]["spend_nanos"] == 3 * 400_000 * 1000
    assert rows[(hour, house.ids[0], house.ids[2])]["clicks"] == 5
    assert rows[(hour, house.ids[0], house.ids[2])]["spend_nanos"] == 0


def test_flat_price_is_booked_once_per_local_day_it_delivers(engine: Engine) -> None:
    flat = place(engine, pricing="flat", price_micros=50_000_000, tz="Asia/Kolkata")
    day1 = int(datetime(2026, 11, 20, 4, 0, tzinfo=UTC).timestamp())  # 09:30 IST, 20 Nov
    day2 = int(datetime(2026, 11, 20, 19, 0, tzinfo=UTC).timestamp())  # 00:30 IST, 21 Nov
    day3 = int(datetime(2026, 11, 22, 5, 0, tzinfo=UTC).timestamp())  # 22 Nov: invalid only
    record(engine, [flat.event(f"a{n}", "imp", at=day1 + 900 * n) for n in range(8)])
    record(engine, [flat.event("b0", "imp", at=day2)])
    record(engine, [flat.event("c0", "imp", at=day3, reason="bot")])
    run_tally(engine, batch_size=3)
    # More of day 1, tallied later: no second booking.
    record(engine, [flat.event("a-late", "imp", at=day1 + 7200)])
    run_tally(engine)

    rows = hourly(engine)
    spend = {hour: row["spend_nanos"] for (hour, _, _), row in rows.items()}
    zone = ZoneInfo("Asia/Kolkata")
    assert spend[local_hour_start(day1, zone)] == 50_000_000 * 1000
    assert spend[local_hour_start(day2, zone)] == 50_000_000 * 1000
    assert sum(spend.values()) == 2 * 50_000_000 * 1000
    with engine.connect() as connection:
        booked = connection.execute(text("SELECT campaign_id, day FROM flat_booking")).all()
    assert sorted((c, d) for c, d in booked) == [
        (flat.ids[2], "2026-11-20"),
        (flat.ids[2], "2026-11-21"),
    ]


def test_forged_events_count_apart_with_no_ids(engine: Engine) -> None:
    forged = Placement(0, 0, 0, 0, UTC_ZONE)
    record(engine, [forged.event("", "imp", reason="forged") for _ in range(3)])
    record(engine, [forged.event("", "click", reason="forged")])
    assert run_tally(engine) == 4
    hour = local_hour_start(AT, UTC_ZONE)
    row = hourly(engine)[(hour, 0, 0)]
    assert (row["impressions"], row["invalid_impressions"], row["invalid_clicks"]) == (0, 3, 1)
    assert invalid(engine) == {(0, "imp", "forged"): 3, (0, "click", "forged"): 1}


def utc(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp())  # type: ignore[misc]


def test_events_land_in_site_local_hours_and_days_across_dst(engine: Engine) -> None:
    london = place(engine, pricing="cpm", price_micros=1_000_000, site_key="uk", tz="Europe/London")
    kolkata = place(engine, pricing="cpm", price_micros=1_000_000, site_key="in", tz="Asia/Kolkata")
    # London leaves summer time at 2026-10-25 01:00 UTC: 01:00-02:00 local happens twice and
    # the local day of 25 October has 25 hours.
    london_events = {
        utc(2026, 10, 24, 22, 59, 59): (utc(2026, 10, 24, 22), "2026-10-24"),  # 23:59:59 BST
        utc(2026, 10, 24, 23, 0, 0): (utc(2026, 10, 24, 23), "2026-10-25"),  # 00:00 BST
        utc(2026, 10, 25, 0, 30): (utc(2026, 10, 25, 0), "2026-10-25"),  # 01:30 BST
        utc(2026, 10, 25, 1, 30): (utc(2026, 10, 25, 1), "2026-10-25"),  # 01:30 GMT
        utc(2026, 10, 25, 23, 59, 59): (utc(2026, 10, 25, 23), "2026-10-25"),  # 23:59:59 GMT
        utc(2026, 10, 26, 0, 0, 0): (utc(2026, 10, 26, 0), "2026-10-26"),  # 00:00 GMT
    }
    # Kolkata is UTC+05:30 all year: local hours start at half past the UTC hour.
    kolkata_events = {
        utc(2026, 10, 24, 18, 29, 59): (utc(2026, 10, 24, 17, 30), "2026-10-24"),
        utc(2026, 10, 24, 18, 30, 0): (utc(2026, 10, 24, 18, 30), "2026-10-25"),
        utc(2026, 10, 25, 18, 29, 59): (utc(2026, 10, 25, 17, 30), "2026-10-25"),
        utc(2026, 10, 25, 18, 30, 0): (utc(2026, 10, 25, 18, 30), "2026-10-26"),
    }
    events = [london.event(f"l{at}", "imp", at=at) for at in london_events]
    events += [kolkata.event(f"k{at}", "imp", at=at) for at in kolkata_events]
    record(engine, events)
    assert run_tally(engine) == 10

    rows = hourly(engine)
    expected = {(hour, london.ids[0], london.ids[2]) for hour, _ in london_events.values()}
    expected |= {(hour, kolkata.ids[0], kolkata.ids[2]) for hour, _ in kolkata_events.values()}
    assert set(rows) == expected
    assert all(row["impressions"] == 1 for row in rows.values())

    days: Counter[tuple[int, str]] = Counter()
    for (hour, site, _), row in rows.items():
        zone = london.zone if site == london.ids[0] else kolkata.zone
        days[(site, local_day(hour, zone))] += row["impressions"]
    assert days == {
        (london.ids[0], "2026-10-24"): 1,
        (london.ids[0], "2026-10-25"): 4,
        (london.ids[0], "2026-10-26"): 1,
        (kolkata.ids[0], "2026-10-24"): 1,
        (kolkata.ids[0], "2026-10-25"): 2,
        (kolkata.ids[0], "2026-10-26"): 1,
    }
    for hour, day in [*london_events.values(), *kolkata_events.values()]:
        zone = london.zone if (hour, london.ids[0], london.ids[2]) in rows else kolkata.zone
        assert local_day(hour, zone) == day


def test_tally_command_prints_how_many_events(
    database_url: str, engine: Engine, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    cpm = place(engine, pricing="cpm", price_micros=1_000_000)
    record(engine, [cpm.event(f"d{n}", "imp") for n in range(4)])
    monkeypatch.setenv("ADSERVER_DATABASE_URL", database_url)
    monkeypatch.setenv("ADSERVER_SECRET_KEY", SECRET)
    assert main(["tally"]) == 0
    assert capsys.readouterr().out == "rolled up 4 events\n"
    assert main(["tally"]) == 0
    assert capsys.readouterr().out == "rolled up 0 events\n"


@pytest.mark.slow
def test_tally_is_exact_while_several_processes_insert(
    database_url: str, engine: Engine, tmp_path: Path
) -> None:
    cpm = place(engine, pricing="cpm", price_micros=3_000_000)
    mix = Mix(
        processes=4,
        threads=3,
        decisions=24,
        shared=10,
        at=AT,
        hour=local_hour_start(AT, UTC_ZONE),
        ids=cpm.ids,  # type: ignore[arg-type]
    )
    context = multiprocessing.get_context("spawn")
    go = context.Event()
    halfway = [context.Event() for _ in range(mix.processes)]
    senders = [
        context.Process(
            target=send, args=(mix, n, database_url, tmp_path / f"spool{n}", halfway[n], go)
        )
        for n in range(mix.processes)
    ]
    for process in senders:
        process.start()
    try:
        deadline = time.monotonic() + 120
        for flag, process in zip(halfway, senders, strict=True):
            while not flag.wait(0.5):
                assert process.is_alive(), "a sender died before halfway"
                assert time.monotonic() < deadline, "senders did not reach halfway"
        # Every sender is paused halfway: this tally must find their first halves.
        assert run_tally(engine, batch_size=50) > 0
        go.set()
        while any(process.is_alive() for process in senders):
            run_tally(engine, batch_size=50)
            assert time.monotonic() < deadline, "senders did not finish"
    finally:
        go.set()
        for process in senders:
            process.join(30)
    assert [process.exitcode for process in senders] == [0] * mix.processes
    for process in senders:
        process.close()
    run_tally(engine, batch_size=50)

    expected = mix.expected()
    with engine.connect() as connection:
        stored = connection.execute(text("SELECT count(*) FROM event")).scalar()
        pending = connection.execute(
            text("SELECT count(*) FROM event WHERE tally_batch IS NULL")
        ).scalar()
    assert (stored, pending) == (mix.sent(), 0)

    totals: Counter[str] = Counter()
    for row in hourly(engine).values():
        totals.update(row)
    assert totals == {
        "impressions": expected[("imp", "valid")],
        "viewable": expected[("view", "valid")],
        "clicks": expected[("click", "valid")],
        "invalid_impressions": sum(
            n for (k, r), n in expected.items() if k == "imp" and r != "valid"
        ),
        "invalid_views": sum(n for (k, r), n in expected.items() if k == "view" and r != "valid"),
        "invalid_clicks": sum(n for (k, r), n in expected.items() if k == "click" and r != "valid"),
        "spend_nanos": expected[("imp", "valid")] * 3_000_000,
    }
    by_reason = Counter({(kind, reason): n for (_, kind, reason), n in invalid(engine).items()})
    assert by_reason == {key: n for key, n in expected.items() if key[1] != "valid"}

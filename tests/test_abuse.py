"""Abuse rules: too-fast views and clicks, click floods and bursts from one reader are kept as
invalid with their own reasons, never billed, and only the excess of a shared reader key."""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from adserver.core.db import make_engine
from adserver.reporting.stats import StatsQuery, as_csv, run_stats
from adserver.reporting.tally import run_tally
from adserver.tracking import abuse, traffic
from adserver.tracking.abuse import ReaderKeys, decided_at, too_fast
from adserver.tracking.events import EventRecord, store
from adserver.tracking.tokens import TokenClaims, new_decision_id, raw_decision_id
from tests.conftest import BROWSER_UA, LiveServer, bound_socket, make_settings, start_server
from tests.records import AT, HOUR
from tests.seed import three_slot_site

IDS = (1, 2, 3, 4)


def claims_at(when: float) -> TokenClaims:
    decision = new_decision_id(raw_decision_id(when, 7))
    return TokenClaims(decision, 1, 2, 3, 4, int(when))


def test_views_and_clicks_sooner_than_a_person_are_too_fast() -> None:
    made = 1_790_000_000.25
    claims = claims_at(made)
    assert decided_at(claims) == made
    assert too_fast("view", claims, made + 0.3)
    assert not too_fast("view", claims, made + abuse.MIN_VIEW_SECONDS + 0.01)
    assert too_fast("click", claims, made + 0.1)
    assert not too_fast("click", claims, made + 2)
    assert not too_fast("imp", claims, made)
    # An id that does not begin with the issue time: whole seconds of the token are used.
    odd = TokenClaims("AAAAAAAAAAAAAAAA", 1, 2, 3, 4, int(made))
    assert decided_at(odd) == int(made)


def test_reader_keys_hide_the_address_and_change_daily() -> None:
    keys = ReaderKeys("s" * 32)
    day = 1_790_000_000.0
    key = keys.key("203.0.113.7", "Mozilla/5.0", day)
    assert len(key) == 16 and "203" not in key
    assert keys.key("203.0.113.7", "Mozilla/5.0", day + 60) == key
    assert keys.key("203.0.113.8", "Mozilla/5.0", day) != key
    assert keys.key("203.0.113.7", "Mozilla/6.0", day) != key
    assert keys.key("203.0.113.7", "Mozilla/5.0", day + 86400) != key
    assert ReaderKeys("t" * 32).key("203.0.113.7", "Mozilla/5.0", day) != key
    for loopback in ("127.0.0.1", "::1", None, ""):
        assert keys.key(loopback, "Mozilla/5.0", day) == ""


def record(decision: str, kind: str, at: int, reader: str) -> EventRecord:
    site, slot, campaign, creative = IDS
    return EventRecord.new(
        decision_id=decision,
        kind=kind,
        at=at,
        hour=HOUR,
        site_id=site,
        slot_id=slot,
        campaign_id=campaign,
        creative_id=creative,
        reason=None,
        reader=reader,
    )


def outcomes(engine: Engine, reader: str) -> Counter[tuple[str, str]]:
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT kind, valid, reason FROM event WHERE reader = :r"), {"r": reader}
        )
        return Counter((r.kind, "valid" if r.valid else r.reason) for r in rows)


def test_the_tally_marks_floods_and_bursts_of_one_reader_only_beyond_the_limits(
    engine: Engine,
) -> None:
    flood = [
        e
        for n in range(15)
        for e in (
            record(f"f{n}", "imp", AT + n * 10, "flooder"),
            record(f"f{n}", "click", AT + n * 10 + 5, "flooder"),
        )
    ]
    neighbour = [
        e
        for n in range(3)
        for e in (
            record(f"n{n}", "imp", AT + n, "neighbour"),
            record(f"n{n}", "click", AT + n + 3, "neighbour"),
        )
    ]
    burst = [record(f"b{n}", "imp", AT + n // 10, "burster") for n in range(400)]
    proxy = [record(f"p{n}", "imp", AT + n // 10, "") for n in range(400)]
    # Stored in several groups and tallied in small batches: the rules look across both.
    everything = flood + neighbour + burst + proxy
    for start in range(0, len(everything), 97):
        with engine.begin() as connection:
            store(connection, everything[start : start + 97])
    assert run_tally(engine, batch_size=113) == len(everything)
    assert outcomes(engine, "flooder") == {
        ("imp", "valid"): 15,
        ("click", "valid"): abuse.CLICK_FLOOD_LIMIT,
        ("click", "click-flood"): 15 - abuse.CLICK_FLOOD_LIMIT,
    }
    assert outcomes(engine, "neighbour") == {("imp", "valid"): 3, ("click", "valid"): 3}
    assert outcomes(engine, "burster") == {
        ("imp", "valid"): abuse.BURST_LIMIT,
        ("imp", "burst"): 400 - abuse.BURST_LIMIT,
    }
    assert outcomes(engine, "") == {("imp", "valid"): 400}
    with engine.connect() as connection:
        sums = connection.execute(
            text("SELECT sum(impressions), sum(clicks), sum(invalid_impressions), "
                 "sum(invalid_clicks) FROM hourly_stat")
        ).one()  # fmt: skip
        reasons = dict(
            connection.execute(
                text("SELECT reason, sum(count) FROM invalid_stat GROUP BY reason")
            ).all()
        )
    assert tuple(sums) == (15 + 3 + 300 + 400, 10 + 3, 100, 5)
    assert reasons == {"burst": 100, "click-flood": 5}


def test_a_flood_split_over_tallies_is_judged_the_same(engine: Engine) -> None:
    """Clicks tallied a minute apart still see the earlier ones in their window."""
    events = [
        e
        for n in range(14)
        for e in (
            record(f"f{n}", "imp", AT + n * 30, "flooder"),
            record(f"f{n}", "click", AT + n * 30 + 2, "flooder"),
        )
    ]
    for start in (0, 8, 20):
        end = {0: 8, 8: 20, 20: len(events)}[start]
        with engine.begin() as connection:
            store(connection, events[start:end])
        run_tally(engine)
    assert outcomes(engine, "flooder")[("click", "click-flood")] == 4


@pytest.fixture
def server(sqlite_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    sock = bound_socket()
    live = start_server(make_settings(sqlite_url, sock.getsockname()[1], tmp_path / "s"), sock)
    engine = make_engine(sqlite_url)
    three_slot_site(engine)
    engine.dispose()
    live.runtime.inventory.rebuild()
    yield live
    live.stop()
    sock.close()


def test_a_bot_that_fires_everything_at_once_is_not_billed(server: LiveServer) -> None:
    """One address and browser firing impression, view and click the moment it is served (the
    issue's CTR of 99%, all billed): the views and clicks are too fast; the same from a local
    tool (no reader address) is left alone."""
    # The first look-up loads the crawler list (a second or so): done before the clock matters.
    traffic.is_bot(BROWSER_UA)
    with server.client() as bot, server.client() as local:
        bot.headers["X-Forwarded-For"] = "203.0.113.7"  # through the trusted local proxy
        for client in (bot, local):
            for _ in range(5):
                answer = client.get("/v1/decide", params={"site": "news", "slots": "top"})
                decision = answer.json()["decisions"]["top"]
                assert client.post(decision["impression_url"]).status_code == 204
                assert client.post(decision["view_url"]).status_code == 204
                assert client.get(decision["click_url"]).status_code == 302
    engine = make_engine(server.settings.database_url)
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT kind, valid, reason, reader FROM event ORDER BY at")
        ).all()
    bot_rows = Counter((r.kind, r.reason) for r in rows if r.reader)
    local_rows = Counter((r.kind, r.reason) for r in rows if not r.reader)
    assert bot_rows == {("imp", None): 5, ("view", "too-fast"): 5, ("click", "too-fast"): 5}
    assert local_rows == {("imp", None): 5, ("view", None): 5, ("click", None): 5}
    assert "203.0.113.7" not in {r.reader for r in rows}
    run_tally(engine)
    with engine.connect() as connection:
        result = run_stats(
            connection, StatsQuery.from_params({"from": "2000-01-01", "to": "2100-01-01"})
        )
    engine.dispose()
    table = list(csv.DictReader(io.StringIO(as_csv(result, delivery_counts=True))))
    assert {"invalid_too_fast", "invalid_click_flood", "invalid_burst"} <= set(table[0])
    assert sum(int(row["invalid_too_fast"]) for row in table) == 10
    assert sum(int(row["clicks"]) for row in table) == 5

"""GET /v1/stats over a real server, on SQLite and PostgreSQL, with tokens made by the CLI.

The figures are written straight into the hourly statistics (what the tally produces), at hours
chosen to tell local days from UTC days: Asia/Kolkata (+05:30) and Europe/London across the
start of summer time on 2026-03-29 (a 23-hour day).
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import Engine, update
from sqlmodel import Session

from adserver.core.clock import local_hour_start
from adserver.core.models import Site, table
from adserver.reporting.hourly import add_invalid
from adserver.reporting.tally import run_tally
from tests.conftest import LiveServer
from tests.seed import add_campaign, add_creative, add_hourly, add_site, add_slot, publish
from tests.test_principal import cli_token

KOLKATA = ZoneInfo("Asia/Kolkata")
LONDON = ZoneInfo("Europe/London")


def hour(zone: ZoneInfo, *parts: int) -> int:
    """The bucket of a site-local wall-clock hour (as the tally files events)."""
    return local_hour_start(datetime(*parts, tzinfo=zone).timestamp(), zone)  # type: ignore[misc]


@dataclass
class World:
    """Two sites, two advertisers, their statistics and a token for each kind of caller."""

    ids: dict[str, int]
    admin: str
    acme: str
    bolt: str
    server: LiveServer

    def get(self, token: str | None, **params: str) -> httpx.Response:
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        with self.server.client() as client:
            return client.get("/v1/stats", params=params, headers=headers)

    def stats(self, token: str, **params: str) -> dict[str, Any]:
        answer = self.get(token, **params)
        assert answer.status_code == 200, answer.text
        return answer.json()  # type: ignore[no-any-return]


def stat(
    hour: int, site: int, slot: int, campaign: int = 0, creative: int = 0, **counts: int
) -> dict[str, int]:
    return {
        "hour": hour,
        "site_id": site,
        "slot_id": slot,
        "campaign_id": campaign,
        "creative_id": creative,
        **counts,
    }


def invalid(
    hour: int, site: int, slot: int, campaign: int, creative: int, kind: str, **reasons: int
) -> list[dict[str, Any]]:
    return [
        {
            "hour": hour,
            "site_id": site,
            "slot_id": slot,
            "campaign_id": campaign,
            "creative_id": creative,
            "kind": kind,
            "reason": reason.replace("_", "-"),
            "count": count,
        }
        for reason, count in reasons.items()
    ]


def seed_world(engine: Engine) -> dict[str, int]:
    with Session(engine) as session:
        delhi = add_site(session, key="delhi", timezone="Asia/Kolkata")
        london = add_site(session, key="london", timezone="Europe/London")
        top = add_slot(session, delhi, "top", ["728x90"])
        side = add_slot(session, delhi, "side", ["300x250"])
        ltop = add_slot(session, london, "top", ["728x90"])
        a1 = add_campaign(
            session, [top], advertiser="Acme", name="Acme Delhi", price_micros=2_000_000
        )
        a2 = add_campaign(session, [ltop], advertiser="Acme", name="Acme London")
        b1 = add_campaign(session, [side], advertiser="Bolt", name="=Bolt side", pricing="cpc")
        c1 = add_creative(session, a1, name="acme-leader")
        c2 = add_creative(session, a2, name="acme-uk")
        c3 = add_creative(session, b1, name="bolt-box", width=300, height=250)
        publish(session)
        ids = {
            "delhi": delhi.id,
            "london": london.id,
            "top": top.id,
            "side": side.id,
            "ltop": ltop.id,
            "a1": a1.id,
            "a2": a2.id,
            "b1": b1.id,
            "c1": c1.id,
            "c2": c2.id,
            "c3": c3.id,
            "acme": a1.advertiser_id,
            "bolt": b1.advertiser_id,
        }
    i = {k: int(v) for k, v in ids.items() if v is not None}
    d, lo = i["delhi"], i["london"]
    # Delhi: local 2026-03-10 00:00 is 2026-03-09 18:30 UTC (in the day); local 2026-03-11 03:00
    # is 2026-03-10 21:30 UTC (a UTC-day report would wrongly include it).
    d0, d1, d2 = (
        hour(KOLKATA, 2026, 3, 10, 0),
        hour(KOLKATA, 2026, 3, 10, 23),
        hour(KOLKATA, 2026, 3, 11, 3),
    )
    # London: 00:00 GMT and 02:00 BST on the 29th (01:00 local never happens); 00:00 BST on
    # the 30th is 23:00 UTC on the 29th; 23:00 GMT on the 28th.
    l0, l1 = hour(LONDON, 2026, 3, 29, 0), hour(LONDON, 2026, 3, 29, 2)
    l2, l3 = hour(LONDON, 2026, 3, 30, 0), hour(LONDON, 2026, 3, 28, 23)
    forged = hour(ZoneInfo("UTC"), 2026, 3, 10, 12)
    with engine.begin() as connection:
        add_hourly(
            connection,
            [
                stat(d0, d, i["top"], requests=100),
                stat(d0, d, i["side"], requests=50),
                stat(
                    d0,
                    d,
                    i["top"],
                    i["a1"],
                    i["c1"],
                    served=90,
                    impressions=80,
                    viewable=60,
                    clicks=4,
                    invalid_impressions=3,
                    spend_nanos=80 * 2_000_000,
                ),
                stat(
                    d0,
                    d,
                    i["side"],
                    i["b1"],
                    i["c3"],
                    served=40,
                    impressions=40,
                    viewable=10,
                    invalid_clicks=1,
                ),
                stat(d1, d, i["top"], requests=10),
                stat(
                    d1,
                    d,
                    i["top"],
                    i["a1"],
                    i["c1"],
                    served=10,
                    impressions=10,
                    viewable=5,
                    clicks=1,
                    spend_nanos=10 * 2_000_000,
                ),
                stat(d2, d, i["top"], requests=7),
                stat(
                    d2,
                    d,
                    i["top"],
                    i["a1"],
                    i["c1"],
                    served=7,
                    impressions=7,
                    spend_nanos=7 * 2_000_000,
                ),
                stat(l0, lo, i["ltop"], requests=12),
                stat(l0, lo, i["ltop"], i["a2"], i["c2"], served=10, impressions=10),
                stat(l1, lo, i["ltop"], i["a2"], i["c2"], served=20, impressions=20),
                stat(l2, lo, i["ltop"], i["a2"], i["c2"], served=30, impressions=30),
                stat(l3, lo, i["ltop"], i["a2"], i["c2"], served=40, impressions=40),
                stat(forged, 0, 0, invalid_impressions=2),
            ],
        )
        add_invalid(
            connection,
            [
                *invalid(d0, d, i["top"], i["a1"], i["c1"], "imp", bot=2, duplicate=1),
                *invalid(d0, d, i["side"], i["b1"], i["c3"], "click", no_impression=1),
                *invalid(forged, 0, 0, 0, 0, "imp", forged=2),
            ],
        )
    return i


@pytest.fixture
def world(
    live_server: LiveServer,
    engine: Engine,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Iterator[World]:
    ids = seed_world(engine)
    yield World(
        ids=ids,
        admin=cli_token(monkeypatch, capsys, database_url, "ops"),
        acme=cli_token(monkeypatch, capsys, database_url, "acme", advertiser="Acme"),
        bolt=cli_token(monkeypatch, capsys, database_url, "bolt", advertiser="Bolt"),
        server=live_server,
    )


def test_a_day_is_the_sites_local_day(world: World) -> None:
    answer = world.stats(world.admin, **{"from": "2026-03-10", "to": "2026-03-10", "site": "delhi"})
    assert answer["from"] == answer["to"] == "2026-03-10"
    assert answer["by"] == ["day"]
    assert answer["currency"] == "USD"
    assert answer["rows"] == [
        {
            "day": "2026-03-10",
            "requests": 160,
            "served": 140,
            "impressions": 130,
            "viewable": 75,
            "clicks": 5,
            "invalid_impressions": 3,
            "invalid_views": 0,
            "invalid_clicks": 1,
            "ctr": round(5 / 130, 6),
            "viewability": round(75 / 130, 6),
            "spend": "0.18",
            "ecpm": "1.384615",
            "invalid": {"bot": 2, "duplicate": 1, "no-impression": 1},
        }
    ]
    assert answer["totals"] == {k: v for k, v in answer["rows"][0].items() if k != "day"}


def test_hours_are_labelled_in_local_time(world: World) -> None:
    answer = world.stats(
        world.admin, **{"from": "2026-03-10", "to": "2026-03-11", "site": "delhi", "by": "hour"}
    )
    assert [(r["hour"], r["impressions"]) for r in answer["rows"]] == [
        ("2026-03-10T00:00:00+05:30", 120),
        ("2026-03-10T23:00:00+05:30", 10),
        ("2026-03-11T03:00:00+05:30", 7),
    ]


def test_the_day_summer_time_starts_has_23_hours(world: World) -> None:
    window = {"from": "2026-03-28", "to": "2026-03-30", "site": "london"}
    by_day = world.stats(world.admin, **window)
    assert [(r["day"], r["impressions"]) for r in by_day["rows"]] == [
        ("2026-03-28", 40),
        ("2026-03-29", 30),
        ("2026-03-30", 30),
    ]
    by_hour = world.stats(
        world.admin, **{**window, "from": "2026-03-29", "to": "2026-03-29", "by": "hour"}
    )
    assert [(r["hour"], r["impressions"], r["requests"]) for r in by_hour["rows"]] == [
        ("2026-03-29T00:00:00+00:00", 10, 12),
        ("2026-03-29T02:00:00+01:00", 20, 0),
    ]


def test_rows_group_by_any_dimensions_with_names(world: World) -> None:
    i = world.ids
    answer = world.stats(
        world.admin, **{"from": "2026-03-01", "to": "2026-03-31", "by": "site,campaign"}
    )
    rows = [
        (r["site"], r["campaign"], r["campaign_name"], r["requests"], r["impressions"])
        for r in answer["rows"]
    ]
    assert rows == [
        ("delhi", i["a1"], "Acme Delhi", 0, 97),
        ("delhi", i["b1"], "=Bolt side", 0, 40),
        ("delhi", None, None, 167, 0),  # requests belong to no campaign
        ("london", i["a2"], "Acme London", 0, 100),
        ("london", None, None, 12, 0),
        (None, None, None, 0, 0),  # forged tokens belong to no site
    ]
    assert answer["rows"][-1]["invalid"] == {"forged": 2}
    assert answer["totals"]["invalid"] == {
        "bot": 2,
        "duplicate": 1,
        "forged": 2,
        "no-impression": 1,
    }
    assert answer["totals"]["invalid_impressions"] == 5
    by_slot = world.stats(
        world.admin,
        **{"from": "2026-03-10", "to": "2026-03-10", "by": "slot,creative", "site": "delhi"},
    )
    assert [(r["slot_name"], r["creative_name"], r["served"]) for r in by_slot["rows"]] == [
        ("top", "acme-leader", 100),
        ("top", None, 0),
        ("side", "bolt-box", 40),
        ("side", None, 0),
    ]
    by_advertiser = world.stats(
        world.admin,
        **{"from": "2026-03-01", "to": "2026-03-31", "by": "advertiser", "site": "delhi"},
    )
    assert [
        (r["advertiser_name"], r["impressions"], r["spend"]) for r in by_advertiser["rows"]
    ] == [
        ("Acme", 97, "0.194"),
        ("Bolt", 40, "0.00"),
        (None, 0, "0.00"),
    ]


def test_filters_narrow_the_rows(world: World) -> None:
    i = world.ids
    window = {"from": "2026-03-01", "to": "2026-03-31"}
    by_campaign = world.stats(world.admin, **window, campaign=str(i["b1"]), by="campaign")
    assert [(r["campaign"], r["impressions"]) for r in by_campaign["rows"]] == [(i["b1"], 40)]
    by_advertiser = world.stats(world.admin, **window, advertiser=str(i["acme"]), by="site")
    assert [(r["site"], r["impressions"]) for r in by_advertiser["rows"]] == [
        ("delhi", 97),
        ("london", 100),
    ]
    nothing = world.stats(world.admin, **{"from": "2025-01-01", "to": "2025-01-31"})
    assert nothing["rows"] == [] and nothing["totals"]["impressions"] == 0
    assert nothing["totals"]["ctr"] is None and nothing["totals"]["ecpm"] is None


def test_an_advertiser_token_sees_only_its_own_rows(world: World) -> None:
    i = world.ids
    window = {"from": "2026-03-01", "to": "2026-03-31"}
    answer = world.stats(world.acme, **window, by="campaign")
    assert [(r["campaign"], r["impressions"]) for r in answer["rows"]] == [
        (i["a1"], 97),
        (i["a2"], 100),
    ]
    for figures in [*answer["rows"], answer["totals"]]:
        assert "requests" not in figures and "served" not in figures
    assert answer["totals"]["invalid"] == {"bot": 2, "duplicate": 1}
    assert (
        world.stats(world.acme, **window, advertiser=str(i["acme"]))["totals"]["impressions"] == 197
    )
    refused = world.get(world.acme, **window, advertiser=str(i["bolt"]))
    assert refused.status_code == 403
    assert refused.json() == {"error": "this token may read only its own advertiser's statistics"}
    # Another advertiser's campaign is simply not among this token's rows.
    assert world.stats(world.acme, **window, campaign=str(i["b1"]))["rows"] == []
    bolt = world.stats(world.bolt, **window, by="day")
    assert [(r["day"], r["impressions"]) for r in bolt["rows"]] == [("2026-03-10", 40)]


def test_a_missing_or_unknown_token_is_401(world: World) -> None:
    window = {"from": "2026-03-01", "to": "2026-03-31"}
    for token in (None, "ads_nobody", world.admin + "x"):
        answer = world.get(token, **window)
        assert answer.status_code == 401
        assert answer.headers["www-authenticate"].startswith("Bearer")
        assert "error" in answer.json()
    with world.server.client() as client:
        basic = client.get("/v1/stats", params=window, auth=("admin", "secret"))
    assert basic.status_code == 401


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"to": "2026-03-01"}, "'from' is required"),
        ({"from": "2026-03-01"}, "'to' is required"),
        ({"from": "2026-02-30", "to": "2026-03-01"}, "'from' must be a date as YYYY-MM-DD"),
        ({"from": "20260301", "to": "2026-03-01"}, "'from' must be a date"),
        ({"from": "2026-03-01", "to": "tomorrow"}, "'to' must be a date"),
        (
            {"from": "2026-03-02", "to": "2026-03-01"},
            "'from' (2026-03-02) is after 'to' (2026-03-01)",
        ),
        (
            {"from": "2026-03-01", "to": "2026-03-01", "by": "day,week"},
            "'by' has unknown dimension 'week'",
        ),
        (
            {"from": "2026-03-01", "to": "2026-03-01", "format": "xml"},
            "'format' must be json or csv",
        ),
        (
            {"from": "2026-03-01", "to": "2026-03-01", "advertiser": "Acme"},
            "'advertiser' must be a numeric advertiser id",
        ),
        (
            {"from": "2026-03-01", "to": "2026-03-01", "campaign": "-1"},
            "'campaign' must be a numeric campaign id",
        ),
        (
            {"from": "2026-03-01", "to": "2026-03-01", "site": "nowhere"},
            "'site': there is no site 'nowhere'",
        ),
        ({"from": "0001-01-01", "to": "2026-03-01"}, "'from' is out of range"),
    ],
)
def test_malformed_queries_are_400_naming_the_parameter(
    world: World, params: dict[str, str], message: str
) -> None:
    answer = world.get(world.admin, **params)
    assert answer.status_code == 400
    assert message in answer.json()["error"]


def test_sites_billed_in_different_currencies_are_not_summed(world: World, engine: Engine) -> None:
    sites = table(Site)
    with engine.begin() as connection:
        connection.execute(update(sites).where(sites.c.key == "london").values(currency="GBP"))
    window = {"from": "2026-03-01", "to": "2026-03-31"}
    mixed = world.get(world.admin, **window)
    assert mixed.status_code == 400
    assert "GBP, USD" in mixed.json()["error"]
    assert world.stats(world.admin, **window, site="london")["currency"] == "GBP"


def test_csv_has_a_header_and_one_line_per_row(world: World) -> None:
    window = {"from": "2026-03-10", "to": "2026-03-10", "site": "delhi", "format": "csv"}
    answer = world.get(world.admin, **window, by="day,campaign")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
    assert 'filename="stats-2026-03-10-2026-03-10.csv"' in answer.headers["content-disposition"]
    lines = list(csv.DictReader(io.StringIO(answer.text)))
    assert [
        (r["day"], r["campaign_name"], r["impressions"], r["spend"], r["ecpm"]) for r in lines
    ] == [
        ("2026-03-10", "Acme Delhi", "90", "0.18", "2.00"),
        ("2026-03-10", "'=Bolt side", "40", "0.00", "0.00"),  # a formula is kept as text
        ("2026-03-10", "", "0", "0.00", ""),
    ]
    assert lines[0]["invalid_bot"] == "2" and lines[1]["invalid_no_impression"] == "1"
    assert lines[0]["currency"] == "USD" and lines[2]["requests"] == "160"
    advertiser = world.get(world.acme, **window)
    header = next(csv.reader(io.StringIO(advertiser.text)))
    assert header[:4] == ["day", "impressions", "viewable", "clicks"]
    assert "requests" not in header and "served" not in header


def test_beacons_tallied_show_up_exactly(
    live_server: LiveServer,
    engine: Engine,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """End to end: decisions, beacons (some invalid), the tally, then /v1/stats."""
    with Session(engine) as session:
        site = add_site(session, key="news", timezone="Asia/Kolkata")
        top = add_slot(session, site, "top", ["728x90"])
        campaign = add_campaign(session, [top], advertiser="Acme", price_micros=3_000_000)
        add_creative(session, campaign)
        publish(session)
    live_server.runtime.inventory.rebuild()
    admin = cli_token(monkeypatch, capsys, database_url, "ops")
    with live_server.client() as client:
        decisions = []
        for _ in range(7):
            answer = client.get("/v1/decide", params={"site": "news", "slots": "top"})
            decisions.append(answer.json()["decisions"]["top"])
        for decision in decisions[:5]:
            assert client.post(decision["impression_url"]).status_code == 204
        for decision in decisions[:3]:
            assert client.post(decision["view_url"]).status_code == 204
        for decision in decisions[:2]:
            assert client.get(decision["click_url"]).status_code == 302
        client.post(decisions[0]["impression_url"])  # duplicate
        client.post(decisions[5]["impression_url"], headers={"User-Agent": "curl/8.5.0"})
        client.get(decisions[6]["click_url"])  # a click with no impression
    assert run_tally(engine) == 13
    today = datetime.now(KOLKATA).date()
    window = {"from": str(today - timedelta(days=1)), "to": str(today + timedelta(days=1))}
    headers = {"Authorization": f"Bearer {admin}"}
    with live_server.client() as client:
        for _ in range(100):  # requests and served are flushed every 0.2 s
            totals = client.get("/v1/stats", params=window, headers=headers).json()["totals"]
            if totals["requests"] == 7:
                break
            time.sleep(0.05)
    assert totals == {
        "requests": 7,
        "served": 7,
        "impressions": 5,
        "viewable": 3,
        "clicks": 2,
        "invalid_impressions": 2,
        "invalid_views": 0,
        "invalid_clicks": 1,
        "ctr": 0.4,
        "viewability": 0.6,
        "spend": "0.015",
        "ecpm": "3.00",
        "invalid": {"bot": 1, "duplicate": 1, "no-impression": 1},
    }

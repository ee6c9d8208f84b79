"""Forecasts against a recorded history where the truth is known: five weeks of hourly traffic
with a daily shape, a weekend dip and noise; four weeks forecast the fifth (held out)."""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from sqlalchemy import Engine, func, insert, select
from sqlmodel import Session

from adserver.core.db import make_engine, migrate
from adserver.core.models import AudienceDay, AudienceSample, Slot, table
from adserver.delivery.audience import SAMPLE_EVERY, SAMPLE_WRITE_EVERY, Audience
from adserver.delivery.forecast import ForecastError, forecast
from adserver.services.tokens import create_api_token
from tests.conftest import LiveServer
from tests.seed import add_campaign, add_hourly, add_site, add_slot, publish

ZONE = ZoneInfo("Asia/Kolkata")
#: A Monday: the held-out week starts here, the history is the four weeks before.
HELD_OUT = date(2026, 11, 2)
NOW = datetime.combine(HELD_OUT, time(0, 30), ZONE).timestamp()
WEEK_END = HELD_OUT + timedelta(days=6)
#: Requests per hour by local hour: night trough, morning peak, evening rise.
SHAPE = [
    8,
    5,
    4,
    4,
    6,
    12,
    30,
    70,
    110,
    100,
    90,
    85,
    80,
    80,
    75,
    70,
    75,
    90,
    100,
    95,
    80,
    60,
    35,
    15,
]


def requests_at(day: date, hour: int, rng: random.Random) -> int:
    weekend = 0.7 if day.weekday() >= 5 else 1.0
    return max(0, round(SHAPE[hour] * 3 * weekend * rng.gauss(1.0, 0.08)))


@pytest.fixture
def engine(tmp_path: Any) -> Iterator[Engine]:
    url = f"sqlite:///{tmp_path / 'forecast.db'}"
    migrate(url)
    engine = make_engine(url)
    yield engine
    engine.dispose()


def record_history(engine: Engine, *, site_key: str = "news") -> dict[str, Any]:
    """Five weeks of one slot's traffic (the last one held out) and its audience mix: 60%
    mobile, 40% desktop; half the pages under /sport/."""
    rng = random.Random(5)
    with Session(engine) as session:
        site = add_site(session, key=site_key, timezone="Asia/Kolkata")
        top = add_slot(session, site, "top", ["728x90"])
        ids = {"site": int(site.id or 0), "top": int(top.id or 0)}
        publish(session)
    rows, truth = [], {"all": 0, "work_hours": 0}
    for n in range(35):
        day = HELD_OUT - timedelta(weeks=4) + timedelta(days=n)
        for hour in range(24):
            count = requests_at(day, hour, rng)
            at = int(datetime.combine(day, time(hour), ZONE).timestamp())
            served = round(count * 0.95)
            impressions = round(served * 0.9)
            if day >= HELD_OUT:
                truth["all"] += impressions
                truth["work_hours"] += impressions if 9 <= hour < 18 else 0
            base = {"hour": at, "site_id": ids["site"], "slot_id": ids["top"]}
            rows.append({**base, "campaign_id": 0, "creative_id": 0, "requests": count})
            rows.append(
                {
                    **base,
                    "campaign_id": 1,
                    "creative_id": 1,
                    "served": served,
                    "impressions": impressions,
                }
            )
    with engine.begin() as connection:
        add_hourly(connection, [r for r in rows if r["hour"] < NOW])
        days = [(HELD_OUT - timedelta(days=d)).isoformat() for d in range(1, 29)]
        connection.execute(
            insert(table(AudienceDay)),
            [
                {
                    "day": d,
                    "site_id": ids["site"],
                    "slot_id": ids["top"],
                    "device": device,
                    "country": "IN",
                    "requests": n,
                }
                for d in days
                for device, n in (("mobile", 600), ("desktop", 400))
            ],
        )
        connection.execute(
            insert(table(AudienceSample)),
            [
                {
                    "site_id": ids["site"],
                    "slot_id": ids["top"],
                    "samples": [["/sport/a", ["cricket"]], ["/news/b", []]] * 50,
                }
            ],
        )
    return {**ids, **truth}


def run(engine: Engine, targeting: dict[str, Any] | None = None, **kwargs: Any) -> Any:
    with engine.connect() as connection:
        found = forecast(
            connection,
            site_key="news",
            slot_names=["top"],
            start=kwargs.pop("start", HELD_OUT),
            end=kwargs.pop("end", WEEK_END),
            targeting=targeting or {},
            now=NOW,
            **kwargs,
        )
    return found[0]


def test_a_held_out_week_is_forecast_within_ten_percent(engine: Engine) -> None:
    truth = record_history(engine)
    expected = run(engine).expected
    assert math.isclose(expected, truth["all"], rel_tol=0.10), (expected, truth["all"])
    working = run(engine, {"hours": list(range(9, 18))}).expected
    assert math.isclose(working, truth["work_hours"], rel_tol=0.10)
    # One weekday of seven, and weekdays are busier than weekends.
    monday = run(engine, start=HELD_OUT, end=HELD_OUT).expected
    assert expected / 7 < monday < expected / 5


def test_targeting_scales_by_the_share_of_traffic_it_matches(engine: Engine) -> None:
    record_history(engine)
    everyone = run(engine).expected
    assert math.isclose(run(engine, {"devices": ["mobile"]}).expected, 0.6 * everyone, rel_tol=0.01)
    assert run(engine, {"countries": ["GB"]}).expected == 0
    assert math.isclose(run(engine, {"paths": ["/sport/*"]}).expected, 0.5 * everyone, rel_tol=0.01)
    weekend = run(engine, {"days": [5, 6]}).expected
    assert 0.2 * everyone < weekend < 0.3 * everyone  # 2 of 7 days at 70% of a weekday


def test_campaigns_of_the_same_or_a_higher_tier_take_their_share(engine: Engine) -> None:
    record_history(engine)
    with Session(engine) as session:
        top = session.get(Slot, 1)
        assert top is not None
        add_campaign(
            session,
            [top],
            name="Booked",
            tier="standard",
            goal_kind="impressions",
            goal_total=7_000,
            starts_at=datetime.combine(HELD_OUT, time()),
            ends_at=datetime.combine(WEEK_END + timedelta(days=1), time()),
        )
        add_campaign(
            session,
            [top],
            advertiser="Phones",
            name="Mobile sponsor",
            tier="sponsorship",
            targeting={"devices": ["mobile"], "hours": [20]},
            starts_at=None,
        )
        add_campaign(session, [top], advertiser="Fill", name="House", tier="house")
        publish(session)
    result = run(engine)
    takes = {c["name"]: c["takes"] for c in result.competing}
    assert takes["Booked"] == 7_000
    sponsor_alone = run(engine, {"devices": ["mobile"], "hours": [20]}).expected
    assert math.isclose(takes["Mobile sponsor"], sponsor_alone, rel_tol=0.01)
    assert "House" not in takes
    assert result.taken == sum(takes.values())
    assert result.available == result.expected - result.taken
    # Desktop readers are not what the mobile sponsor takes; a sponsorship competes only with
    # sponsorships.
    desktop = run(engine, {"devices": ["desktop"]})
    assert {c["name"] for c in desktop.competing} == {"Booked"}
    assert {c["name"] for c in run(engine, tier="sponsorship").competing} == {"Mobile sponsor"}


def test_bad_questions_are_refused(engine: Engine) -> None:
    record_history(engine)
    with pytest.raises(ForecastError, match="before"):
        run(engine, start=WEEK_END, end=HELD_OUT)
    with pytest.raises(ForecastError, match="tier"):
        run(engine, tier="gold")
    with engine.connect() as connection, pytest.raises(ForecastError, match="unknown slot"):
        forecast(
            connection,
            site_key="news",
            slot_names=["nope"],
            start=HELD_OUT,
            end=WEEK_END,
            targeting={},
            now=NOW,
        )


def test_the_audience_aggregates_are_kept_by_day_and_never_per_reader(engine: Engine) -> None:
    ids = record_history(engine)
    audience = Audience(engine, lambda site_id: ZONE, random.Random(1))
    hour = int(datetime.combine(HELD_OUT, time(23), ZONE).timestamp())
    for n in range(300 * SAMPLE_EVERY):
        audience.record(hour, ids["site"], (ids["top"],), "mobile", None, f"/p/{n}", frozenset())
    audience.flush()
    with engine.connect() as connection:
        rows = connection.execute(
            table(AudienceDay).select().where(table(AudienceDay).c.day == HELD_OUT.isoformat())
        ).all()
        sample = connection.execute(table(AudienceSample).select()).first()
    assert [(r.device, r.country, r.requests) for r in rows] == [("mobile", "", 300 * SAMPLE_EVERY)]
    assert sample is not None and len(sample.samples) == 200


def test_no_request_is_lost_while_the_handler_records_and_a_flush_runs(engine: Engine) -> None:
    ids = record_history(engine)
    audience = Audience(engine, lambda site_id: ZONE, random.Random(1))
    hour = int(datetime.combine(HELD_OUT, time(23), ZONE).timestamp())
    per_thread = 3000

    def record() -> None:
        for n in range(per_thread):
            audience.record(
                hour, ids["site"], (ids["top"],), "mobile", None, f"/r/{n}", frozenset()
            )

    recording = [threading.Thread(target=record) for _ in range(3)]
    for thread in recording:
        thread.start()
    while any(thread.is_alive() for thread in recording):
        audience.flush()
    audience.flush()
    with engine.connect() as connection:
        days = table(AudienceDay)
        requests = connection.execute(
            select(func.sum(days.c.requests)).where(days.c.day == HELD_OUT.isoformat())
        ).scalar()
    assert requests == 3 * per_thread


def test_the_periodic_flush_adds_counts_every_time_and_writes_samples_now_and_then(
    engine: Engine,
) -> None:
    ids = record_history(engine)
    audience = Audience(engine, lambda site_id: ZONE, random.Random(1))
    hour = int(datetime.combine(HELD_OUT, time(23), ZONE).timestamp())

    def written() -> tuple[int, list[str]]:
        with engine.connect() as connection:
            days, samples = table(AudienceDay), table(AudienceSample)
            requests = connection.execute(
                select(func.sum(days.c.requests)).where(days.c.day == HELD_OUT.isoformat())
            ).scalar()
            pages = connection.execute(
                select(samples.c.samples).where(samples.c.slot_id == ids["top"])
            ).scalar()
            return int(requests or 0), sorted(page[0] for page in pages or [])

    _, history = written()
    for tick in range(1, SAMPLE_WRITE_EVERY + 1):
        for n in range(SAMPLE_EVERY):
            path = f"/tick/{tick}/{n}"
            audience.record(hour, ids["site"], (ids["top"],), "mobile", None, path, frozenset())
            if n % 10 == 0:  # folds in between keep counting the requests for the sample
                audience.fold()
        audience.tick()
        requests, pages = written()
        assert requests == tick * SAMPLE_EVERY
        if tick < SAMPLE_WRITE_EVERY:
            assert pages == history
    assert len(pages) == SAMPLE_WRITE_EVERY and all(p.startswith("/tick/") for p in pages)


# --- GET /v1/forecast ---------------------------------------------------------------------------


@pytest.fixture
def tokens(live_server: LiveServer) -> dict[str, str]:
    engine = live_server.runtime.engine
    record_history(engine)
    with engine.begin() as connection:
        admin = create_api_token(connection, name="ops", advertiser_id=None)
    with Session(engine) as session:
        advertiser_campaign = add_campaign(session, [], advertiser="Acme")
        acme = advertiser_campaign.advertiser_id
        session.commit()
    with engine.begin() as connection:
        advertiser = create_api_token(connection, name="acme", advertiser_id=acme)
    return {"admin": admin, "advertiser": advertiser}


def get(server: LiveServer, token: str, **params: str) -> Any:
    with server.client() as client:
        return client.get(
            "/v1/forecast", params=params, headers={"Authorization": f"Bearer {token}"}
        )


def test_the_forecast_api(live_server: LiveServer, tokens: dict[str, str]) -> None:
    query = {"site": "news", "slots": "top", "from": "2030-01-07", "to": "2030-01-13"}
    answer = get(
        live_server,
        tokens["admin"],
        **query,
        targeting=orjson.dumps({"devices": ["mobile"]}).decode(),
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["slots"][0]["slot"] == "top"
    assert set(body["slots"][0]) == {"slot", "expected", "taken", "available", "competing"}
    assert get(live_server, tokens["advertiser"], **query).status_code == 403
    for bad in (
        {"from": "soon"},
        {"slots": "nope"},
        {"targeting": '{"devices": ["car"]}'},
        {"targeting": "{"},
    ):
        refused = get(live_server, tokens["admin"], **{**query, **bad})
        assert refused.status_code == 400 and refused.json()["error"]

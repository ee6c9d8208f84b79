"""The demo's generated history: 60 days before today for every demo campaign, written as the
tally writes (rollups agreeing), leaving every campaign on pace and able to deliver."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, text

from adserver.delivery.pacing import refresh_delivery
from adserver.demo import data as demo
from adserver.demo.history import DAYS, add_history
from adserver.reporting.dashboard import dashboard_for
from adserver.reporting.overview import build_overview
from adserver.reporting.rollups import disagreements
from tests.test_demo import BASE_URL, FAST_HASHER


def test_the_demo_gets_sixty_days_of_history_that_keeps_it_serving(engine: Engine) -> None:
    now = datetime.now(UTC)
    assert demo.add_demo_data(engine, base_url=BASE_URL, now=now, hasher=FAST_HASHER)
    assert add_history(engine, now=now) > DAYS * 24
    refresh_delivery(engine, now=now.timestamp())
    with engine.connect() as connection:
        assert disagreements(connection) == []
        advertiser = connection.execute(
            text("SELECT advertiser_id FROM app_user WHERE role = 'advertiser'")
        ).scalar_one()
        dashboard = dashboard_for(
            connection, params={"range": "30d"}, now=now, advertiser_id=advertiser
        )
        overview = build_overview(connection, now=now)
        bookings = connection.execute(text("SELECT count(*) FROM flat_booking")).scalar_one()
    today = now.astimezone(ZoneInfo(demo.TIMEZONE)).date()
    days = dashboard.tables["days"].rows
    assert len(days) == 30
    # Every day before today has figures; today is left to real traffic.
    assert all(row["impressions"] > 0 for row in days if row["day"] != today.isoformat())
    assert days[-1]["day"] == today.isoformat() and days[-1]["impressions"] == 0
    headline = {h.key: h for h in dashboard.headlines}
    assert headline["impressions"].previous > 0 and headline["spend"].value != "0.00"
    (campaign,) = dashboard.tables["campaigns"].rows
    assert campaign["pace"] is not None and 90 <= campaign["pace"] <= 105
    assert overview.behind == [] and overview.unable == []
    assert bookings == DAYS  # the flat sponsorship billed once per day, as the tally books it
    first = (today - timedelta(days=DAYS)).isoformat()
    with engine.connect() as connection:
        starts = connection.execute(text("SELECT starts_at FROM campaign")).scalars().all()
        earliest = connection.execute(text("SELECT min(day) FROM daily_stat")).scalar_one()
    assert all(str(start).startswith(first) for start in starts)
    assert earliest == first

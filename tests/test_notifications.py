"""Notifications: each sent once when its condition first holds (behind pace: once it has held
for two hours), to the publisher and, where it concerns them, the advertiser; each kind can be
switched off per recipient."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine, select, update
from sqlmodel import Session

from adserver.config import Settings, SettingsError
from adserver.core.db import make_engine
from adserver.core.models import Campaign, CampaignDelivery, Outbox, Site, Slot, table
from adserver.delivery.pacing import refresh_delivery
from adserver.notify.notices import run_notices
from adserver.notify.optout import opt_out
from tests.conftest import SECRET
from tests.report_world import seed, utc
from tests.seed import add_campaign, add_creative, publish

OWNER = "owner@news.example"


@pytest.fixture
def world(database_url: str) -> Iterator[tuple[Engine, dict[str, int], Settings]]:
    engine = make_engine(database_url)
    ids = seed(engine)
    with engine.begin() as connection:
        connection.execute(update(table(Site)).values(report_email=OWNER))
        # Bolt's campaigns ended in the past and are not news; Acme's runs through April.
        connection.execute(
            update(table(Campaign))
            .where(table(Campaign).c.advertiser_id == ids["bolt"])
            .values(ends_at=datetime(2026, 3, 1))
        )
    settings = Settings(
        database_url=database_url, secret_key=SECRET, base_url="https://ads.example"
    )
    yield engine, ids, settings
    engine.dispose()


def _sent(engine: Engine) -> list[tuple[str, str]]:
    outbox = table(Outbox)
    with engine.connect() as connection:
        return [
            (str(r.subject), ",".join(r.recipients))
            for r in connection.execute(
                select(outbox.c.subject, outbox.c.recipients).order_by(outbox.c.id)
            )
        ]


def test_each_notification_goes_once_when_its_condition_first_holds(
    world: tuple[Engine, dict[str, int], Settings],
) -> None:
    engine, ids, settings = world
    t0 = utc(2026, 3, 20, 12)
    refresh_delivery(engine, now=t0.timestamp())
    run_notices(engine, settings, now=t0)
    # Acme delivered 212 of its 10,000 by 20 March: it started (news for both sides) and is
    # far behind pace, which is only noted for now.
    assert _sent(engine) == [
        ("Acme Diwali has started delivering", OWNER),
        ("Acme Diwali has started delivering", "acme@example.com"),
    ]
    run_notices(engine, settings, now=t0 + timedelta(hours=1))
    assert len(_sent(engine)) == 2
    run_notices(engine, settings, now=t0 + timedelta(hours=2))
    assert _sent(engine)[2:] == [("Acme Diwali is behind pace", OWNER)]  # the publisher's to fix
    run_notices(engine, settings, now=t0 + timedelta(hours=3))
    assert len(_sent(engine)) == 3

    # The publisher switches goal notifications off; the advertiser still hears.
    with engine.begin() as connection:
        opt_out(connection, address=OWNER, topic="notice:goal_reached", now=t0)
        connection.execute(
            update(table(CampaignDelivery))
            .where(table(CampaignDelivery).c.campaign_id == ids["acme_campaign"])
            .values(impressions=10_000)
        )
    run_notices(engine, settings, now=t0 + timedelta(hours=4))
    assert _sent(engine)[3:] == [("Acme Diwali reached its goal", "acme@example.com")]
    # Its end date passing later is not news again.
    run_notices(engine, settings, now=utc(2026, 5, 1, 12))
    assert len(_sent(engine)) == 4


def test_behind_pace_that_catches_up_within_two_hours_is_never_sent(
    world: tuple[Engine, dict[str, int], Settings],
) -> None:
    engine, ids, settings = world
    t0 = utc(2026, 3, 20, 12)
    refresh_delivery(engine, now=t0.timestamp())
    run_notices(engine, settings, now=t0)
    with engine.begin() as connection:
        connection.execute(
            update(table(CampaignDelivery))
            .where(table(CampaignDelivery).c.campaign_id == ids["acme_campaign"])
            .values(impressions=3_500)
        )
    run_notices(engine, settings, now=t0 + timedelta(hours=1))
    run_notices(engine, settings, now=t0 + timedelta(hours=3))
    assert [s for s, _ in _sent(engine) if "behind" in s] == []


def test_a_campaign_no_creative_fits_is_reported_to_the_publisher(
    world: tuple[Engine, dict[str, int], Settings],
) -> None:
    engine, ids, settings = world
    with Session(engine) as session:
        top = session.get(Slot, ids["top"])
        assert top is not None
        wrong = add_campaign(
            session, [top], advertiser="Acme", name="Square peg", starts_at=datetime(2026, 3, 1)
        )
        add_creative(session, wrong, name="box", width=300, height=250)
        publish(session)
    run_notices(engine, settings, now=utc(2026, 3, 20, 12))
    assert ("Square peg cannot deliver: no creative fits", OWNER) in _sent(engine)
    assert not [r for s, r in _sent(engine) if s.startswith("Square peg") and "acme@" in r]


def test_the_behind_pace_margin_is_a_setting(
    world: tuple[Engine, dict[str, int], Settings],
) -> None:
    engine, _, settings = world
    assert Settings.from_env({"ADSERVER_PACE_MARGIN": "95"}).pace_margin == 0.95
    with pytest.raises(SettingsError, match="at most 99"):
        Settings.from_env({"ADSERVER_PACE_MARGIN": "100"})
    # Acme has 7% of what even delivery would have reached: behind by 93%, not by 95%.
    lenient = settings.with_changes(pace_margin=0.95)
    t0 = utc(2026, 3, 20, 12)
    refresh_delivery(engine, now=t0.timestamp())
    for hours in (0, 3):
        run_notices(engine, lenient, now=t0 + timedelta(hours=hours))
    assert [s for s, _ in _sent(engine) if "behind" in s] == []

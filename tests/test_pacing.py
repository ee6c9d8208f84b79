"""Pacing figures (delivered so far, today and in all) from the hourly statistics."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, text
from sqlmodel import Session

from adserver.core.db import inventory_version
from adserver.delivery.pacing import refresh_delivery
from adserver.reporting.tally import run_tally
from tests.placements import AT, place, record
from tests.seed import add_campaign, add_hourly, add_site, add_slot


def utc(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp())  # type: ignore[misc]


def delivery(engine: Engine) -> dict[int, tuple[object, ...]]:
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT campaign_id, impressions, clicks, spend_nanos, today_impressions, "
                "today_clicks, today_spend_nanos, day FROM campaign_delivery"
            )
        ).all()
    return {row[0]: tuple(row[1:]) for row in rows}


def version(engine: Engine) -> int:
    with engine.connect() as connection:
        return inventory_version(connection)


def stat(hour: int, campaign: int, site: int, **counts: int) -> dict[str, int]:
    return {
        "hour": hour,
        "site_id": site,
        "slot_id": 1,
        "campaign_id": campaign,
        "creative_id": 1,
        **counts,
    }


def test_refresh_counts_today_in_the_campaigns_local_day(engine: Engine) -> None:
    with Session(engine) as session:
        kolkata = add_site(session, key="in", timezone="Asia/Kolkata")
        london = add_site(session, key="uk", timezone="Europe/London")
        top = add_slot(session, kolkata, "top", ["728x90"])
        india = add_campaign(session, [top], goal_daily=1000)
        uk = add_campaign(session, [add_slot(session, london, "top", ["728x90"])], goal_total=500)
        ids = (int(kolkata.id or 0), int(london.id or 0), int(india.id or 0), int(uk.id or 0))
        session.commit()
    kolkata_id, london_id, india_id, uk_id = ids
    with engine.begin() as connection:
        add_hourly(
            connection,
            [
                # 17:30 UTC on 24 Oct is 23:00 IST: yesterday in Kolkata.
                stat(utc(2026, 10, 24, 17, 30), india_id, kolkata_id, impressions=5, clicks=1),
                # 18:30 UTC is 00:00 IST on 25 Oct: today.
                stat(utc(2026, 10, 24, 18, 30), india_id, kolkata_id, impressions=7, spend_nanos=9),
                stat(utc(2026, 10, 25, 3, 30), india_id, kolkata_id, impressions=1, clicks=2),
                # London: 23:00 UTC on 24 Oct is 00:00 BST on 25 Oct.
                stat(utc(2026, 10, 24, 22), uk_id, london_id, impressions=100),
                stat(utc(2026, 10, 24, 23), uk_id, london_id, impressions=10),
                stat(utc(2026, 10, 25, 1), uk_id, london_id, impressions=20),
                # Requests and served only (no campaign) stay out of pacing.
                stat(utc(2026, 10, 25, 1), 0, london_id, requests=50),
            ],
        )
    now = utc(2026, 10, 25, 6)  # 11:30 IST, 06:00 GMT on 25 October
    before = version(engine)
    assert refresh_delivery(engine, now=now) == 2
    assert delivery(engine) == {
        india_id: (13, 3, 9, 8, 2, 9, "2026-10-25"),
        uk_id: (130, 0, 0, 30, 0, 0, "2026-10-25"),
    }
    assert version(engine) == before + 1

    # Nothing changed: nothing written, every process keeps its snapshot.
    assert refresh_delivery(engine, now=now + 60) == 0
    assert version(engine) == before + 1

    # Midnight in Kolkata (18:30 UTC) starts a new day there but not yet in London.
    assert refresh_delivery(engine, now=utc(2026, 10, 25, 18, 30)) == 1
    assert delivery(engine)[india_id] == (13, 3, 9, 0, 0, 0, "2026-10-26")
    assert delivery(engine)[uk_id][-1] == "2026-10-25"
    assert version(engine) == before + 2


def test_figures_of_campaigns_without_a_goal_or_a_budget_bump_nothing(engine: Engine) -> None:
    with Session(engine) as session:
        site = add_site(session, key="in", timezone="Asia/Kolkata")
        top = add_slot(session, site, "top", ["728x90"])
        house = add_campaign(session, [top], tier="house")
        sponsor = add_campaign(session, [top], tier="sponsorship")
        ids = (int(site.id or 0), int(house.id or 0), int(sponsor.id or 0))
        session.commit()
    site_id, house_id, sponsor_id = ids
    hour = utc(2026, 10, 25, 4)
    with engine.begin() as connection:
        add_hourly(connection, [stat(hour, house_id, site_id, impressions=40)])
        add_hourly(connection, [stat(hour, sponsor_id, site_id, impressions=9, spend_nanos=5)])
    before = version(engine)

    # Neither has a goal or a budget: the dashboards get the figures, the servers keep serving.
    assert refresh_delivery(engine, now=hour + 600) == 2
    assert delivery(engine)[house_id][0] == 40
    assert version(engine) == before

    # Once one has a budget, its new figures may stop it: every process must read them.
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE campaign SET budget_micros = 1 WHERE id = :id"), {"id": sponsor_id}
        )
        add_hourly(connection, [stat(hour, sponsor_id, site_id, impressions=1, spend_nanos=5)])
    assert refresh_delivery(engine, now=hour + 660) == 1
    assert version(engine) == before + 1


def test_refresh_reads_what_the_tally_rolled_up(engine: Engine) -> None:
    cpm = place(engine, pricing="cpm", price_micros=2_000_000)
    record(engine, [cpm.event(f"d{n}", "imp") for n in range(3)])
    record(engine, [cpm.event("d0", "click")])
    run_tally(engine)

    assert refresh_delivery(engine, now=AT + 60) == 1
    assert delivery(engine)[cpm.ids[2]] == (3, 1, 6_000_000, 3, 1, 6_000_000, "2026-11-20")

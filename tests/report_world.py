"""A small world for report tests: a Kolkata site and a London site, two advertisers, and
hourly statistics placed on both sides of local week and month boundaries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, insert
from sqlmodel import Session

from adserver.core.clock import local_hour_start
from adserver.core.models import ReportSchedule, table
from adserver.reporting.hourly import add_invalid
from tests.seed import add_campaign, add_creative, add_hourly, add_site, add_slot, publish

KOLKATA = ZoneInfo("Asia/Kolkata")
LONDON = ZoneInfo("Europe/London")
LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)


def hour(zone: ZoneInfo, *parts: int) -> int:
    """The bucket of a site-local wall-clock hour (as the tally files events)."""
    return local_hour_start(datetime(*parts, tzinfo=zone).timestamp(), zone)  # type: ignore[misc]


def stat(
    hour: int, site: int, slot: int, campaign: int, creative: int, **counts: int
) -> dict[str, int]:
    return dict(
        hour=hour, site_id=site, slot_id=slot, campaign_id=campaign, creative_id=creative, **counts
    )


def seed(engine: Engine) -> dict[str, int]:
    """Acme runs on Delhi (Asia/Kolkata, INR) only; Bolt on London (Europe/London, GBP) and
    Delhi, so its money must be shown per currency."""
    with Session(engine) as session:
        delhi = add_site(session, key="delhi", timezone="Asia/Kolkata")
        delhi.currency = "INR"
        delhi.name = "Delhi Daily"
        delhi.logo_url = "https://delhi.example/logo.png"
        london = add_site(session, key="london", timezone="Europe/London")
        london.currency = "GBP"
        top = add_slot(session, delhi, "top", ["728x90"])
        side = add_slot(session, delhi, "side", ["300x250"])
        ltop = add_slot(session, london, "top", ["728x90"])
        acme = add_campaign(
            session,
            [top],
            advertiser="Acme",
            name="Acme Diwali",
            price_micros=2_000_000,
            goal_kind="impressions",
            goal_total=10_000,
            starts_at=datetime(2026, 3, 1),
            ends_at=datetime(2026, 4, 30),
        )
        a_creative = add_creative(session, acme, name="acme-leader")
        bolt_uk = add_campaign(session, [ltop], advertiser="Bolt", name="Bolt UK")
        b_creative = add_creative(session, bolt_uk, name="bolt-uk")
        bolt_in = add_campaign(session, [side], advertiser="Bolt", name="Bolt India")
        b2_creative = add_creative(session, bolt_in, name="bolt-box", width=300, height=250)
        publish(session)
        ids = {
            "delhi": delhi.id,
            "london": london.id,
            "top": top.id,
            "side": side.id,
            "ltop": ltop.id,
            "acme_campaign": acme.id,
            "acme_creative": a_creative.id,
            "bolt_uk": bolt_uk.id,
            "bolt_uk_creative": b_creative.id,
            "bolt_in": bolt_in.id,
            "bolt_in_creative": b2_creative.id,
            "acme": acme.advertiser_id,
            "bolt": bolt_uk.advertiser_id,
        }
    i = {k: int(v) for k, v in ids.items() if v is not None}
    d, lo = i["delhi"], i["london"]
    acme_at = (d, i["top"], i["acme_campaign"], i["acme_creative"])
    rows = [
        # The Kolkata week of Monday 2026-03-09 .. Sunday 2026-03-15: its first and last hours
        # (18:30 UTC on the 8th, 17:30 UTC on the 15th), and just outside it either side.
        stat(hour(KOLKATA, 2026, 3, 9, 0), *acme_at, served=100, impressions=90, viewable=70,
             clicks=3, invalid_impressions=10, spend_nanos=90 * 2_000_000),
        stat(hour(KOLKATA, 2026, 3, 12, 14), *acme_at, served=50, impressions=40, viewable=20,
             clicks=1, spend_nanos=40 * 2_000_000),
        stat(hour(KOLKATA, 2026, 3, 15, 23), *acme_at, served=10, impressions=10, viewable=10,
             spend_nanos=10 * 2_000_000),
        stat(hour(KOLKATA, 2026, 3, 8, 23), *acme_at, served=7, impressions=7,
             spend_nanos=7 * 2_000_000),
        stat(hour(KOLKATA, 2026, 3, 16, 0), *acme_at, served=5, impressions=5),
        stat(hour(KOLKATA, 2026, 3, 2, 10), *acme_at, served=60, impressions=60, clicks=2,
             spend_nanos=60 * 2_000_000),
        stat(hour(KOLKATA, 2026, 3, 9, 0), d, i["top"], 0, 0, requests=400),
        # London across the start of summer time (2026-03-29): the whole of March, and April 1st.
        stat(hour(LONDON, 2026, 3, 1, 0), lo, i["ltop"], i["bolt_uk"], i["bolt_uk_creative"],
             served=11, impressions=11, clicks=1),
        stat(hour(LONDON, 2026, 3, 29, 2), lo, i["ltop"], i["bolt_uk"], i["bolt_uk_creative"],
             served=22, impressions=22),
        stat(hour(LONDON, 2026, 3, 31, 23), lo, i["ltop"], i["bolt_uk"], i["bolt_uk_creative"],
             served=33, impressions=33, spend_nanos=5_000_000_000),
        stat(hour(LONDON, 2026, 4, 1, 0), lo, i["ltop"], i["bolt_uk"], i["bolt_uk_creative"],
             served=44, impressions=44),
        stat(hour(LONDON, 2026, 2, 28, 23), lo, i["ltop"], i["bolt_uk"], i["bolt_uk_creative"],
             served=55, impressions=55),
        stat(hour(KOLKATA, 2026, 3, 20, 9), d, i["side"], i["bolt_in"], i["bolt_in_creative"],
             served=8, impressions=8, clicks=1, spend_nanos=3_000_000_000),
    ]  # fmt: skip
    with engine.begin() as connection:
        add_hourly(connection, rows)
        add_invalid(
            connection,
            [
                {
                    "hour": hour(KOLKATA, 2026, 3, 9, 0),
                    "site_id": d,
                    "slot_id": i["top"],
                    "campaign_id": i["acme_campaign"],
                    "creative_id": i["acme_creative"],
                    "kind": "imp",
                    "reason": "bot",
                    "count": 10,
                }
            ],
        )
    return i


def add_schedule(engine: Engine, **fields: object) -> int:
    fields.setdefault("created_at", LONG_AGO)
    fields.setdefault("updated_at", LONG_AGO)
    with engine.begin() as connection:
        return int(
            connection.execute(
                insert(table(ReportSchedule)).values(**fields).returning(table(ReportSchedule).c.id)
            ).scalar_one()
        )


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def at_local(zone: ZoneInfo, *parts: int) -> datetime:
    return datetime(*parts, tzinfo=zone).astimezone(UTC) + timedelta(0)  # type: ignore[misc]

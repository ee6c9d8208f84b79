"""Campaigns placed in slots, and events for them stored as the event writer stores them."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, select
from sqlmodel import Session

from adserver.core.clock import local_hour_start
from adserver.core.models import Site, table
from adserver.tracking.events import EventRecord, store
from tests.seed import add_campaign, add_creative, add_site, add_slot

AT = int(datetime(2026, 11, 20, 10, 15, tzinfo=UTC).timestamp())
UTC_ZONE = ZoneInfo("UTC")


class Placement:
    """One campaign's creative in one slot: the ids an event carries."""

    def __init__(self, site: int, slot: int, campaign: int, creative: int, zone: ZoneInfo):
        self.ids = (site, slot, campaign, creative)
        self.zone = zone

    def event(
        self, decision: str, kind: str, *, at: int = AT, reason: str | None = None
    ) -> EventRecord:
        site, slot, campaign, creative = self.ids
        return EventRecord.new(
            decision_id=decision,
            kind=kind,
            at=at,
            hour=local_hour_start(at, self.zone),
            site_id=site,
            slot_id=slot,
            campaign_id=campaign,
            creative_id=creative,
            reason=reason,
        )


def place(
    engine: Engine, *, pricing: str, price_micros: int, site_key: str = "news", tz: str = "UTC"
) -> Placement:
    """A campaign with one creative in a new slot of site ``site_key`` (made if new)."""
    with Session(engine) as session:
        site = session.scalars(select(Site).where(table(Site).c.key == site_key)).first()
        if site is None:
            site = add_site(session, key=site_key, timezone=tz)
        slot = add_slot(session, site, f"{pricing}-{price_micros}", ["728x90"])
        campaign = add_campaign(
            session, [slot], name=f"{pricing} campaign", pricing=pricing, price_micros=price_micros
        )
        creative = add_creative(session, campaign)
        ids = (site.id, slot.id, campaign.id, creative.id)
        zone = ZoneInfo(site.timezone)
        session.commit()
    site_id, slot_id, campaign_id, creative_id = (int(i or 0) for i in ids)
    return Placement(site_id, slot_id, campaign_id, creative_id, zone)


def record(engine: Engine, events: list[EventRecord]) -> None:
    with engine.begin() as connection:
        store(connection, events)

"""Small factories for tests: each adds one row with sensible defaults and returns it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, select
from sqlmodel import Session

from adserver.core.db import bump_inventory_version
from adserver.core.models import Advertiser, Campaign, CampaignSlot, Creative, Site, Slot
from adserver.reporting.hourly import COUNTERS, STAT_KEY, add_counts

LANDING = "https://advertiser.example/landing"


def add_site(
    session: Session, *, key: str = "news", timezone: str = "UTC", domains: list[str] | None = None
) -> Site:
    site = Site(
        key=key,
        name=key.title(),
        timezone=timezone,
        domains=domains if domains is not None else ["localhost", "127.0.0.1"],
    )
    session.add(site)
    session.flush()
    return site


def add_slot(session: Session, site: Site, name: str, sizes: list[str]) -> Slot:
    assert site.id is not None
    slot = Slot(site_id=site.id, name=name, sizes=sizes)
    session.add(slot)
    session.flush()
    return slot


def add_campaign(
    session: Session, slots: list[Slot], *, advertiser: str = "Acme", **fields: Any
) -> Campaign:
    owner = session.scalars(select(Advertiser).where(Advertiser.name == advertiser)).first()
    if owner is None:
        owner = Advertiser(name=advertiser, email=f"{advertiser.lower()}@example.com")
        session.add(owner)
        session.flush()
    assert owner.id is not None
    fields.setdefault("status", "active")
    fields.setdefault("starts_at", datetime.now() - timedelta(days=1))
    campaign = Campaign(
        advertiser_id=owner.id, name=fields.pop("name", f"{advertiser} campaign"), **fields
    )
    session.add(campaign)
    session.flush()
    for slot in slots:
        session.add(CampaignSlot(campaign_id=campaign.id, slot_id=slot.id))
    return campaign


def add_creative(
    session: Session, campaign: Campaign, *, width: int = 728, height: int = 90, **fields: Any
) -> Creative:
    assert campaign.id is not None
    fields.setdefault("kind", "image")
    fields.setdefault("click_url", LANDING)
    if fields["kind"] == "image":
        fields.setdefault("image", b"\x89PNG fake bytes for tests")
        fields.setdefault("image_type", "image/png")
    creative = Creative(
        campaign_id=campaign.id,
        name=fields.pop("name", "creative"),
        width=width,
        height=height,
        **fields,
    )
    session.add(creative)
    session.flush()
    return creative


def publish(session: Session) -> None:
    """Commit and tell running servers that deliverable inventory changed."""
    bump_inventory_version(session.connection())
    session.commit()


def three_slot_site(engine: Engine) -> dict[str, int]:
    """A site 'news' with slots top (728x90), below (728x90, 300x250), side (300x250), each
    with a campaign, plus 'empty' (728x90) that no campaign fills. Returns slot ids by name."""
    with Session(engine) as session:
        site = add_site(session)
        top = add_slot(session, site, "top", ["728x90"])
        below = add_slot(session, site, "below", ["728x90", "300x250"])
        side = add_slot(session, site, "side", ["300x250"])
        empty = add_slot(session, site, "empty", ["728x90"])
        leaderboard = add_campaign(session, [top, below], advertiser="Acme", tier="standard")
        add_creative(session, leaderboard, width=728, height=90)
        box = add_campaign(session, [side], advertiser="Bolt", tier="sponsorship")
        add_creative(
            session,
            box,
            width=300,
            height=250,
            kind="html",
            html='<a href="%%CLICK_URL%%" target="_blank">Bolt</a>',
        )
        ids = {slot.name: slot.id for slot in (top, below, side, empty)}
        publish(session)
    return {name: int(i) for name, i in ids.items() if i is not None}


def add_hourly(connection: Connection, rows: Iterable[Mapping[str, int]]) -> None:
    """Add each row's counters (any of ``COUNTERS``; the others add 0) to its hourly statistic,
    creating it if new."""
    add_counts(
        connection,
        [(*(row[k] for k in STAT_KEY), *(row.get(c, 0) for c in COUNTERS)) for row in rows],
    )

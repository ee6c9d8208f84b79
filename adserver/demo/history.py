"""Generated history for the demo: 60 days of statistics, so every page has something to show.

``adserver demo`` adds it right after the demo data, to a database that had none. The demo
campaigns' flights are moved to start on the first day of the history (through the service
layer), and each campaign with a goal delivers a little under its even pace, so it keeps
serving when the demo starts. Figures follow a day's rhythm (quiet nights, a lunchtime and an
evening peak, lighter weekends), with a few refused bot impressions. They are written the way
the tally and the counters write them (hourly rows and their daily rollups together), and a
flat-priced campaign's days are booked as the tally books them; today is left to real traffic.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, select

from adserver.core.clock import local_hour_start
from adserver.core.db import insert_for
from adserver.core.models import Campaign, CampaignSlot, Creative, FlatBooking, Site, Slot, table
from adserver.reporting.hourly import STAT_KEY, add_counts, add_invalid
from adserver.services import campaigns as campaign_service
from adserver.services.common import SYSTEM

DAYS = 60
#: Slot requests in an average hour, before the day's rhythm.
REQUESTS_PER_HOUR = 140
FILL, VIEWABLE, CTR = 0.9, 0.62, 0.006
#: Share of impressions refused as coming from bots.
BOTS = 0.02
#: A campaign with a goal delivers this share of its even pace.
ON_PACE = 0.98


@dataclass(frozen=True)
class _Place:
    site_id: int
    slot_id: int
    campaign_id: int
    creative_id: int
    zone: ZoneInfo


def add_history(engine: Engine, *, now: datetime, days: int = DAYS, seed: int = 60) -> int:
    """Add ``days`` days of statistics before today to the demo campaigns; returns the number
    of hourly rows written. Call it once, on the database the demo data was just added to."""
    rng = random.Random(seed)
    with engine.begin() as connection:
        site = connection.execute(select(table(Site))).first()
        if site is None:
            return 0
        zone = ZoneInfo(site.timezone)
        today = now.astimezone(zone).date()
        first_day = today - timedelta(days=days)
        start = datetime.combine(first_day, time(0))
        campaigns = {
            int(row.id): row
            for row in connection.execute(
                select(table(Campaign)).where(table(Campaign).c.status == "active")
            )
        }
        for campaign_id in campaigns:
            campaign_service.update_campaign(
                connection,
                campaign_id=campaign_id,
                data=campaign_service.CampaignUpdate(starts_at=start.isoformat()),
                expected_version=None,
                actor=SYSTEM,
                now=now,
            )
        places = _places(connection, zone)
        hours = list(_hours(first_day, today, zone))
        share = _shares(campaigns, places, sum(w for _, w in hours), now, zone)
        rows: list[tuple[int, ...]] = []
        invalid: list[dict[str, Any]] = []
        flat_days: set[tuple[int, str]] = set()
        for hour, weight in hours:
            slots = {p.slot_id: p.site_id for p in places}
            for slot_id, site_id in slots.items():
                asked = _noisy(rng, REQUESTS_PER_HOUR * weight)
                rows.append((hour, site_id, slot_id, 0, 0, asked, 0, 0, 0, 0, 0, 0, 0, 0))
            for place in places:
                served = _noisy(rng, REQUESTS_PER_HOUR * weight * FILL * share[place])
                if not served:
                    continue
                impressions = _noisy(rng, served * 0.97)
                bots = _noisy(rng, impressions * BOTS)
                viewable = _noisy(rng, impressions * VIEWABLE)
                clicks = _noisy(rng, impressions * CTR)
                campaign = campaigns[place.campaign_id]
                spend = _spend(campaign, impressions, clicks)
                if campaign.pricing == "flat" and impressions:
                    day = datetime.fromtimestamp(hour, zone).date().isoformat()
                    if (place.campaign_id, day) not in flat_days:
                        flat_days.add((place.campaign_id, day))
                        spend += int(campaign.price_micros) * 1000
                key = (hour, place.site_id, place.slot_id, place.campaign_id, place.creative_id)
                rows.append((*key, 0, served, impressions, viewable, clicks, bots, 0, 0, spend))
                if bots:
                    invalid.append(
                        {
                            **dict(zip(STAT_KEY, key, strict=True)),
                            "kind": "imp",
                            "reason": "bot",
                            "count": bots,
                        }
                    )
        add_counts(connection, rows)
        add_invalid(connection, invalid)
        if flat_days:
            bookings = insert_for(connection)(table(FlatBooking)).on_conflict_do_nothing()
            connection.execute(
                bookings, [{"campaign_id": c, "day": d} for c, d in sorted(flat_days)]
            )
    return len(rows)


def _places(connection: Connection, zone: ZoneInfo) -> list[_Place]:
    """Every (slot, campaign, active creative that fits the slot) of the demo."""
    links, slots = table(CampaignSlot), table(Slot)
    creatives = table(Creative)
    sizes = {
        int(row.id): (int(row.site_id), set(row.sizes))
        for row in connection.execute(select(slots.c.id, slots.c.site_id, slots.c.sizes))
    }
    by_campaign: dict[int, list[Any]] = {}
    for row in connection.execute(
        select(creatives).where(creatives.c.status == "active").order_by(creatives.c.id)
    ):
        by_campaign.setdefault(int(row.campaign_id), []).append(row)
    places = []
    for link in connection.execute(select(links).order_by(links.c.campaign_id, links.c.slot_id)):
        site_id, slot_sizes = sizes[int(link.slot_id)]
        for creative in by_campaign.get(int(link.campaign_id), []):
            size = f"{creative.width}x{creative.height}"
            if size in slot_sizes or "fluid" in slot_sizes or not creative.width:
                places.append(
                    _Place(
                        site_id, int(link.slot_id), int(link.campaign_id), int(creative.id), zone
                    )
                )
    return places


def _shares(
    campaigns: dict[int, Any], places: list[_Place], weight: float, now: datetime, zone: ZoneInfo
) -> dict[_Place, float]:
    """Each place's share of its slot's filled requests: split evenly among the campaigns and
    creatives there, and for a campaign with a goal, set so it ends a little under its pace."""
    per_slot: dict[int, list[_Place]] = {}
    for place in places:
        per_slot.setdefault(place.slot_id, []).append(place)
    shares = {place: 1 / len(per_slot[place.slot_id]) for place in places}
    for campaign_id, campaign in campaigns.items():
        mine = [p for p in places if p.campaign_id == campaign_id]
        if not mine or not campaign.goal_total or campaign.ends_at is None:
            continue
        start = datetime.combine(
            (now.astimezone(zone) - timedelta(days=DAYS)).date(), time(0), tzinfo=zone
        )
        end = campaign.ends_at.replace(tzinfo=zone)
        due = campaign.goal_total * (now - start) / (end - start) * ON_PACE
        average = REQUESTS_PER_HOUR * FILL * weight
        for place in mine:
            shares[place] = min(1.0, due / average / len(mine))
    return shares


def _hours(first: Any, today: Any, zone: ZoneInfo) -> Iterator[tuple[int, float]]:
    """Each local hour from ``first`` up to today's midnight, with its traffic weight."""
    at = int(datetime.combine(first, time(0), tzinfo=zone).timestamp())
    end = int(datetime.combine(today, time(0), tzinfo=zone).timestamp())
    seen = set()
    while at < end:
        hour = local_hour_start(at, zone)
        if hour not in seen:
            seen.add(hour)
            local = datetime.fromtimestamp(hour, UTC).astimezone(zone)
            yield hour, _rhythm(local)
        at += 3600


def _rhythm(local: datetime) -> float:
    """Readers by hour of day (a lunchtime and an evening peak) and day of week."""
    h = local.hour
    day = 0.15 + math.exp(-((h - 12.5) ** 2) / 8) + 1.3 * math.exp(-((h - 20.5) ** 2) / 6)
    weekend = 0.75 if local.weekday() >= 5 else 1.0
    return day * weekend


def _noisy(rng: random.Random, mean: float) -> int:
    return max(0, round(rng.gauss(mean, math.sqrt(max(mean, 0.0)))))


def _spend(campaign: Any, impressions: int, clicks: int) -> int:
    """Spend in nanos, as the tally bills it: CPM per impression, CPC per click."""
    price = int(campaign.price_micros or 0)
    if campaign.pricing == "cpm":
        return impressions * price
    if campaign.pricing == "cpc":
        return clicks * price * 1000
    return 0

"""Can I sell this? Expected, taken and available impressions for slots, dates and a targeting.

Expected: the last ``HISTORY_WEEKS`` weeks' requests of each slot by weekday and hour in the
site's zone (each (weekday, hour) averaged over the days it was seen), summed over the hours of
the asked range that the day and hour targeting allow, times the share of requests the rest of
the targeting matches (device class and country from ``audience_day``, paths and keywords from
the slot's sampled pages), times the share of served ads that rendered (impressions / served).

Taken: what campaigns of the same or a higher tier assigned to the slot will take in the range:
a goal's remainder spread evenly over its remaining flight (split over its slots by their
traffic), a daily goal's days, or (no goal) every request it matches; each counted only on the
traffic its targeting shares with the asked one. Available = expected - taken, never below 0.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, func, select

from adserver.core.models import (
    AudienceDay,
    AudienceSample,
    Campaign,
    CampaignDelivery,
    CampaignSlot,
    HourlyStat,
    Site,
    Slot,
    table,
)
from adserver.delivery.decide import TIER_RANK, Targeting
from adserver.delivery.targeting import compile_targeting

HISTORY_WEEKS = 4
MAX_DAYS = 366
#: (weekday, hour) -> average requests in that local hour.
Profile = dict[tuple[int, int], float]


class ForecastError(ValueError):
    """A forecast asked of something that does not exist or cannot be: the message says why."""


@dataclass
class SlotForecast:
    slot: str
    expected: int
    taken: int
    available: int
    competing: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _Traffic:
    """What one slot's history says: its hourly profile, audience mix and render rate."""

    profile: Profile
    mix: dict[tuple[str, str], int]
    sample: list[tuple[str, frozenset[str]]]
    rendered: float


def forecast(
    connection: Connection,
    *,
    site_key: str,
    slot_names: list[str],
    start: date,
    end: date,
    targeting: dict[str, Any],
    tier: str = "standard",
    now: float,
) -> list[SlotForecast]:
    """Per asked slot: expected, taken (by competing campaigns, listed) and available."""
    if end < start:
        raise ForecastError("'to' is before 'from'")
    if (end - start).days >= MAX_DAYS:
        raise ForecastError(f"a forecast covers at most {MAX_DAYS} days")
    if tier not in TIER_RANK:
        raise ForecastError(f"tier must be one of {', '.join(TIER_RANK)}")
    site = connection.execute(select(Site).where(table(Site).c.key == site_key)).first()
    if site is None:
        raise ForecastError(f"unknown site {site_key!r}")
    zone = ZoneInfo(site.timezone)
    slots = {
        row.name: int(row.id)
        for row in connection.execute(select(Slot).where(table(Slot).c.site_id == site.id))
    }
    unknown = [name for name in slot_names if name not in slots]
    if unknown:
        raise ForecastError(f"unknown slot {unknown[0]!r}")
    wanted = compile_targeting(targeting)
    today = datetime.fromtimestamp(now, zone).date()
    first = today - timedelta(weeks=HISTORY_WEEKS)
    traffic = _history(connection, site.id, list(slots.values()), first, today, zone)
    hours = _range_hours(start, end)
    competitors = _competitors(connection, list(slots.values()), tier, start, end, zone)
    # A competitor's need spreads over all of its slots, by what each expects of its targeting.
    spread: dict[int, float] = defaultdict(float)
    for campaign, slot_ids, compiled in competitors:
        for slot_id in slot_ids:
            spread[campaign.id] += _expected(traffic[slot_id], hours, compiled)
    answer = []
    for name in slot_names:
        slot_id = slots[name]
        slot_traffic = traffic[slot_id]
        expected = _expected(slot_traffic, hours, wanted)
        taken = 0.0
        competing = []
        for campaign, slot_ids, compiled in competitors:
            if slot_id not in slot_ids:
                continue
            theirs = _expected(slot_traffic, hours, compiled)
            shared = _expected(slot_traffic, hours, wanted, compiled)
            if theirs <= 0 or shared <= 0:
                continue
            need = _need(connection, campaign, start, end, zone, now, spread[campaign.id])
            share = theirs / spread[campaign.id] if spread[campaign.id] else 0.0
            takes = min(shared, need * share * shared / theirs)
            taken += takes
            competing.append(
                {
                    "campaign": campaign.id,
                    "name": campaign.name,
                    "tier": campaign.tier,
                    "takes": round(takes),
                }
            )
        taken = min(taken, expected)
        answer.append(
            SlotForecast(
                slot=name,
                expected=round(expected),
                taken=round(taken),
                available=max(0, round(expected) - round(taken)),
                competing=competing,
            )
        )
    return answer


def _range_hours(start: date, end: date) -> list[tuple[int, int]]:
    """Every local (weekday, hour) of the range's days, once per day it occurs."""
    days = (end - start).days + 1
    return [
        ((start + timedelta(days=n)).weekday(), hour) for n in range(days) for hour in range(24)
    ]


def _history(
    connection: Connection,
    site_id: int,
    slot_ids: list[int],
    first: date,
    today: date,
    zone: ZoneInfo,
) -> dict[int, _Traffic]:
    since = datetime.combine(first, time(), zone).timestamp()
    until = datetime.combine(today, time(), zone).timestamp()
    stats = table(HourlyStat)
    sums: dict[int, dict[tuple[int, int], float]] = {s: defaultdict(float) for s in slot_ids}
    seen_from: dict[int, date] = {}
    served: dict[int, list[int]] = {s: [0, 0] for s in slot_ids}
    for row in connection.execute(
        select(
            stats.c.slot_id,
            stats.c.hour,
            func.sum(stats.c.requests),
            func.sum(stats.c.served),
            func.sum(stats.c.impressions),
        )
        .where(
            stats.c.site_id == site_id,
            stats.c.slot_id.in_(slot_ids),
            stats.c.hour >= since,
            stats.c.hour < until,
        )
        .group_by(stats.c.slot_id, stats.c.hour)
    ):
        slot_id, hour, requests, served_n, impressions = (int(v or 0) for v in row)
        local = datetime.fromtimestamp(hour, zone)
        sums[slot_id][(local.weekday(), local.hour)] += requests
        if requests:
            seen_from[slot_id] = min(seen_from.get(slot_id, local.date()), local.date())
        served[slot_id][0] += served_n
        served[slot_id][1] += impressions
    traffic = {}
    for slot_id in slot_ids:
        begun = seen_from.get(slot_id, today)
        # Each weekday counted over the days the slot has had traffic since, not before.
        occurrences: dict[int, int] = defaultdict(int)
        for n in range((today - begun).days):
            occurrences[(begun + timedelta(days=n)).weekday()] += 1
        profile = {
            (weekday, hour): total / occurrences[weekday]
            for (weekday, hour), total in sums[slot_id].items()
            if occurrences[weekday]
        }
        served_n, impressions = served[slot_id]
        traffic[slot_id] = _Traffic(
            profile=profile,
            mix=_mix(connection, site_id, slot_id, first, today),
            sample=_sample(connection, site_id, slot_id),
            rendered=min(1.0, impressions / served_n) if served_n else 1.0,
        )
    return traffic


def _mix(
    connection: Connection, site_id: int, slot_id: int, first: date, today: date
) -> dict[tuple[str, str], int]:
    days = table(AudienceDay)
    rows = connection.execute(
        select(days.c.device, days.c.country, func.sum(days.c.requests))
        .where(
            days.c.site_id == site_id,
            days.c.slot_id == slot_id,
            days.c.day >= first.isoformat(),
            days.c.day < today.isoformat(),
        )
        .group_by(days.c.device, days.c.country)
    )
    return {(device, country): int(n or 0) for device, country, n in rows}


def _sample(connection: Connection, site_id: int, slot_id: int) -> list[tuple[str, frozenset[str]]]:
    samples = table(AudienceSample)
    stored = connection.execute(
        select(samples.c.samples).where(samples.c.site_id == site_id, samples.c.slot_id == slot_id)
    ).scalar()
    return [(str(path), frozenset(keywords)) for path, keywords in stored or ()]


def _expected(traffic: _Traffic, hours: list[tuple[int, int]], *targetings: Targeting) -> float:
    """Impressions expected over ``hours`` from traffic every one of ``targetings`` matches."""
    requests = sum(
        traffic.profile.get(cell, 0.0) for cell in hours if all(_at(t, *cell) for t in targetings)
    )
    return requests * _share(traffic, targetings) * traffic.rendered


def _at(targeting: Targeting, weekday: int, hour: int) -> bool:
    if targeting.days and weekday not in targeting.days:
        return False
    return not targeting.hours or hour in targeting.hours


def _share(traffic: _Traffic, targetings: tuple[Targeting, ...]) -> float:
    """The share of requests the device, country, path and keyword targeting admit (1.0 where
    no aggregate has been kept yet: a forecast then assumes everyone matches)."""
    share = 1.0
    if any(t.devices or t.countries for t in targetings) and traffic.mix:
        total = sum(traffic.mix.values())
        matched = sum(
            n
            for (device, country), n in traffic.mix.items()
            if all(
                (not t.devices or device in t.devices)
                and (not t.countries or country in t.countries)
                for t in targetings
            )
        )
        share *= matched / total if total else 1.0
    by_page = any(
        t.paths is not None or t.exclude_paths is not None or t.keywords or t.exclude_keywords
        for t in targetings
    )
    if by_page and traffic.sample:
        pages = [p for p in traffic.sample if all(_on_page(t, *p) for t in targetings)]
        share *= len(pages) / len(traffic.sample)
    return share


def _on_page(targeting: Targeting, path: str, keywords: frozenset[str]) -> bool:
    if targeting.keywords and targeting.keywords.isdisjoint(keywords):
        return False
    if targeting.exclude_keywords and not targeting.exclude_keywords.isdisjoint(keywords):
        return False
    if targeting.paths is not None and not targeting.paths.match(path):
        return False
    return targeting.exclude_paths is None or not targeting.exclude_paths.match(path)


def _competitors(
    connection: Connection,
    slot_ids: list[int],
    tier: str,
    start: date,
    end: date,
    zone: ZoneInfo,
) -> list[tuple[Any, set[int], Targeting]]:
    """Active campaigns of the same or a higher tier on the site's slots whose flight meets the
    range, each with its slots there and its compiled targeting."""
    campaigns = table(Campaign)
    links = table(CampaignSlot)
    rank = TIER_RANK[tier]
    tiers = [name for name, r in TIER_RANK.items() if r <= rank]
    opens = datetime.combine(start, time())
    closes = datetime.combine(end + timedelta(days=1), time())
    rows = connection.execute(
        select(Campaign).where(
            campaigns.c.status == "active",
            campaigns.c.tier.in_(tiers),
            (campaigns.c.starts_at.is_(None)) | (campaigns.c.starts_at < closes),
            (campaigns.c.ends_at.is_(None)) | (campaigns.c.ends_at > opens),
        )
    ).all()
    slots_of: dict[int, set[int]] = defaultdict(set)
    for campaign_id, slot_id in connection.execute(
        select(links.c.campaign_id, links.c.slot_id).where(links.c.slot_id.in_(slot_ids))
    ):
        slots_of[int(campaign_id)].add(int(slot_id))
    return [
        (row, slots_of[row.id], compile_targeting(row.targeting or {}))
        for row in rows
        if slots_of.get(row.id)
    ]


def _need(
    connection: Connection,
    campaign: Any,
    start: date,
    end: date,
    zone: ZoneInfo,
    now: float,
    matching: float,
) -> float:
    """Impressions the campaign will take in the range over all its slots (``matching``:
    what its targeting matches there in the range, all it can take)."""
    if campaign.goal_kind not in (None, "impressions") or (
        campaign.goal_total is None and campaign.goal_daily is None
    ):
        return matching
    opens = datetime.combine(start, time(), zone).timestamp()
    closes = datetime.combine(end + timedelta(days=1), time(), zone).timestamp()
    begins = campaign.starts_at.replace(tzinfo=zone).timestamp() if campaign.starts_at else now
    ends = campaign.ends_at.replace(tzinfo=zone).timestamp() if campaign.ends_at else closes
    need = math.inf
    if campaign.goal_total is not None:
        delivery = connection.execute(
            select(table(CampaignDelivery).c.impressions).where(
                table(CampaignDelivery).c.campaign_id == campaign.id
            )
        ).scalar()
        remaining = max(0, campaign.goal_total - int(delivery or 0))
        left_from = max(begins, now)
        if ends > left_from:
            overlap = max(0.0, min(ends, closes) - max(left_from, opens))
            need = remaining * overlap / (ends - left_from)
        else:
            need = 0.0
    if campaign.goal_daily is not None:
        overlap = max(0.0, min(ends, closes) - max(begins, opens))
        need = min(need, campaign.goal_daily * overlap / 86400)
    return min(need, matching)

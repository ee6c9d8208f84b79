"""The publisher's overview: today and this month by site and slot, campaigns that need a look,
invalid traffic, creatives waiting for approval.

Figures come from :func:`adserver.reporting.stats.run_stats` (the function behind
``/v1/stats``), each site cut to its own today and month: sites are grouped by their local date
and currency, one query per group from the first of the month to today grouped by day, site
and slot. Pacing reads ``campaign_delivery``, the delivered-so-far figures the decision engine
paces by (as fresh as the last pacing refresh).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, select

from adserver.core.models import (
    Advertiser,
    Campaign,
    CampaignDelivery,
    CampaignSlot,
    Creative,
    Site,
    Slot,
    table,
)
from adserver.reporting.dashboard import Pace, flight, pace_of
from adserver.reporting.stats import Figures, StatsQuery, run_stats_per_currency
from adserver.reporting.tables import percent

#: Campaigns ending within this many days are listed.
ENDING_WITHIN = timedelta(days=7)
#: At most this many creatives waiting for approval are listed (the count is always given).
PENDING_SHOWN = 50

_SITES, _SLOTS, _CAMPAIGNS = table(Site), table(Slot), table(Campaign)
#: What the overview reads of a campaign (not its targeting, which is JSON to decode).
_NOTE_COLUMNS = (
    "id",
    "name",
    "status",
    "goal_kind",
    "goal_total",
    "starts_at",
    "ends_at",
    "starts_offset",
    "ends_offset",
)
_LINKS, _CREATIVES, _DELIVERY = table(CampaignSlot), table(Creative), table(CampaignDelivery)


@dataclass(frozen=True)
class Summary:
    """One period's figures of a site, a slot or a currency's total."""

    impressions: int
    viewable: Decimal | None
    clicks: int
    revenue: str
    fill_rate: Decimal | None
    requests: int
    invalid_share: Decimal | None

    @classmethod
    def of(cls, figures: Figures) -> Summary:
        shown = figures.as_dict(delivery_counts=True)
        impressions, invalid = shown["impressions"], shown["invalid_impressions"]
        return cls(
            impressions=impressions,
            viewable=percent(shown["viewability"]),
            clicks=shown["clicks"],
            revenue=shown["spend"],
            fill_rate=_share(shown["served"], shown["requests"]),
            requests=shown["requests"],
            invalid_share=_share(invalid, impressions + invalid),
        )


def _share(part: int, whole: int) -> Decimal | None:
    return None if not whole else percent(round(part / whole, 6))


@dataclass
class SlotLine:
    site_key: str
    site_name: str
    slot: str
    currency: str
    today: Summary
    month: Summary


@dataclass(frozen=True)
class CampaignNote:
    """A campaign that needs a look, and why."""

    id: int
    name: str
    advertiser: str
    status: str
    ends_at: datetime | None
    pace: Pace | None
    reason: str


@dataclass
class Overview:
    #: The local dates "today" means, and the first day of "this month" (usually one of each).
    todays: list[date]
    month_starts: list[date]
    #: Totals per currency: (today, month).
    totals: dict[str, tuple[Summary, Summary]]
    lines: list[SlotLine]
    behind: list[CampaignNote]
    ending: list[CampaignNote]
    unable: list[CampaignNote]
    pending: list[Any]
    pending_count: int
    sites: int = 0
    notes: list[str] = field(default_factory=list)


def build_overview(connection: Connection, *, now: datetime) -> Overview:
    sites = connection.execute(
        select(_SITES.c.id, _SITES.c.key, _SITES.c.name, _SITES.c.timezone, _SITES.c.currency)
        .where(_SITES.c.status != "archived")
        .order_by(_SITES.c.key)
    ).all()
    groups: dict[date, list[Any]] = defaultdict(list)
    for site in sites:
        groups[now.astimezone(ZoneInfo(site.timezone)).date()].append(site)
    lines: list[SlotLine] = []
    totals: dict[str, tuple[Figures, Figures]] = {}
    for today, members in sorted(groups.items()):
        first = today.replace(day=1)
        ids = {int(s.id) for s in members}
        # Whole sums per site and slot from the database, split by currency in one pass: one
        # query for the month, one for today (a month's every day would be thousands of rows).
        # Sites whose today is another date are read too, and left to their own group.
        by = ("site", "slot")
        month = run_stats_per_currency(connection, StatsQuery(first, today, by))
        day = run_stats_per_currency(connection, StatsQuery(today, today, by))
        for currency, month_result in month.items():
            if not currency:
                continue  # forged events belong to no site
            on_month = {k: f for k, f in month_result.rows if k[0] in ids}
            on_day = {k: f for k, f in day[currency].rows if k[0] in ids} if currency in day else {}
            if not on_month:
                continue
            day_total, month_total = totals.setdefault(currency, (Figures(), Figures()))
            for key, figures in on_month.items():
                month_total.add(figures)
                day_total.add(on_day.get(key, Figures()))
            lines += _lines(members, month_result.labels, currency, on_day, on_month)
    lines.sort(key=lambda line: line.site_key)
    behind, ending, unable = _campaign_notes(connection, now)
    pending, pending_count = _pending(connection)
    return Overview(
        todays=sorted(groups),
        month_starts=sorted({today.replace(day=1) for today in groups}),
        totals={c: (Summary.of(d), Summary.of(m)) for c, (d, m) in sorted(totals.items())},
        lines=lines,
        behind=behind,
        ending=ending,
        unable=unable,
        pending=pending,
        pending_count=pending_count,
        sites=len(sites),
    )


def _lines(
    members: list[Any],
    labels: dict[str, dict[int, str]],
    currency: str,
    on_day: dict[Any, Figures],
    month: dict[Any, Figures],
) -> list[SlotLine]:
    by_id = {int(s.id): s for s in members}
    lines = []
    for site_id, slot_id in sorted(month, key=lambda k: (by_id[k[0]].key, k[1] is None, k[1])):
        site = by_id[site_id]
        slot = labels.get("slot", {}).get(slot_id, "(no slot)") if slot_id else "(no slot)"
        lines.append(
            SlotLine(
                site_key=site.key,
                site_name=site.name,
                slot=slot,
                currency=currency,
                today=Summary.of(on_day.get((site_id, slot_id), Figures())),
                month=Summary.of(month[(site_id, slot_id)]),
            )
        )
    return lines


def _campaign_notes(
    connection: Connection, now: datetime
) -> tuple[list[CampaignNote], list[CampaignNote], list[CampaignNote]]:
    """Active campaigns behind their pace, ending within a week, or unable to deliver (no
    slot, no active creative that fits a slot, or past their end)."""
    advertisers = table(Advertiser)
    c = _CAMPAIGNS.c
    campaigns = connection.execute(
        select(*(c[name] for name in _NOTE_COLUMNS), advertisers.c.name.label("advertiser_name"))
        .join(advertisers, advertisers.c.id == c.advertiser_id)
        .where(c.status == "active")
        .order_by(c.id)
    ).all()
    # Slots once each (their sizes are JSON), then which campaign is booked where.
    places = {
        int(row.id): row
        for row in connection.execute(
            select(_SLOTS.c.id, _SLOTS.c.sizes, _SITES.c.timezone)
            .join(_SITES, _SITES.c.id == _SLOTS.c.site_id)
            .where(_SLOTS.c.status != "archived", _SITES.c.status != "archived")
        )
    }
    slots: dict[int, list[Any]] = defaultdict(list)
    for campaign_id, slot_id in connection.execute(
        select(_LINKS.c.campaign_id, _LINKS.c.slot_id).order_by(
            _LINKS.c.campaign_id, _LINKS.c.slot_id
        )
    ):
        if int(slot_id) in places:
            slots[int(campaign_id)].append(places[int(slot_id)])
    sizes: dict[int, list[str]] = defaultdict(list)
    for row in connection.execute(
        select(_CREATIVES.c.campaign_id, _CREATIVES.c.width, _CREATIVES.c.height).where(
            _CREATIVES.c.status == "active"
        )
    ):
        fluid = not row.width or not row.height
        sizes[int(row.campaign_id)].append("fluid" if fluid else f"{row.width}x{row.height}")
    delivered = {int(row.campaign_id): row for row in connection.execute(select(_DELIVERY))}
    behind, ending, unable = [], [], []
    for campaign in campaigns:
        cid = int(campaign.id)
        zone = ZoneInfo(slots[cid][0].timezone) if slots[cid] else ZoneInfo("UTC")
        end = flight(campaign, zone)[1]
        figures = Figures()
        if cid in delivered:
            figures.counts.update(
                impressions=int(delivered[cid].impressions), clicks=int(delivered[cid].clicks)
            )
        pace = pace_of(campaign, figures, now, zone)

        def note(reason: str, campaign: Any = campaign, pace: Pace | None = pace) -> CampaignNote:
            return CampaignNote(
                id=int(campaign.id),
                name=campaign.name,
                advertiser=campaign.advertiser_name,
                status=campaign.status,
                ends_at=campaign.ends_at,
                pace=pace,
                reason=reason,
            )

        problem = _why_undeliverable(end, slots[cid], sizes[cid], now.timestamp())
        if problem is not None:
            unable.append(note(problem))
            continue
        if end is not None and end < now.timestamp() + ENDING_WITHIN.total_seconds():
            ending.append(note("ends within 7 days"))
        if pace is not None and pace.behind:
            behind.append(note(f"delivered {pace.pace}% of what was due by now"))
    behind.sort(key=lambda n: n.pace.pace if n.pace and n.pace.pace is not None else Decimal(0))
    ending.sort(key=lambda n: n.ends_at or datetime.max)
    return behind, ending, unable


def _why_undeliverable(
    end: float | None, slots: list[Any], sizes: list[str], now: float
) -> str | None:
    if end is not None and end <= now:
        return "its end has passed"
    if not slots:
        return "no slot"
    if not sizes:
        return "no active creative"
    slot_sizes = {size for slot in slots for size in slot.sizes}
    if "fluid" not in sizes and "fluid" not in slot_sizes and not slot_sizes & set(sizes):
        return "no creative fits its slots"
    return None


def _pending(connection: Connection) -> tuple[list[Any], int]:
    advertisers = table(Advertiser)
    rows = connection.execute(
        select(
            _CREATIVES.c.id,
            _CREATIVES.c.name,
            _CREATIVES.c.kind,
            _CREATIVES.c.width,
            _CREATIVES.c.height,
            _CREATIVES.c.created_at,
            _CAMPAIGNS.c.name.label("campaign_name"),
            advertisers.c.name.label("advertiser_name"),
        )
        .join(_CAMPAIGNS, _CAMPAIGNS.c.id == _CREATIVES.c.campaign_id)
        .join(advertisers, advertisers.c.id == _CAMPAIGNS.c.advertiser_id)
        .where(_CREATIVES.c.status == "pending")
        .order_by(_CREATIVES.c.created_at, _CREATIVES.c.id)
    ).all()
    return list(rows[:PENDING_SHOWN]), len(rows)

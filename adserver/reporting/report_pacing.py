"""Where each campaign stands against its goal: delivered so far, what even delivery would have
reached by now, days left, and whether it can deliver at all. Shared by the advertiser's report,
the publisher's summary and the notifications, so all three say the same thing.

Delivered-so-far figures are ``campaign_delivery`` (the pacing job's, from the tallied hourly
statistics); flight dates are wall-clock times of the campaign's site, as booked.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, select

from adserver.core.clock import UTC_ZONE
from adserver.core.models import (
    Campaign,
    CampaignDelivery,
    CampaignSlot,
    Creative,
    Site,
    Slot,
    table,
)

FLUID = "fluid"
_C = table(Campaign)


@dataclass(frozen=True)
class CampaignStanding:
    id: int
    name: str
    advertiser_id: int
    status: str
    zone: ZoneInfo
    goal_kind: str | None
    goal_total: int | None
    delivered: int
    #: What even delivery would have reached by now (None without a goal and a whole flight).
    expected: float | None
    starts_at: datetime | None
    ends_at: datetime | None
    #: Whole local days from today to the end date (None: no end date).
    days_left: int | None
    budget_micros: int | None
    spend_nanos: int
    fits: bool

    @property
    def pace(self) -> float | None:
        """Delivered as a share of what even delivery would have reached (1.0 = on pace)."""
        if self.expected is None or self.expected <= 0:
            return None
        return self.delivered / self.expected

    @property
    def goal_reached(self) -> bool:
        return self.goal_total is not None and self.delivered >= self.goal_total

    @property
    def budget_spent(self) -> bool:
        return self.budget_micros is not None and self.spend_nanos >= self.budget_micros * 1000

    def ended(self, now: datetime) -> bool:
        return self.ends_at is not None and _wall(now, self.zone) >= self.ends_at

    def started(self, now: datetime) -> bool:
        return self.starts_at is None or _wall(now, self.zone) >= self.starts_at


def _wall(now: datetime, zone: ZoneInfo) -> datetime:
    """``now`` as the site's naive wall-clock time, comparable with flight dates."""
    return now.astimezone(zone).replace(tzinfo=None)


def campaign_standings(
    connection: Connection, *, now: datetime, advertiser_id: int | None = None
) -> list[CampaignStanding]:
    """Every campaign that is not archived (of one advertiser, or all), ordered by id."""
    statement = select(_C).where(_C.c.status != "archived").order_by(_C.c.id)
    if advertiser_id is not None:
        statement = statement.where(_C.c.advertiser_id == advertiser_id)
    campaigns = connection.execute(statement).all()
    if not campaigns:
        return []
    ids = [int(c.id) for c in campaigns]
    links, slots, sites = table(CampaignSlot), table(Slot), table(Site)
    zones: dict[int, ZoneInfo] = {}
    slot_sizes: dict[int, list[tuple[str, ...]]] = defaultdict(list)
    for row in connection.execute(
        select(links.c.campaign_id, slots.c.sizes, sites.c.timezone)
        .join(slots, slots.c.id == links.c.slot_id)
        .join(sites, sites.c.id == slots.c.site_id)
        .where(links.c.campaign_id.in_(ids))
        .order_by(links.c.campaign_id, links.c.slot_id)
    ):
        zones.setdefault(int(row.campaign_id), ZoneInfo(row.timezone))
        slot_sizes[int(row.campaign_id)].append(tuple(row.sizes or ()))
    creatives = table(Creative)
    sizes: dict[int, list[str]] = defaultdict(list)
    for row in connection.execute(
        select(creatives.c.campaign_id, creatives.c.width, creatives.c.height).where(
            creatives.c.campaign_id.in_(ids), creatives.c.status == "active"
        )
    ):
        size = FLUID if not row.width or not row.height else f"{row.width}x{row.height}"
        sizes[int(row.campaign_id)].append(size)
    delivery_table = table(CampaignDelivery)
    delivery = {
        int(row.campaign_id): row
        for row in connection.execute(
            select(delivery_table).where(delivery_table.c.campaign_id.in_(ids))
        )
    }
    standings = []
    for campaign in campaigns:
        cid = int(campaign.id)
        zone = zones.get(cid, UTC_ZONE)
        done = delivery.get(cid)
        impressions = int(done.impressions) if done else 0
        clicks = int(done.clicks) if done else 0
        delivered = clicks if campaign.goal_kind == "clicks" else impressions
        today = now.astimezone(zone).date()
        standings.append(
            CampaignStanding(
                id=cid,
                name=campaign.name,
                advertiser_id=int(campaign.advertiser_id),
                status=campaign.status,
                zone=zone,
                goal_kind=campaign.goal_kind,
                goal_total=campaign.goal_total,
                delivered=delivered,
                expected=_expected(campaign, now, zone),
                starts_at=campaign.starts_at,
                ends_at=campaign.ends_at,
                days_left=(
                    None
                    if campaign.ends_at is None
                    else max(0, (campaign.ends_at.date() - today).days)
                ),
                budget_micros=campaign.budget_micros,
                spend_nanos=int(done.spend_nanos) if done else 0,
                fits=_fits_any(sizes[cid], slot_sizes[cid]),
            )
        )
    return standings


def _expected(campaign: object, now: datetime, zone: ZoneInfo) -> float | None:
    goal = getattr(campaign, "goal_total", None)
    starts, ends = getattr(campaign, "starts_at", None), getattr(campaign, "ends_at", None)
    if goal is None or starts is None or ends is None:
        return None
    start = starts.replace(tzinfo=zone).astimezone(UTC)
    end = ends.replace(tzinfo=zone).astimezone(UTC)
    if end <= start:
        return None
    elapsed = min(1.0, max(0.0, (now - start) / (end - start)))
    return float(goal) * float(elapsed)


def _fits_any(creative_sizes: list[str], slots: list[tuple[str, ...]]) -> bool:
    """Whether some active creative fits some assigned slot, as the decision engine judges it."""
    return any(
        size == FLUID or FLUID in slot or size in slot for size in creative_sizes for slot in slots
    )

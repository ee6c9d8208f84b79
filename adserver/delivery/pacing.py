"""Goals, budgets and even pacing: how much of the next decisions a campaign may take part in,
and the scheduled refresh of the delivered-so-far figures that decides it.

Figures come from ``campaign_delivery`` (refreshed by the scheduled pacing job from the tallied
statistics), so enforcement is as fresh as the last tally plus pacing refresh; see docs/ for the
over-delivery bound this implies.
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Connection, Engine, and_, or_, select, text

from adserver.core.clock import UTC_ZONE, flight_instant, local_day_bounds
from adserver.core.db import bump_for_pacing, insert_for
from adserver.core.models import Campaign, CampaignDelivery, table

#: Never throttle an even-paced campaign below this share, so it can catch up if traffic drops.
MIN_THROTTLE = 0.01
#: How hard a campaign ahead of its even line is held back: its share of decisions falls by
#: e^-40 per day of delivery it is ahead (0.37 at a fortieth of a day, 0.02 at a tenth), so it
#: stays within a few per cent of a day's share of the line however much traffic it could take,
#: where a gentler curve let it run days ahead and finish early (``bench/pacing.py`` shows it).
AHEAD_GAIN = 40.0
FIGURES = ("impressions", "clicks", "spend_nanos")


def throttle(campaign: Any, delivery: Any | None, now: float, zone: ZoneInfo) -> float:
    """1.0 to serve freely, 0.0 when a goal or budget is met, in between to pace evenly."""
    if delivery is None:
        return 1.0
    today = datetime.fromtimestamp(now, zone).date().isoformat()
    same_day = delivery.day == today
    delivered = _goal_figure(campaign.goal_kind, delivery.impressions, delivery.clicks)
    delivered_today = (
        _goal_figure(campaign.goal_kind, delivery.today_impressions, delivery.today_clicks)
        if same_day
        else 0
    )
    if campaign.budget_micros is not None and delivery.spend_nanos >= campaign.budget_micros * 1000:
        return 0.0
    if campaign.goal_total is not None and delivered >= campaign.goal_total:
        return 0.0
    if campaign.goal_daily is not None and delivered_today >= campaign.goal_daily:
        return 0.0
    if campaign.pacing != "even" or campaign.goal_total is None:
        return 1.0
    if campaign.starts_at is None or campaign.ends_at is None:
        return 1.0
    start = flight_instant(campaign.starts_at, campaign.starts_offset, zone)
    end = flight_instant(campaign.ends_at, campaign.ends_offset, zone)
    assert start is not None and end is not None
    if end <= start or now <= start:
        return 1.0
    elapsed = min(1.0, (now - start) / (end - start))
    target: float = campaign.goal_total * elapsed
    if delivered <= target:
        return 1.0
    # How far ahead, in days of even delivery: a gap measured against what is due so far
    # would let a campaign run a fixed share ahead, which by the end is days of its goal.
    daily_share = campaign.goal_total * 86400 / (end - start)
    ahead = (delivered - target) / daily_share
    return MIN_THROTTLE + (1.0 - MIN_THROTTLE) * math.exp(-AHEAD_GAIN * ahead)


def clock_bound() -> ColumnElement[bool]:
    """The campaigns whose ``throttle`` the clock changes between two pacing refreshes: an even
    pace follows the share of the flight gone by, and a daily goal starts afresh at the site's
    midnight. Every other campaign's throttle changes only with its figures or its row."""
    c = table(Campaign).c
    return or_(
        and_(
            c.pacing == "even",
            c.goal_total.is_not(None),
            c.starts_at.is_not(None),
            c.ends_at.is_not(None),
        ),
        c.goal_daily.is_not(None),
    )


def figure_bound() -> ColumnElement[bool]:
    """The campaigns whose ``throttle`` reads their delivered figures: a budget, or a goal in
    all or per day. Every other campaign serves freely whatever it delivered."""
    c = table(Campaign).c
    return or_(c.budget_micros.is_not(None), c.goal_total.is_not(None), c.goal_daily.is_not(None))


def delivered(connection: Connection) -> dict[int, tuple[Any, ...]]:
    """The delivered figures of each active campaign whose throttle reads them: what a serving
    process compares after a pacing bump, to read again only the campaigns whose figures
    changed."""
    delivery, campaign = table(CampaignDelivery), table(Campaign)
    rows = connection.execute(
        select(delivery)
        .join(campaign, campaign.c.id == delivery.c.campaign_id)
        .where(campaign.c.status == "active", figure_bound())
    )
    return {int(row[0]): tuple(row[1:]) for row in rows}


def stop_reason(campaign: Any, delivery: Any | None, now: float, zone: ZoneInfo) -> str:
    """Why ``throttle`` gave 0.0, as explain's reason code."""
    if (
        delivery is not None
        and campaign.budget_micros is not None
        and delivery.spend_nanos >= campaign.budget_micros * 1000
    ):
        return "budget_spent"
    return "goal_reached"


def _goal_figure(kind: str | None, impressions: int, clicks: int) -> int:
    return clicks if kind == "clicks" else impressions


def refresh_delivery(engine: Engine, *, now: float) -> int:
    """Recompute ``campaign_delivery`` from the hourly statistics; returns campaigns changed.

    "Today" is the campaign's site-local day (the site of its first slot, else of its
    delivery). When the figures of a campaign whose throttle reads them changed
    (``figure_bound``), the inventory version is bumped in the same transaction so every server
    process reads those campaigns again (``bump_for_pacing``). The figures of the others (no
    goal, no budget: a house ad, a flat-fee sponsorship) are written for the dashboards without
    a bump: they change every minute the campaign serves and would change no decision.
    """
    with engine.begin() as connection:
        zones: dict[int, ZoneInfo] = {}
        for row in connection.execute(
            text(
                "SELECT cs.campaign_id, site.timezone FROM campaign_slot cs "
                "JOIN slot ON slot.id = cs.slot_id JOIN site ON site.id = slot.site_id "
                "ORDER BY cs.campaign_id, cs.slot_id"
            )
        ):
            zones.setdefault(int(row.campaign_id), ZoneInfo(row.timezone))
        # Lifetime sums from the daily rollups: the same sums as the hourly rows (written in
        # the same transactions), a 24th of the rows to read every minute.
        totals = connection.execute(
            text(
                "SELECT campaign_id, min(site_id) AS site_id, sum(impressions) AS impressions, "
                "sum(clicks) AS clicks, sum(spend_nanos) AS spend_nanos FROM daily_stat "
                "WHERE campaign_id <> 0 GROUP BY campaign_id"
            )
        ).all()
        site_zones = {
            int(row.id): ZoneInfo(row.timezone)
            for row in connection.execute(text("SELECT id, timezone FROM site"))
        }
        # Two days back covers "today" in every zone (UTC-12 to UTC+14).
        recent: dict[int, list[Any]] = defaultdict(list)
        for row in connection.execute(
            text(
                "SELECT campaign_id, hour, sum(impressions) AS impressions, sum(clicks) AS clicks, "
                "sum(spend_nanos) AS spend_nanos FROM hourly_stat "
                "WHERE campaign_id <> 0 AND hour >= :since GROUP BY campaign_id, hour"
            ),
            {"since": int(now) - 2 * 86400},
        ):
            recent[int(row.campaign_id)].append(row)
        fresh: dict[int, dict[str, Any]] = {}
        for row in totals:
            campaign_id = int(row.campaign_id)
            zone = zones.get(campaign_id) or site_zones.get(int(row.site_id), UTC_ZONE)
            day, start, end = local_day_bounds(now, zone)
            figures: dict[str, Any] = {"campaign_id": campaign_id, "day": day}
            for name in FIGURES:
                figures[name] = int(getattr(row, name) or 0)
                figures[f"today_{name}"] = sum(
                    int(getattr(r, name) or 0) for r in recent[campaign_id] if start <= r.hour < end
                )
            fresh[campaign_id] = figures
        delivery = table(CampaignDelivery)
        current = {
            int(row.campaign_id): dict(row._mapping) for row in connection.execute(select(delivery))
        }
        changed = [figures for cid, figures in sorted(fresh.items()) if current.get(cid) != figures]
        if changed:
            statement = insert_for(connection)(delivery)
            statement = statement.on_conflict_do_update(
                index_elements=["campaign_id"],
                set_={c.name: statement.excluded[c.name] for c in delivery.columns},
            )
            connection.execute(statement, changed)
            bound = set(
                connection.execute(select(table(Campaign).c.id).where(figure_bound())).scalars()
            )
            if any(row["campaign_id"] in bound for row in changed):
                bump_for_pacing(connection)
        return len(changed)

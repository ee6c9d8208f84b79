"""Goals, budgets and even pacing: how much of the next decisions a campaign may take part in.

Figures come from ``campaign_delivery`` (refreshed by the scheduled pacing job from the tallied
statistics), so enforcement is as fresh as the last tally plus pacing refresh; see docs/ for the
over-delivery bound this implies.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

#: Never throttle an even-paced campaign below this share, so it can catch up if traffic drops.
MIN_THROTTLE = 0.05


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
    start = campaign.starts_at.replace(tzinfo=zone).timestamp()
    end = campaign.ends_at.replace(tzinfo=zone).timestamp()
    if end <= start or now <= start:
        return 1.0
    elapsed = min(1.0, (now - start) / (end - start))
    target: float = campaign.goal_total * elapsed
    if delivered <= target:
        return 1.0
    ahead = target / delivered
    return max(MIN_THROTTLE, ahead * ahead * ahead * ahead)


def _goal_figure(kind: str | None, impressions: int, clicks: int) -> int:
    return clicks if kind == "clicks" else impressions

"""Why each campaign assigned to a slot did or did not fill it, for a publisher's admin.

``decide(..., explain=True)`` makes the real decision on its slower path and notes what only the
decision itself knows (a throttle's draw, a page rule, a lost roadblock draw); everything else
(status, flight, targeting, caps, sizes, tiers) is worked out here afresh, so the usual path
pays nothing for explaining.
"""

from __future__ import annotations

from typing import Any

from adserver.delivery.decide import (
    TIER_RANK,
    CampaignSpec,
    DecideRequest,
    DecideResult,
    Decision,
    ReaderContext,
    allowed_sizes,
    capped,
    fits,
    targeting_reason,
)

#: Every reason code, in the order they are checked (the first that applies is given).
REASONS = (
    "paused",
    "archived",
    "pending_approval",
    "not_started",
    "ended",
    "goal_reached",
    "budget_spent",
    "paced",
    "capped",
    "targeting_path",
    "targeting_keyword",
    "targeting_device",
    "targeting_country",
    "targeting_day",
    "targeting_hour",
    "no_fitting_creative",
    "page_rule",
    "lower_tier",
    "lost_draw",
)


def explain(result: DecideResult, request: DecideRequest) -> dict[str, list[dict[str, Any]]]:
    """Per requested slot, every campaign assigned to it: ``chosen`` or ``dropped`` with the
    first reason code."""
    site = result.site
    context = ReaderContext(request, site.timezone)
    notes = result.notes or {}
    answer: dict[str, list[dict[str, Any]]] = {}
    for wanted in request.slots:
        slot = site.slots.get(wanted.name)
        if slot is None or wanted.name in answer:
            continue
        sizes = slot.sizes if wanted.sizes is None else allowed_sizes(slot.sizes, wanted.sizes)
        chosen = result.decisions.get(wanted.name)
        slot_notes = notes.get(wanted.name, {})
        entries = []
        for tier in slot.tiers:
            for campaign in tier:
                if chosen is not None and chosen.campaign.id == campaign.id:
                    entries.append(_entry(campaign.id, campaign.name, None))
                else:
                    reason = _reason(campaign, context, sizes, chosen, slot_notes)
                    entries.append(_entry(campaign.id, campaign.name, reason))
        entries.extend(_entry(cid, name, reason) for cid, name, reason in slot.dropped)
        answer[wanted.name] = entries
    return answer


def _entry(campaign_id: int, name: str, reason: str | None) -> dict[str, Any]:
    outcome = "chosen" if reason is None else "dropped"
    return {"campaign": campaign_id, "name": name, "outcome": outcome, "reason": reason}


def _reason(
    campaign: CampaignSpec,
    context: ReaderContext,
    sizes: tuple[str, ...],
    chosen: Decision | None,
    notes: dict[int, str],
) -> str:
    now = context.request.now
    if now < campaign.opens:
        return "not_started"
    if now >= campaign.closes:
        return "ended"
    if campaign.targeting.constrained:
        reason = targeting_reason(campaign.targeting, context)
        if reason is not None:
            return reason
    request = context.request
    if campaign.fc_count is not None and request.frequency and capped(campaign, request):
        return "capped"
    if not any(fits(creative, sizes) for creative in campaign.creatives):
        return "no_fitting_creative"
    noted = notes.get(campaign.id)
    if noted is not None:
        return noted
    if chosen is None:
        return "lost_draw"
    rank, winner = TIER_RANK[campaign.tier], TIER_RANK[chosen.campaign.tier]
    if rank > winner:
        return "lower_tier"
    if rank < winner or (chosen.campaign.roadblock and not campaign.roadblock):
        return "page_rule"
    return "lost_draw"

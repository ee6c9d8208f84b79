"""A snapshot brought up to date by re-reading only the campaigns that changed.

A full rebuild reads and compiles every campaign: seconds with 10,000 of them, which is why
rebuilds rest between runs and why an edit used to wait about 20 s to serve. The service layer
names every entity it writes in the change history, in the same transaction as its inventory
bump, and counts those bumps apart (``core.db.bump_for_edit``). When every bump since a
snapshot was such an edit, and the history names only campaigns and creatives, the snapshot is
patched: those campaigns are read again, and only the slots (and sites) they were or are now
assigned to are rebuilt; every other site keeps its compiled specs. Anything else (a site or a
slot changed, a bump from elsewhere such as the pacing job, too many edits at once) takes the
full rebuild."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Collection
from typing import Any

from sqlalchemy import Connection, select

from adserver.core.models import (
    Campaign,
    CampaignDelivery,
    CampaignSlot,
    Change,
    Creative,
    table,
)

# The full build's helpers, by module: inventory imports this module for its refresh.
from adserver.delivery import inventory as full
from adserver.delivery import pacing, utm
from adserver.delivery.decide import CampaignSpec, CreativeSpec, SiteSpec, Snapshot

#: More changed campaigns than this at once: a full rebuild is as cheap.
MAX_CAMPAIGNS = 200
#: History entities whose changes serving never sees (an advertiser's archiving names each of
#: its campaigns as well).
UNSERVED = frozenset({"advertiser", "user", "token", "share_link", "report_schedule"})

CHANGES, CAMPAIGNS, CREATIVES = table(Change), table(Campaign), table(Creative)
CAMPAIGN_SLOTS, DELIVERY = table(CampaignSlot), table(CampaignDelivery)


def changed_campaigns(
    connection: Connection, snapshot: Snapshot, *, since: int
) -> tuple[set[int], int] | None:
    """The campaigns the history names after change ``since`` (a creative by its campaign,
    before and after), and the newest change id; None when a full rebuild is needed."""
    rows = connection.execute(
        select(CHANGES.c.id, CHANGES.c.entity, CHANGES.c.entity_id)
        .where(CHANGES.c.id > since)
        .order_by(CHANGES.c.id)
        .limit(MAX_CAMPAIGNS + 1)
    ).all()
    if len(rows) > MAX_CAMPAIGNS:
        return None
    campaigns: set[int] = set()
    creatives: set[int] = set()
    for row in rows:
        if row.entity == "campaign":
            campaigns.add(int(row.entity_id))
        elif row.entity == "creative":
            creatives.add(int(row.entity_id))
        elif row.entity not in UNSERVED:
            return None
    for creative_id in creatives:
        known = snapshot.creatives.get(creative_id)
        if known is not None:
            campaigns.add(known.campaign_id)
    if creatives:
        campaigns.update(
            connection.execute(
                select(CREATIVES.c.campaign_id).where(CREATIVES.c.id.in_(creatives))
            ).scalars()
        )
    return campaigns, max((row.id for row in rows), default=since)


def last_change(connection: Connection) -> int:
    """The newest change id: a snapshot built after reading it covers every change up to it."""
    newest = connection.execute(select(CHANGES.c.id).order_by(CHANGES.c.id.desc()).limit(1))
    return int(newest.scalar() or 0)


def apply_changes(
    connection: Connection,
    snapshot: Snapshot,
    campaign_ids: Collection[int],
    *,
    version: int,
    base_url: str,
    now: float,
    reuse: full.Reuse,
) -> Snapshot:
    """``snapshot`` with ``campaign_ids`` read again: what a full rebuild would give for them,
    everything else kept as it was."""
    ids = sorted(campaign_ids)
    rows = connection.execute(select(Campaign).where(CAMPAIGNS.c.id.in_(ids))).all()
    active = {row.id: row for row in rows if row.status == "active"}
    delivery = {
        row.campaign_id: row
        for row in connection.execute(
            select(CampaignDelivery).where(DELIVERY.c.campaign_id.in_(ids))
        ).all()
    }
    performance = full._creative_performance(
        connection, [c.id for c in active.values() if c.rotation == "ctr"]
    )
    by_campaign: dict[int, list[CreativeSpec]] = defaultdict(list)
    sources = utm.sources(connection, [c.id for c in active.values() if c.utm])
    for row in connection.execute(
        select(*(column for column in CREATIVES.c if column.name != "image")).where(
            CREATIVES.c.campaign_id.in_(list(active)), CREATIVES.c.status == "active"
        )
    ).all():
        landing = utm.landing(row, active[row.campaign_id], sources.get(row.campaign_id))
        by_campaign[row.campaign_id].append(
            reuse.creative(row, base_url, performance.get(row.id, (0, 0)), landing)
        )
    undeliverable = full._undeliverable(connection, active, by_campaign, only=ids)
    assigned: dict[int, list[int]] = defaultdict(list)
    dropped: dict[int, list[tuple[int, str, str]]] = defaultdict(list)
    for slot_id, campaign_id in connection.execute(
        select(CAMPAIGN_SLOTS.c.slot_id, CAMPAIGN_SLOTS.c.campaign_id)
        .where(CAMPAIGN_SLOTS.c.campaign_id.in_(ids))
        .order_by(CAMPAIGN_SLOTS.c.campaign_id)
    ).all():
        if campaign_id in active and by_campaign.get(campaign_id):
            assigned[slot_id].append(campaign_id)
        elif campaign_id in undeliverable:
            dropped[slot_id].append(undeliverable[campaign_id])

    changed = set(ids)
    sites: dict[str, SiteSpec] = {}
    for key, site in snapshot.sites.items():
        per_site: dict[int, CampaignSpec] = {}
        slots = dict(site.slots)
        for name, slot in site.slots.items():
            before = [c for tier in slot.tiers for c in tier]
            if not (
                slot.id in assigned
                or slot.id in dropped
                or any(c.id in changed for c in before)
                or any(d[0] in changed for d in slot.dropped)
            ):
                continue
            specs = [c for c in before if c.id not in changed]
            drops = [d for d in slot.dropped if d[0] not in changed] + dropped.get(slot.id, [])
            for campaign_id in assigned.get(slot.id, ()):
                spec = per_site.get(campaign_id)
                if spec is None:
                    campaign = active[campaign_id]
                    throttle = pacing.throttle(
                        campaign, delivery.get(campaign_id), now, site.timezone
                    )
                    if throttle <= 0:
                        reason = pacing.stop_reason(
                            campaign, delivery.get(campaign_id), now, site.timezone
                        )
                        drops.append((campaign_id, campaign.name, reason))
                        continue
                    spec = full._campaign_spec(
                        campaign,
                        tuple(by_campaign[campaign_id]),
                        site.timezone,
                        throttle,
                        reuse.targeting(campaign.targeting),
                    )
                    per_site[campaign_id] = spec
                specs.append(spec)
            slots[name] = dataclasses.replace(
                slot, tiers=full._group_by_tier(specs), dropped=tuple(drops)
            )
        sites[key] = site if slots == dict(site.slots) else dataclasses.replace(site, slots=slots)

    creatives: dict[int, Any] = {
        cid: spec for cid, spec in snapshot.creatives.items() if spec.campaign_id not in changed
    }
    for specs_of in by_campaign.values():
        for creative in specs_of:
            creatives[creative.id] = creative
    return dataclasses.replace(
        snapshot,
        version=version,
        sites=sites,
        creatives=creatives,
        sites_by_id={site.id: site for site in sites.values()},
    )

"""A snapshot brought up to date by re-reading only the campaigns and sites that changed.

A full rebuild reads and compiles every campaign: seconds with 10,000 of them, which is why
rebuilds rest between runs and why an edit used to wait about 20 s to serve. The service layer
names every entity it writes in the change history, in the same transaction as its inventory
bump, and counts those bumps apart (``core.db.bump_for_edit``). When every bump since a
snapshot was such an edit, the snapshot is patched: the campaigns named (a creative by its
campaign) are read again, and only the slots they were or are now booked on are rebuilt; each
site named, or with a slot named, has its whole spec built again by ``inventory.build_sites``
(its domains, zone, slots and the campaigns booked on them), and one archived or deleted
leaves the snapshot under its key. Every other site keeps its compiled specs. Anything else (a
bump from elsewhere such as the pacing job, too many changes at once) takes the full rebuild.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping

from sqlalchemy import Connection, select

from adserver.core.models import Campaign, CampaignSlot, Change, Creative, Site, Slot, table

# The full build's helpers, by module: inventory imports this module for its refresh.
from adserver.delivery import inventory as full
from adserver.delivery.decide import CampaignSpec, CreativeSpec, SiteSpec, Snapshot

#: More changes than this at once: a full rebuild is as cheap.
MAX_CHANGES = 200
#: History entities whose changes serving never sees (an advertiser's archiving names each of
#: its campaigns as well).
UNSERVED = frozenset({"advertiser", "user", "token", "share_link", "report_schedule"})

CHANGES, CAMPAIGNS, CREATIVES = table(Change), table(Campaign), table(Creative)
CAMPAIGN_SLOTS, SITES, SLOTS = table(CampaignSlot), table(Site), table(Slot)


@dataclasses.dataclass(frozen=True, slots=True)
class Changes:
    """What the history names since a snapshot, as the work of bringing it up to date."""

    #: Campaigns to read again (a creative's by its campaign, before and after).
    campaigns: frozenset[int]
    #: Sites whose spec is built again: those named, and those of the slots named.
    sites: frozenset[int]
    #: The newest change id covered.
    mark: int


def changes_since(connection: Connection, snapshot: Snapshot, *, since: int) -> Changes | None:
    """The campaigns and sites the history names after change ``since``; None when a full
    rebuild is needed."""
    rows = connection.execute(
        select(CHANGES.c.id, CHANGES.c.entity, CHANGES.c.entity_id)
        .where(CHANGES.c.id > since)
        .order_by(CHANGES.c.id)
        .limit(MAX_CHANGES + 1)
    ).all()
    if len(rows) > MAX_CHANGES:
        return None
    campaigns: set[int] = set()
    creatives: set[int] = set()
    site_keys: set[str] = set()
    slot_ids: set[int] = set()
    for row in rows:
        if row.entity == "campaign":
            campaigns.add(int(row.entity_id))
        elif row.entity == "creative":
            creatives.add(int(row.entity_id))
        elif row.entity == "site":
            site_keys.add(str(row.entity_id))  # a site is named by its key
        elif row.entity == "slot":
            slot_ids.add(int(row.entity_id))
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
    return Changes(
        campaigns=frozenset(campaigns),
        sites=frozenset(_sites_of(connection, snapshot, site_keys, slot_ids)),
        mark=max((row.id for row in rows), default=since),
    )


def _sites_of(
    connection: Connection, snapshot: Snapshot, keys: set[str], slot_ids: set[int]
) -> set[int]:
    """The ids of the sites with these keys or slots, as the snapshot has them (a site or slot
    deleted since is dropped from there) and as the database has them now (a new one)."""
    found = {snapshot.sites[key].id for key in keys if key in snapshot.sites}
    if keys:
        found.update(connection.execute(select(SITES.c.id).where(SITES.c.key.in_(keys))).scalars())
    if slot_ids:
        found.update(
            site.id
            for site in snapshot.sites.values()
            if any(slot.id in slot_ids for slot in site.slots.values())
        )
        found.update(
            connection.execute(select(SLOTS.c.site_id).where(SLOTS.c.id.in_(slot_ids))).scalars()
        )
    return found


def last_change(connection: Connection) -> int:
    """The newest change id: a snapshot built after reading it covers every change up to it."""
    newest = connection.execute(select(CHANGES.c.id).order_by(CHANGES.c.id.desc()).limit(1))
    return int(newest.scalar() or 0)


def apply_changes(
    connection: Connection,
    snapshot: Snapshot,
    changes: Changes,
    *,
    version: int,
    base_url: str,
    now: float,
    reuse: full.Reuse,
) -> Snapshot:
    """``snapshot`` with the changed campaigns read again and the changed sites built again:
    what a full rebuild would give for them, everything else kept as it was."""
    sites: dict[str, SiteSpec] = dict(snapshot.sites)
    creatives: Mapping[int, CreativeSpec] = snapshot.creatives
    if changes.campaigns:
        sites, creatives = _patch_campaigns(
            connection,
            snapshot,
            changes.campaigns,
            rebuilt=changes.sites,
            base_url=base_url,
            now=now,
            reuse=reuse,
        )
    if changes.sites:
        built = full.build_sites(connection, changes.sites, base_url=base_url, now=now, reuse=reuse)
        # By id: a site archived or deleted since leaves its old key with it.
        sites = {key: site for key, site in sites.items() if site.id not in changes.sites}
        sites.update((site.key, site) for site in built.values())
    return dataclasses.replace(
        snapshot,
        version=version,
        sites=sites,
        creatives=creatives,
        sites_by_id={site.id: site for site in sites.values()},
    )


def _patch_campaigns(
    connection: Connection,
    snapshot: Snapshot,
    campaign_ids: Collection[int],
    *,
    rebuilt: Collection[int],
    base_url: str,
    now: float,
    reuse: full.Reuse,
) -> tuple[dict[str, SiteSpec], dict[int, CreativeSpec]]:
    """The snapshot's sites and creatives with ``campaign_ids`` read again, and only the slots
    they were or are now booked on rebuilt; the sites in ``rebuilt`` are left as they were
    (their whole spec is built again anyway)."""
    ids = sorted(campaign_ids)
    read = full.read_campaigns(connection, base_url=base_url, reuse=reuse, only=ids)
    booked = connection.execute(
        select(CAMPAIGN_SLOTS.c.slot_id, CAMPAIGN_SLOTS.c.campaign_id)
        .where(CAMPAIGN_SLOTS.c.campaign_id.in_(ids))
        .order_by(CAMPAIGN_SLOTS.c.campaign_id)
    ).all()
    assigned, dropped = full.assignments(booked, read)

    changed = set(ids)
    sites: dict[str, SiteSpec] = {}
    for key, site in snapshot.sites.items():
        if site.id in rebuilt:
            sites[key] = site
            continue
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
                    found = full.campaign_on_site(campaign_id, read, site.timezone, now, reuse)
                    if not isinstance(found, CampaignSpec):
                        drops.append(found)
                        continue
                    spec = per_site[campaign_id] = found
                specs.append(spec)
            slots[name] = dataclasses.replace(
                slot, tiers=full._group_by_tier(specs), dropped=tuple(drops)
            )
        sites[key] = site if slots == dict(site.slots) else dataclasses.replace(site, slots=slots)

    creatives = {
        cid: spec for cid, spec in snapshot.creatives.items() if spec.campaign_id not in changed
    }
    creatives.update(read.specs)
    return sites, creatives

"""The in-memory snapshot of deliverable campaigns, and the holder that swaps it atomically.

A snapshot is built aside (in a worker thread) and published by replacing one reference, so a
decision in flight keeps the snapshot it started with and is never blocked by a rebuild. The
holder patches in the service layer's edits as they come (every admin write bumps the shared
inventory version and names what it changed), and after the pacing job's bumps it reads again
the campaigns whose delivered figures changed. Every ``max_age`` seconds it reads again the
campaigns that change with nothing written (throttles that follow the clock, click rates the
tally adds to), and it rebuilds everything on any other bump and at least every ``full_age``
seconds all the same.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable, Collection, Hashable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from sqlalchemy import Connection, Engine, func, or_, select

from adserver.core.clock import flight_instant
from adserver.core.db import inventory_counters, inventory_version
from adserver.core.models import (
    Campaign,
    CampaignDelivery,
    CampaignSlot,
    Creative,
    HourlyStat,
    Site,
    Slot,
    table,
)
from adserver.delivery import incremental, pacing, render, utm
from adserver.delivery.decide import (
    TIER_RANK,
    CampaignSpec,
    CreativeSpec,
    SiteSpec,
    SlotSpec,
    Snapshot,
    Targeting,
    smoothed_ctr,
)
from adserver.delivery.targeting import compile_targeting


def build_snapshot(
    connection: Connection, *, base_url: str, now: float, reuse: Reuse | None = None
) -> Snapshot:
    """Read everything a decision needs in one pass and compile it; with ``reuse``, creatives
    whose rows did not change since the last build keep their compiled specs."""
    reuse = reuse or Reuse()
    version = inventory_version(connection)
    # Archived sites and slots are kept for their statistics, and serve nothing.
    sites = connection.execute(select(Site).where(table(Site).c.status != "archived")).all()
    slots = connection.execute(select(Slot).where(table(Slot).c.status != "archived")).all()
    read = read_campaigns(connection, base_url=base_url, reuse=reuse)
    booked = select(table(CampaignSlot).c.slot_id, table(CampaignSlot).c.campaign_id)
    assigned, dropped = assignments(connection.execute(booked).all(), read)
    slots_by_site: dict[int, list[Any]] = defaultdict(list)
    for slot in slots:
        slots_by_site[slot.site_id].append(slot)
    site_specs = {
        site.key: site_spec(site, slots_by_site[site.id], assigned, dropped, read, now, reuse)
        for site in sites
    }
    reuse.finish()
    return Snapshot(
        version=version,
        sites=site_specs,
        creatives=read.specs,
        sites_by_id={site.id: site for site in site_specs.values()},
    )


def build_sites(
    connection: Connection, site_ids: Collection[int], *, base_url: str, now: float, reuse: Reuse
) -> dict[int, SiteSpec]:
    """The specs of these sites alone, as ``build_snapshot`` would give them, by site id: only
    the campaigns booked on their slots are read. A site that is gone or archived is left
    out."""
    sites_table, slots_table = table(Site), table(Slot)
    ids = sorted(site_ids)
    sites = connection.execute(
        select(Site).where(sites_table.c.id.in_(ids), sites_table.c.status != "archived")
    ).all()
    slots = connection.execute(
        select(Slot).where(slots_table.c.site_id.in_(ids), slots_table.c.status != "archived")
    ).all()
    campaign_slots = table(CampaignSlot)
    booked = connection.execute(
        select(campaign_slots.c.slot_id, campaign_slots.c.campaign_id)
        .where(campaign_slots.c.slot_id.in_([slot.id for slot in slots]))
        .order_by(campaign_slots.c.campaign_id)
    ).all()
    read = read_campaigns(
        connection,
        base_url=base_url,
        reuse=reuse,
        only=sorted({campaign_id for _, campaign_id in booked}),
    )
    assigned, dropped = assignments(booked, read)
    slots_by_site: dict[int, list[Any]] = defaultdict(list)
    for slot in slots:
        slots_by_site[slot.site_id].append(slot)
    return {
        site.id: site_spec(site, slots_by_site[site.id], assigned, dropped, read, now, reuse)
        for site in sites
    }


@dataclass(frozen=True, slots=True)
class Campaigns:
    """The active campaigns one build reads, with what their specs are made of."""

    #: Active campaigns' rows by id.
    active: dict[int, Any]
    #: Delivery figures (for pacing) by campaign id.
    delivery: dict[int, Any]
    #: Each active campaign's active creatives, compiled.
    creatives: dict[int, list[CreativeSpec]]
    #: The same creatives by their own id.
    specs: dict[int, CreativeSpec]
    #: Campaigns that cannot deliver at all, with why (``_undeliverable``).
    undeliverable: dict[int, tuple[int, str, str]]


def read_campaigns(
    connection: Connection, *, base_url: str, reuse: Reuse, only: list[int] | None = None
) -> Campaigns:
    """Every campaign's (or, with ``only``, those campaigns') rows and compiled creatives: the
    part of a build that does not depend on the site."""
    campaign, creative = table(Campaign), table(Creative)
    active_rows = select(Campaign).where(campaign.c.status == "active")
    delivery_rows = select(CampaignDelivery)
    creative_rows = select(*(column for column in creative.c if column.name != "image")).where(
        creative.c.status == "active"
    )
    if only is not None:
        active_rows = active_rows.where(campaign.c.id.in_(only))
        delivery_rows = delivery_rows.where(table(CampaignDelivery).c.campaign_id.in_(only))
        creative_rows = creative_rows.where(creative.c.campaign_id.in_(only))
    active = {row.id: row for row in connection.execute(active_rows).all()}
    delivery = {row.campaign_id: row for row in connection.execute(delivery_rows).all()}
    performance = _creative_performance(
        connection, [c.id for c in active.values() if c.rotation == "ctr"]
    )
    specs: dict[int, CreativeSpec] = {}
    by_campaign: dict[int, list[CreativeSpec]] = defaultdict(list)
    sources = utm.sources(connection, [c.id for c in active.values() if c.utm])
    for row in connection.execute(creative_rows).all():
        if row.campaign_id not in active:
            continue
        landing = utm.landing(row, active[row.campaign_id], sources.get(row.campaign_id))
        spec = reuse.creative(row, base_url, performance.get(row.id, (0, 0)), landing)
        specs[spec.id] = spec
        by_campaign[spec.campaign_id].append(spec)
    undeliverable = _undeliverable(connection, active, by_campaign, only=only)
    return Campaigns(active, delivery, by_campaign, specs, undeliverable)


def assignments(
    booked: Iterable[tuple[int, int]], read: Campaigns
) -> tuple[dict[int, list[int]], dict[int, list[tuple[int, str, str]]]]:
    """(slot id, campaign id) pairs as the campaigns each slot may deliver, and those that
    cannot deliver at all with why, by slot id."""
    assigned: dict[int, list[int]] = defaultdict(list)
    dropped: dict[int, list[tuple[int, str, str]]] = defaultdict(list)
    for slot_id, campaign_id in booked:
        if campaign_id in read.active and read.creatives.get(campaign_id):
            assigned[slot_id].append(campaign_id)
        elif campaign_id in read.undeliverable:
            dropped[slot_id].append(read.undeliverable[campaign_id])
    return assigned, dropped


def site_spec(
    site: Any,
    slots: Iterable[Any],
    assigned: Mapping[int, list[int]],
    dropped: Mapping[int, list[tuple[int, str, str]]],
    read: Campaigns,
    now: float,
    reuse: Reuse,
) -> SiteSpec:
    """One site's spec from its row, its (serving) slots' rows and the campaigns booked on
    them; a campaign paced to nothing here is listed with the slot's dropped ones."""
    zone = ZoneInfo(site.timezone)
    per_site: dict[int, CampaignSpec] = {}
    slot_specs: dict[str, SlotSpec] = {}
    for slot in slots:
        specs = []
        drops = list(dropped.get(slot.id, ()))
        for campaign_id in assigned.get(slot.id, ()):
            spec = per_site.get(campaign_id)
            if spec is None:
                found = campaign_on_site(campaign_id, read, zone, now, reuse)
                if not isinstance(found, CampaignSpec):
                    drops.append(found)
                    continue
                spec = per_site[campaign_id] = found
            specs.append(spec)
        slot_specs[slot.name] = SlotSpec(
            id=slot.id,
            name=slot.name,
            sizes=tuple(slot.sizes),
            tiers=_group_by_tier(specs),
            fallback_html=slot.fallback_html,
            dropped=tuple(drops),
        )
    return SiteSpec(
        id=site.id,
        key=site.key,
        timezone=zone,
        domains=frozenset(d.lower() for d in site.domains),
        slots=slot_specs,
    )


def campaign_on_site(
    campaign_id: int, read: Campaigns, zone: ZoneInfo, now: float, reuse: Reuse
) -> CampaignSpec | tuple[int, str, str]:
    """A deliverable campaign's spec on a site in ``zone`` (its flight and pacing are the
    site's local ones), or, when pacing stops it there, its entry among a slot's dropped."""
    campaign = read.active[campaign_id]
    figures = read.delivery.get(campaign_id)
    throttle = pacing.throttle(campaign, figures, now, zone)
    if throttle <= 0:
        return (campaign_id, campaign.name, pacing.stop_reason(campaign, figures, now, zone))
    return _campaign_spec(
        campaign,
        tuple(read.creatives[campaign_id]),
        zone,
        throttle,
        reuse.targeting(campaign.targeting),
    )


#: Campaign statuses as explain's reason codes; any other status reads as paused.
STATUS_REASONS = {"archived": "archived", "pending": "pending_approval", "ended": "ended"}


def _undeliverable(
    connection: Connection,
    active: dict[int, Any],
    creatives: dict[int, list[CreativeSpec]],
    *,
    only: list[int] | None = None,
) -> dict[int, tuple[int, str, str]]:
    """Campaigns that cannot deliver at all, with the reason code ``explain`` gives for them:
    their status, or (active ones) creatives only awaiting approval or none at all. With
    ``only``, among those campaigns."""
    campaign, creative = table(Campaign), table(Creative)
    found: dict[int, tuple[int, str, str]] = {}
    inactive = select(campaign.c.id, campaign.c.name, campaign.c.status).where(
        campaign.c.status != "active"
    )
    if only is not None:
        inactive = inactive.where(campaign.c.id.in_(only))
    for row in connection.execute(inactive):
        found[row.id] = (row.id, row.name, STATUS_REASONS.get(row.status, "paused"))
    silent = [cid for cid in active if not creatives.get(cid)]
    if silent:
        pending = set(
            connection.execute(
                select(creative.c.campaign_id)
                .where(creative.c.campaign_id.in_(silent), creative.c.status == "pending")
                .distinct()
            ).scalars()
        )
        for cid in silent:
            reason = "pending_approval" if cid in pending else "no_fitting_creative"
            found[cid] = (cid, active[cid].name, reason)
    return found


def timed_campaigns(connection: Connection) -> list[int]:
    """The active campaigns whose spec changes with nothing written: a throttle that follows
    the clock (``pacing.clock_bound``), and a rotation by click rate, which reads the figures
    the tally adds to."""
    campaign = table(Campaign)
    return list(
        connection.execute(
            select(campaign.c.id)
            .where(
                campaign.c.status == "active",
                or_(pacing.clock_bound(), campaign.c.rotation == "ctr"),
            )
            .order_by(campaign.c.id)
            .limit(MAX_TIMED + 1)
        ).scalars()
    )


def _creative_performance(
    connection: Connection, campaign_ids: list[int]
) -> dict[int, tuple[int, int]]:
    """Valid impressions and clicks per creative, for the campaigns that rotate by CTR."""
    if not campaign_ids:
        return {}
    stats = table(HourlyStat)
    rows = connection.execute(
        select(stats.c.creative_id, func.sum(stats.c.impressions), func.sum(stats.c.clicks))
        .where(stats.c.campaign_id.in_(campaign_ids))
        .group_by(stats.c.creative_id)
    )
    return {int(creative): (int(imps or 0), int(clicks or 0)) for creative, imps, clicks in rows}


def _creative_spec(
    row: Any, base_url: str, performance: tuple[int, int], landing: str
) -> CreativeSpec:
    version = int(row.updated_at.timestamp()) if row.updated_at else 0
    image_url = render.asset_url(base_url, row.id, version) if row.image_type else None
    if row.kind == "html":
        markup = row.html or ""
    elif row.kind == "text":
        markup = render.text_markup(
            title=row.title or "", body=row.body or "", cta=row.cta or "", image_url=image_url
        )
    else:
        markup = render.image_markup(
            image_url=image_url or "", width=row.width, height=row.height, alt=row.name
        )
    fluid = not row.width or not row.height
    answer = render.answer_template(
        base_url=base_url,
        campaign_id=row.campaign_id,
        creative_id=row.id,
        kind=row.kind,
        width=row.width,
        height=row.height,
        markup=markup,
        trackers=tuple(row.impression_trackers or ()),
    )
    return CreativeSpec(
        id=row.id,
        campaign_id=row.campaign_id,
        kind=row.kind,
        width=row.width,
        height=row.height,
        weight=row.weight,
        size="fluid" if fluid else f"{row.width}x{row.height}",
        click_url=landing,
        ctr=smoothed_ctr(*performance),
        impressions=performance[0],
        clicks=performance[1],
        answer=answer,
    )


def _campaign_spec(
    campaign: Any,
    creatives: tuple[CreativeSpec, ...],
    zone: ZoneInfo,
    throttle: float,
    targeting: Targeting,
) -> CampaignSpec:
    return CampaignSpec(
        id=campaign.id,
        advertiser_id=campaign.advertiser_id,
        tier=campaign.tier,
        weight=campaign.weight,
        starts_at=flight_instant(campaign.starts_at, campaign.starts_offset, zone),
        ends_at=flight_instant(campaign.ends_at, campaign.ends_offset, zone),
        rotation=campaign.rotation,
        creatives=creatives,
        targeting=targeting,
        fc_count=campaign.fc_count,
        fc_per=campaign.fc_per,
        throttle=throttle,
        name=campaign.name,
        labels=frozenset(str(label).lower() for label in campaign.labels or ()),
        roadblock=bool(campaign.roadblock) and campaign.tier == "sponsorship",
    )


def _group_by_tier(specs: list[CampaignSpec]) -> tuple[tuple[CampaignSpec, ...], ...]:
    groups: dict[int, list[CampaignSpec]] = defaultdict(list)
    for spec in specs:
        groups[TIER_RANK[spec.tier]].append(spec)
    return tuple(tuple(groups[rank]) for rank in sorted(groups))


class Reuse:
    """The creative specs and compiled targetings of the last full build, by the content each
    came from: a rebuild after one edit compiles only what changed, and a row that changed in
    any column is compiled afresh. Specs are kept by creative: patches and timed refreshes
    between two full builds read creatives again (a rotation by click rate every 30 s), and
    each read replaces that creative's spec rather than adding one."""

    def __init__(self) -> None:
        #: By creative id: the key of the content its spec was compiled from, and the spec.
        self._keys_last: dict[int, Hashable] = {}
        self._specs_last: dict[int, CreativeSpec] = {}
        self._keys_next: dict[int, Hashable] = {}
        self._specs_next: dict[int, CreativeSpec] = {}
        self._targetings_last: dict[bytes, Targeting] = {}
        self._targetings_next: dict[bytes, Targeting] = {}

    @property
    def kept(self) -> int:
        """The creative specs kept for the next build."""
        return len(self._specs_next)

    def creative(
        self, row: Any, base_url: str, performance: tuple[int, int], landing: str
    ) -> CreativeSpec:
        # The row's hash, not the row: keeping every column of every creative in the keys cost
        # tens of MB with 10,000 campaigns. Two contents of one id with one 64-bit hash are
        # not a risk worth the memory. JSON columns (lists) are hashed as tuples.
        content = tuple(tuple(v) if isinstance(v, list) else v for v in row)
        key = (hash(content), base_url, performance, landing)
        creative_id = row.id
        if self._keys_next.get(creative_id) == key:
            spec = self._specs_next[creative_id]
        elif self._keys_last.get(creative_id) == key:
            spec = self._specs_last[creative_id]
        else:
            spec = _creative_spec(row, base_url, performance, landing)
        self._keys_next[creative_id] = key
        self._specs_next[creative_id] = spec
        return spec

    def targeting(self, raw: dict[str, Any] | None) -> Targeting:
        """One compiled ``Targeting`` per distinct content, shared by the campaigns (and the
        sites' copies of a campaign) that have it: compiling was a quarter of a rebuild."""
        key = orjson.dumps(raw or {}, option=orjson.OPT_SORT_KEYS)
        compiled = self._targetings_next.get(key) or self._targetings_last.get(key)
        if compiled is None:
            compiled = compile_targeting(raw or {})
        self._targetings_next[key] = compiled
        return compiled

    def finish(self) -> None:
        """Keep this build's specs for the next one, and only those."""
        self._keys_last, self._keys_next = self._keys_next, {}
        self._specs_last, self._specs_next = self._specs_next, {}
        self._targetings_last, self._targetings_next = self._targetings_next, {}


#: More campaigns than this to read again on the clock's or the pacing job's account: a full
#: rebuild is as cheap.
MAX_TIMED = 1000

#: The most of a process's time rebuilds may take while campaigns keep changing: after a
#: rebuild that took d seconds, the next waits d * (1 / REBUILD_SHARE - 1). A rebuild holds the
#: GIL that decisions need (about 0.1 s with 1,000 campaigns, over 1 s with 10,000); edits at
#: form-saving speed would otherwise keep one rebuilding and take decisions' time.
REBUILD_SHARE = 0.05


class Inventory:
    """Holds the current snapshot; ``current`` is a plain attribute read, never a lock.

    Two refreshers keep it current, each in a thread of its own. ``patch`` applies the service
    layer's edits by re-reading only the campaigns and sites they name (``incremental``), with
    its own, short rest. ``rebuild_when_due`` builds everything again when something other than
    an edit or the pacing job changed the inventory or the snapshot is ``full_age`` old; after
    a pacing bump it reads again only the campaigns whose delivered figures changed, and in
    between, every ``max_age`` seconds, only the campaigns that change with nothing written
    (``timed_campaigns``). A full rebuild of 10,000 campaigns takes seconds: edits are
    patched in meanwhile, and the rebuild applies those made since it read the database before
    it publishes, so an edit never waits for a rebuild and a rebuild never takes one back. One
    lock orders the publications."""

    def __init__(
        self,
        engine: Engine,
        *,
        base_url: str,
        max_age: float = 30.0,
        full_age: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
        cpu_clock: Callable[[], float] = time.thread_time,
    ) -> None:
        self._engine = engine
        self._cpu_clock = cpu_clock
        self._base_url = base_url
        self._max_age = max_age
        self._full_age = full_age
        self._clock = clock
        self._built_at = 0.0
        #: When the campaigns that change with nothing written were last read (``time.time``).
        self._timed_at = 0.0
        self._rest_until = 0.0
        self._patch_rest_until = 0.0
        self._reuse = Reuse()
        self._publish = threading.Lock()
        #: What the current snapshot covers: the edits and pacing counters, the other bumps of
        #: the inventory version (the version less those two), the newest change id, and the
        #: delivered figures of the campaigns whose throttle reads them (``pacing.delivered``).
        self._edits = 0
        self._paced = 0
        self._others = 0
        self._change_mark = 0
        self._figures: dict[int, tuple[Any, ...]] = {}
        #: Set when the edits since the snapshot are too many to patch.
        self._patch_refused = False
        #: Full rebuilds, patches, timed and pacing refreshes so far (``/healthz`` shows them).
        self.rebuilds = 0
        self.patches = 0
        self.timed = 0
        self.paced = 0
        self.current = Snapshot.empty()

    @property
    def edits(self) -> int:
        """The edits counter the current snapshot covers (``/healthz`` shows it)."""
        return self._edits

    def rebuild(self) -> Snapshot:
        """Build a new snapshot (blocking; run it in a thread from async code) and publish it."""
        started = self._clock()
        now = time.time()
        with self._engine.connect() as connection:
            # Read before the data: a change committed meanwhile is applied again, never lost.
            version, edits, paced = inventory_counters(connection)
            mark = incremental.last_change(connection)
            figures = pacing.delivered(connection)
            snapshot = build_snapshot(
                connection, base_url=self._base_url, now=now, reuse=self._reuse
            )
        # A connection of its own: the edits committed since the read above must be seen.
        with self._engine.connect() as connection, self._publish:
            self._edits, self._paced, self._change_mark = edits, paced, mark
            self._others = version - edits - paced
            self._figures = figures
            self._patch_refused = False
            self.current = self._covering(snapshot)
            self._apply_edits(connection)
        self.rebuilds += 1
        self._built_at = self._timed_at = now
        self._rest_from(started)
        return self.current

    def patch(self) -> None:
        """Apply the service layer's edits since the snapshot, once the last patch's rest is
        over; the edits' refresher."""
        if self._clock() < self._patch_rest_until:
            return
        cpu_started = self._cpu_clock()
        with self._engine.connect() as connection, self._publish:
            if not self._apply_edits(connection):
                return
        # A patch mostly waits on the database; its rest counts the CPU it took from
        # decisions, not that wait.
        spent = self._cpu_clock() - cpu_started
        self._patch_rest_until = self._clock() + spent * (1 / REBUILD_SHARE - 1)

    def rebuild_when_due(self) -> None:
        """Once the last rebuild's rest is over: rebuild if the snapshot is ``full_age`` old, or
        the edits since it are too many to patch, or the inventory changed other than by an
        edit or the pacing job; else read again the campaigns whose figures the pacing job
        changed, or else the timed campaigns if they are ``max_age`` old. The rebuilds'
        refresher."""
        if self._clock() < self._rest_until:
            return
        now = time.time()
        if not self._patch_refused and now - self._built_at < self._full_age:
            with self._engine.connect() as connection:
                version, edits, paced = inventory_counters(connection)
                if version - edits - paced == self._others:
                    if paced != self._paced:
                        if self._refresh_paced(connection, paced):
                            return
                    elif now - self._timed_at < self._max_age or self._refresh_timed(connection):
                        return
        self.rebuild()

    def _refresh_paced(self, connection: Connection, paced: int) -> bool:
        """Read again the campaigns whose delivered figures differ from those the snapshot was
        built with (the pacing job's bumps up to ``paced``), as a patch does an edited one;
        False when they are too many and a full rebuild should do it."""
        started = self._clock()
        figures = pacing.delivered(connection)  # after the counters: never older than they say
        known = self._figures
        changed = frozenset(cid for cid, row in figures.items() if known.get(cid) != row)
        if len(changed) > MAX_TIMED:
            return False
        with self._publish:
            self._paced = paced
            self._read_again(connection, changed, time.time())
        self._figures = figures
        self.paced += 1
        self._rest_from(started)
        return True

    def _refresh_timed(self, connection: Connection) -> bool:
        """Read the timed campaigns again into the snapshot, as a patch does an edited one;
        False when they are too many and a full rebuild should do it."""
        started, now = self._clock(), time.time()
        ids = timed_campaigns(connection)
        if len(ids) > MAX_TIMED:
            return False
        if ids:
            with self._publish:
                self._read_again(connection, ids, now)
            self.timed += 1
            self._rest_from(started)
        self._timed_at = now
        return True

    def _read_again(self, connection: Connection, campaign_ids: Iterable[int], now: float) -> None:
        """Read ``campaign_ids`` again into the current snapshot, as a patch does an edited
        campaign. Called with the publication lock held."""
        self.current = incremental.apply_changes(
            connection,
            self.current,
            incremental.Changes(frozenset(campaign_ids), frozenset(), self._change_mark),
            version=self._version(self._edits),
            base_url=self._base_url,
            now=now,
            reuse=self._reuse,
        )

    def _rest_from(self, started: float) -> None:
        """After a full rebuild, or a timed or pacing refresh, that began at ``started``: rest
        until it has taken no more than ``REBUILD_SHARE`` of the time since."""
        finished = self._clock()
        self._rest_until = finished + (finished - started) * (1 / REBUILD_SHARE - 1)

    def _apply_edits(self, connection: Connection) -> bool:
        """Patch the edits committed since the current snapshot into it; whether there were
        any. Called with the publication lock held."""
        edits = inventory_counters(connection).edits
        if edits == self._edits or self._patch_refused:
            return False
        # Only the service layer's edits since the snapshot, each named in the history.
        changes = incremental.changes_since(connection, self.current, since=self._change_mark)
        if changes is None:
            self._patch_refused = True
            return False
        self.current = incremental.apply_changes(
            connection,
            self.current,
            changes,
            version=self._version(edits),
            base_url=self._base_url,
            now=time.time(),
            reuse=self._reuse,
        )
        self._edits, self._change_mark = edits, changes.mark
        self.patches += 1
        return True

    def _version(self, edits: int) -> int:
        """The inventory version a snapshot covering ``edits`` covers."""
        return self._others + self._paced + edits

    def _covering(self, snapshot: Snapshot) -> Snapshot:
        """``snapshot`` with the version it covers: the bumps it saw, edits, pacing and others."""
        version = self._version(self._edits)
        if snapshot.version == version:
            return snapshot
        return replace(snapshot, version=version)

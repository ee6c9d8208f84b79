"""The decision engine: picks one creative per requested slot. Pure: no I/O, no clock, no globals.

``decide(snapshot, request, rng)`` depends only on its arguments, so it is tested exhaustively
with a seeded ``random.Random`` and runs in microseconds. Everything it needs was compiled into
the immutable :class:`Snapshot` by ``inventory.py``.

Order of choice: the page is decided tier by tier over all its slots (sponsorship > standard >
price > house, as in Google Ad Manager), so a page rule (``pagerules.py``) never lets a lower
tier shut out a higher one. For one slot the highest tier with an eligible campaign wins; within
it a campaign is drawn by weight; within the campaign a creative that fits is drawn by its
rotation.
"""

from __future__ import annotations

import bisect
import math
import random
import re
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import accumulate
from operator import itemgetter
from types import MappingProxyType
from typing import NamedTuple, TypeVar
from zoneinfo import ZoneInfo

from adserver.delivery import pagerules
from adserver.delivery.render import NO_ANSWER, Answer
from adserver.tracking.tokens import decision_id_prefix, new_decision_id

#: ``ctr`` rotation's prior: a creative is believed to get 1 click in ``CTR_PRIOR`` impressions
#: until its own figures say otherwise.
CTR_PRIOR = 100
TIER_RANK = {"sponsorship": 0, "standard": 1, "price": 2, "house": 3}
CAP_WINDOWS = {"hour": 3600, "day": 86400, "week": 7 * 86400}
FLUID = "fluid"

T = TypeVar("T")
#: A campaign with its creatives that fit a slot.
Pair = tuple["CampaignSpec", tuple["CreativeSpec", ...]]
#: One priority tier of a slot: campaigns with the creatives that fit it.
Tier = tuple[Pair, ...]


@dataclass(frozen=True, slots=True)
class CreativeSpec:
    id: int
    campaign_id: int
    kind: str
    width: int
    height: int
    weight: int
    #: "WxH", or "fluid" for a creative that adapts to any slot (width or height 0).
    size: str
    click_url: str
    #: Smoothed click-through rate so far (see ``smoothed_ctr``).
    ctr: float = 0.0
    #: Valid impressions and clicks so far, for ``ctr`` rotation's draws.
    impressions: int = 0
    clicks: int = 0
    #: The answer's JSON for this creative, rendered ahead by ``render.answer_template``.
    answer: Answer = NO_ANSWER


@dataclass(frozen=True, slots=True)
class Targeting:
    """Compiled targeting; an empty collection means "any"."""

    paths: re.Pattern[str] | None = None
    exclude_paths: re.Pattern[str] | None = None
    keywords: frozenset[str] = frozenset()
    exclude_keywords: frozenset[str] = frozenset()
    devices: frozenset[str] = frozenset()
    countries: frozenset[str] = frozenset()
    days: frozenset[int] = frozenset()
    hours: frozenset[int] = frozenset()
    #: False when nothing is targeted, so most campaigns skip the checks entirely.
    constrained: bool = field(init=False, repr=False, compare=False)
    #: True when days or hours are targeted: an answer that changes with the clock.
    timed: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        sets = (self.keywords, self.exclude_keywords, self.devices, self.countries)
        timed = bool(self.days or self.hours)
        constrained = self.paths is not None or self.exclude_paths is not None
        object.__setattr__(self, "constrained", constrained or any(sets) or timed)
        object.__setattr__(self, "timed", timed)


@dataclass(frozen=True, slots=True)
class CampaignSpec:
    """A deliverable campaign as seen from one site (flight bounds in that site's zone)."""

    id: int
    advertiser_id: int
    tier: str
    weight: int
    starts_at: float | None
    ends_at: float | None
    rotation: str
    creatives: tuple[CreativeSpec, ...]
    targeting: Targeting = field(default_factory=Targeting)
    fc_count: int | None = None
    fc_per: str | None = None
    #: Probability of taking part in a decision: 1.0 normally, less when even pacing throttles.
    throttle: float = 1.0
    name: str = ""
    #: Competitive exclusion: two campaigns sharing a label never share a page.
    labels: frozenset[str] = frozenset()
    #: A sponsorship that takes all of its slots the page asks for, or none of them.
    roadblock: bool = False
    #: The flight as bounds that always compare (-inf and inf for an open end).
    opens: float = field(init=False, repr=False, compare=False)
    closes: float = field(init=False, repr=False, compare=False)
    #: True when targeting, a cap or the throttle may turn the campaign away within its flight;
    #: most campaigns have none of them and skip those checks.
    gated: bool = field(init=False, repr=False, compare=False)
    #: True when the answer depends on more than the reader's context and the flight: day or
    #: hour targeting, a cap or the throttle, checked on every decision (see ``_in_context``).
    residual: bool = field(init=False, repr=False, compare=False)
    #: May fill several slots of one page: house campaigns and roadblocks.
    repeats: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "repeats", self.roadblock or self.tier == "house")
        opens = float("-inf") if self.starts_at is None else self.starts_at
        closes = float("inf") if self.ends_at is None else self.ends_at
        gated = self.targeting.constrained or self.fc_count is not None or self.throttle < 1.0
        residual = self.targeting.timed or self.fc_count is not None or self.throttle < 1.0
        object.__setattr__(self, "opens", opens)
        object.__setattr__(self, "closes", closes)
        object.__setattr__(self, "gated", gated)
        object.__setattr__(self, "residual", residual)


@dataclass(frozen=True, slots=True)
class _Targets:
    paths: bool
    keywords: bool
    devices: bool
    countries: bool
    #: A memo's key for the reader's context, read from the ``DecideRequest`` in C: only what
    #: is targeted tells one context from another. With nothing targeted, the request's site,
    #: which is the same for every request a memo sees (memos are per site, slot or page).
    key: Callable[[DecideRequest], Hashable] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        targeted = [
            name
            for name, on in (
                ("path", self.paths),
                ("keywords", self.keywords),
                ("device", self.devices),
                ("country", self.countries),
            )
            if on
        ]
        fields = DecideRequest._fields
        indices = [fields.index(name) for name in targeted or ["site"]]
        object.__setattr__(self, "key", itemgetter(*indices))

    @classmethod
    def of(cls, targeting: Iterable[Targeting]) -> _Targets:
        """The dimensions some of ``targeting`` looks at."""
        targeting = list(targeting)
        return cls(
            paths=any(t.paths is not None or t.exclude_paths is not None for t in targeting),
            keywords=any(t.keywords or t.exclude_keywords for t in targeting),
            devices=any(t.devices for t in targeting),
            countries=any(t.countries for t in targeting),
        )


def _flight_bounds(campaigns: Iterable[CampaignSpec]) -> set[float]:
    """Every finite flight start and end of ``campaigns``."""
    return {
        bound
        for campaign in campaigns
        for bound in (campaign.opens, campaign.closes)
        if -math.inf < bound < math.inf
    }


@dataclass(frozen=True, slots=True)
class SlotSpec:
    id: int
    name: str
    sizes: tuple[str, ...]
    #: Campaigns assigned to the slot, grouped by tier, highest priority first.
    tiers: tuple[tuple[CampaignSpec, ...], ...]
    fallback_html: str | None = None
    #: Campaigns assigned to the slot that cannot deliver at all, as (id, name, reason code):
    #: only ``explain`` reads them.
    dropped: tuple[tuple[int, str, str], ...] = ()
    #: ``tiers`` again, each campaign paired with its creatives that fit the slot's sizes (and
    #: left out if none does): worked out once here rather than on every decision.
    fitting: tuple[Tier, ...] = field(init=False, repr=False, compare=False)
    #: Every finite flight start and end among ``fitting``'s campaigns, sorted: between two of
    #: them, which campaigns are in flight cannot change.
    bounds: tuple[float, ...] = field(init=False, repr=False, compare=False)
    #: Which reader dimensions some campaign of ``fitting`` targets (by days and hours aside).
    targets: _Targets = field(init=False, repr=False, compare=False)
    #: Reader context (and the sizes a page narrowed the slot to, if it did) -> the campaigns in
    #: flight that its targeting admits (``_in_context``). A page is viewed over and over by
    #: readers alike, so this is worked out once per context and flight period; it never
    #: changes an outcome, only what the decision costs.
    seen: dict[Hashable, _InContext] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        fitting = _fitting_tiers(self.tiers, self.sizes)
        campaigns = [campaign for tier in fitting for campaign, _ in tier]
        bounds = _flight_bounds(campaigns)
        targets = _Targets.of(campaign.targeting for campaign in campaigns)
        object.__setattr__(self, "fitting", fitting)
        object.__setattr__(self, "bounds", tuple(sorted(bounds)))
        object.__setattr__(self, "targets", targets)


@dataclass(frozen=True, slots=True)
class SiteSpec:
    id: int
    key: str
    timezone: ZoneInfo
    domains: frozenset[str]
    slots: Mapping[str, SlotSpec]
    #: Every deliverable campaign of the site's slots by id (the labels of what a page shows).
    campaigns: Mapping[int, CampaignSpec] = field(init=False, repr=False, compare=False)
    #: Each roadblock with its creatives that fit each slot it is assigned to, by slot name.
    roadblocks: tuple[tuple[CampaignSpec, Mapping[str, tuple[CreativeSpec, ...]]], ...] = field(
        init=False, repr=False, compare=False
    )
    #: A page's list of slots -> the site's answer to it (``_resolve``): every reader of a page
    #: asks for the same slots, so their names are looked up once.
    asked: dict[tuple[SlotRequest, ...], _Page] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        campaigns: dict[int, CampaignSpec] = {}
        slots_of: dict[int, dict[str, tuple[CreativeSpec, ...]]] = {}
        for slot in self.slots.values():
            for tier in slot.tiers:
                for campaign in tier:
                    campaigns[campaign.id] = campaign
                    if campaign.roadblock:
                        slots_of.setdefault(campaign.id, {})[slot.name] = tuple(
                            c for c in campaign.creatives if fits(c, slot.sizes)
                        )
        roadblocks = tuple((campaigns[cid], fitting) for cid, fitting in slots_of.items())
        object.__setattr__(self, "campaigns", MappingProxyType(campaigns))
        object.__setattr__(self, "roadblocks", roadblocks)


@dataclass(frozen=True, slots=True)
class Snapshot:
    version: int
    sites: Mapping[str, SiteSpec]
    creatives: Mapping[int, CreativeSpec]
    sites_by_id: Mapping[int, SiteSpec] = field(default_factory=dict)

    @classmethod
    def empty(cls) -> Snapshot:
        return cls(version=-1, sites={}, creatives={})


class SlotRequest(NamedTuple):
    """One slot a page asks for; a named tuple, so a page's list of them hashes in C."""

    name: str
    #: Sizes the page allows for this slot; None means the slot's own sizes.
    sizes: tuple[str, ...] | None = None


class DecideRequest(NamedTuple):
    """What the engine knows of one request; a named tuple, built once per request."""

    site: str
    slots: tuple[SlotRequest, ...]
    now: float
    path: str = "/"
    keywords: frozenset[str] = frozenset()
    device: str | None = None
    country: str | None = None
    #: Campaign id -> UNIX times of this reader's recent impressions of it (from the browser).
    frequency: Mapping[int, Sequence[float]] = MappingProxyType({})
    #: For lazy slots: the campaigns this page view already shows (None: the page's first ask).
    shown: frozenset[int] | None = None


class Decision(NamedTuple):
    """One slot's choice; a named tuple, as the engine makes one per slot per request."""

    #: 12 bytes, issue time then random (``tokens.raw_decision_id``); ``decision_id`` is
    #: their URL-safe spelling.
    raw_id: bytes
    slot: SlotSpec
    campaign: CampaignSpec
    creative: CreativeSpec

    @property
    def decision_id(self) -> str:
        return new_decision_id(self.raw_id)


#: A named tuple made without the Python-level ``__new__`` its class has: ``Decision`` (one
#: per slot) and ``DecideResult`` (one per request), from a tuple of all their fields.
_new_tuple = tuple.__new__


class DecideResult(NamedTuple):
    site: SiteSpec
    decisions: dict[str, Decision | None]
    errors: list[str]
    #: The ids of the site's slots the page asked for, in order (what the audience counts).
    slot_ids: tuple[int, ...]
    #: Only when explaining: slot name -> campaign id -> why it was dropped, for what only the
    #: decision itself knows (``paced``, ``page_rule``, ``lost_draw`` among roadblocks).
    notes: dict[str, dict[int, str]] | None = None


class UnknownSite(LookupError):
    pass


@dataclass(frozen=True, slots=True)
class _TierInContext:
    """One tier's campaigns in flight that a reader context's targeting admits."""

    rank: int
    pairs: Tier
    #: The running totals of the campaigns' weights, for ``_draw``.
    cumulative: tuple[int, ...]
    #: Some campaign here is throttled or targets days or hours: checked on every decision.
    always_checked: bool
    #: Some campaign here has a frequency cap: checked when the reader sends its history.
    capped: bool
    #: The campaigns' ids and labels: a page that shows none of them needs no page rule here.
    ids: frozenset[int]
    labels: frozenset[str]
    #: Each pair's ``_creative_totals``, in the order of ``pairs``.
    creative_totals: tuple[tuple[int, ...] | None, ...]


@dataclass(frozen=True, slots=True)
class _InContext:
    """A slot's tiers for one reader context, true while ``opens <= now < closes``."""

    opens: float
    closes: float
    tiers: tuple[_TierInContext, ...]


#: Reader contexts remembered per slot before the memo starts afresh.
MEMO_LIMIT = 256
#: Reader contexts remembered per page (the site remembers ``MEMO_LIMIT`` pages).
PLAN_LIMIT = 32


class ReaderContext:
    """The request, with the site-local time worked out only if day or hour targeting asks."""

    __slots__ = ("_local", "prefix", "request", "zone")

    def __init__(self, request: DecideRequest, zone: ZoneInfo) -> None:
        self.request = request
        self.zone = zone
        self._local: datetime | None = None
        #: The time bytes every decision id of this request starts with.
        self.prefix = decision_id_prefix(request.now)

    def local(self) -> datetime:
        if self._local is None:
            self._local = datetime.fromtimestamp(self.request.now, UTC).astimezone(self.zone)
        return self._local


def decide(
    snapshot: Snapshot, request: DecideRequest, rng: random.Random, *, explain: bool = False
) -> DecideResult:
    """Choose a creative (or nothing) for every slot in ``request``; with ``explain``, the
    result also carries the notes ``explain.explain`` needs (a slower path, never the usual)."""
    site = snapshot.sites.get(request.site)
    if site is None:
        raise UnknownSite(request.site)
    context = ReaderContext(request, site.timezone)
    page = site.asked.get(request.slots)
    if page is None:
        page = _resolve(site, request.slots)
        if len(site.asked) >= MEMO_LIMIT:
            site.asked.clear()
        site.asked[request.slots] = page
    wants = page.wants
    decisions: dict[str, Decision | None] = dict.fromkeys(page.names)
    errors = list(page.unknown)
    if explain:
        notes: dict[str, dict[int, str]] = {}
        _decide_page(site, page, _plan(site, page, context), context, rng, decisions, notes)
        return _new_tuple(DecideResult, (site, decisions, errors, page.slot_ids, notes))
    if len(wants) == 1 and request.shown is None and not site.roadblocks:
        decisions[wants[0][0]] = _decide_alone(wants[0], context, rng)
    elif wants:
        _decide_page(site, page, _planned(site, page, context), context, rng, decisions, None)
    return _new_tuple(DecideResult, (site, decisions, errors, page.slot_ids, None))


#: One requested slot: its name, its spec, and the sizes the page asked for (None for the
#: slot's own, which its memo covers).
_Want = tuple[str, SlotSpec, tuple[str, ...] | None]
#: A roadblock that may take the page: each of its slots the page asks for with its creatives
#: that fit there (and their ``_creative_totals``), or None when one of them has none (the page
#: gets no part of it).
_Placed = tuple[tuple[_Want, tuple[CreativeSpec, ...], tuple[int, ...] | None], ...]
_Placement = _Placed | None


#: A page's queue of (rank, slot's index, tier's position), sorted (``_Plan.queue``).
_Queue = tuple[tuple[int, int, int], ...] | list[tuple[int, int, int]]


class _Plan(NamedTuple):
    """What a page's decision starts from for one reader context, true while ``opens <= now <
    closes``: the same for every reader alike, so worked out once (it never changes an
    outcome, only what the decision costs)."""

    opens: float
    closes: float
    #: Each requested slot's tiers in context (``_tiers``), in the order asked.
    tiers: tuple[tuple[_TierInContext, ...], ...]
    #: (rank, slot's index, tier's position) of each slot's first tier, sorted.
    queue: tuple[tuple[int, int, int], ...]
    #: The site's roadblocks in flight whose targeting admits the reader, on a slot the page
    #: asks for, in the site's order: each with the names of those slots and its placement.
    roadblocks: tuple[tuple[CampaignSpec, tuple[str, ...], _Placement], ...]


@dataclass(frozen=True, slots=True)
class _Page:
    """A page's list of slots as a site sees it (``_resolve``)."""

    #: Every name asked, once each, in order.
    names: tuple[str, ...]
    #: The slots the site has.
    wants: tuple[_Want, ...]
    #: An error for each it has not.
    unknown: tuple[str, ...]
    #: The ids of the slots it has.
    slot_ids: tuple[int, ...]
    #: Which reader dimensions something that may fill the page targets.
    targets: _Targets
    #: Every flight start and end that may change the page's plan, sorted.
    bounds: tuple[float, ...]
    #: Reader context -> the page's plan (``_planned``).
    plans: dict[Hashable, _Plan] = field(default_factory=dict, compare=False)


def _resolve(site: SiteSpec, slots: tuple[SlotRequest, ...]) -> _Page:
    names: dict[str, None] = {}
    wants: list[_Want] = []
    errors: list[str] = []
    for wanted in slots:
        if wanted.name in names:
            continue
        names[wanted.name] = None
        slot = site.slots.get(wanted.name)
        if slot is None:
            errors.append(f"unknown slot {wanted.name!r}")
            continue
        wants.append((wanted.name, slot, wanted.sizes))
    asked = {want[0] for want in wants}
    roadblocks = [c for c, fitting in site.roadblocks if asked.intersection(fitting)]
    booked = [campaign for want in wants for tier in want[1].fitting for campaign, _ in tier]
    bounds = {bound for want in wants for bound in want[1].bounds} | _flight_bounds(roadblocks)
    return _Page(
        tuple(names),
        tuple(wants),
        tuple(errors),
        tuple(want[1].id for want in wants),
        _Targets.of(campaign.targeting for campaign in booked + roadblocks),
        tuple(sorted(bounds)),
    )


def _planned(site: SiteSpec, page: _Page, context: ReaderContext) -> _Plan:
    """The page's plan for the reader's context, from the page's memo."""
    request = context.request
    key = page.targets.key(request)
    plan = page.plans.get(key)
    if plan is None or not plan.opens <= request.now < plan.closes:
        plan = _plan(site, page, context)
        if len(page.plans) >= PLAN_LIMIT:
            page.plans.clear()
        page.plans[key] = plan
    return plan


def _plan(site: SiteSpec, page: _Page, context: ReaderContext) -> _Plan:
    now = context.request.now
    after = bisect.bisect_right(page.bounds, now)
    opens = page.bounds[after - 1] if after else -math.inf
    closes = page.bounds[after] if after < len(page.bounds) else math.inf
    wants = page.wants
    roadblocks: list[tuple[CampaignSpec, tuple[str, ...], _Placement]] = []
    for campaign, fitting_by_slot in site.roadblocks:
        if not campaign.opens <= now < campaign.closes:
            continue
        mine = [want for want in wants if want[0] in fitting_by_slot]
        if not mine:
            continue
        if campaign.targeting.constrained and not _targeted_here(campaign.targeting, context):
            continue
        placement = []
        for want in mine:
            if want[2] is None:
                creatives = fitting_by_slot[want[0]]
            else:
                sizes = _sizes(want)
                creatives = tuple(c for c in campaign.creatives if fits(c, sizes))
            if not creatives:
                break
            placement.append((want, creatives, _creative_totals(campaign, creatives)))
        names = tuple(want[0] for want in mine)
        fitted = len(placement) == len(mine)
        roadblocks.append((campaign, names, tuple(placement) if fitted else None))
    tiers = tuple(_tiers(want, context) for want in wants)
    queue = sorted((found[0].rank, index, 0) for index, found in enumerate(tiers) if found)
    return _Plan(opens, closes, tiers, tuple(queue), tuple(roadblocks))


def _sizes(want: _Want) -> tuple[str, ...]:
    """The sizes a requested slot may show: the page may narrow the slot's own."""
    _, slot, wanted = want
    return slot.sizes if wanted is None else allowed_sizes(slot.sizes, wanted)


def _decide_alone(want: _Want, context: ReaderContext, rng: random.Random) -> Decision | None:
    """A page of one slot with no roadblock about: its highest tier that can fill it."""
    with_history = bool(context.request.frequency)
    for tier in _tiers(want, context):
        decision = _try_tier(want[1], tier, context, rng, None, None, with_history)
        if decision is not None:
            return decision
    return None


def _decide_page(
    site: SiteSpec,
    asked: _Page,
    plan: _Plan,
    context: ReaderContext,
    rng: random.Random,
    decisions: dict[str, Decision | None],
    notes: dict[str, dict[int, str]] | None,
) -> None:
    """All the page's slots, tier by tier (roadblocks first, then each slot's tiers in rank
    order, slots in the order asked), under the page rules."""
    request = context.request
    wants = asked.wants
    page = _new_tuple(pagerules.Page, (set(), {}))
    if request.shown:
        page.show(request.shown, site.campaigns)
    tiers = plan.tiers
    # The plan's queue of (rank, slot's index, tier's position), sorted: ranks go first and
    # slots in the order asked; a slot its tier could not fill comes back at its next tier's
    # rank. A slot a roadblock took is not decided again. The plan's own queue is read as it
    # is until a slot needs its next tier (``_next_tier`` copies it then).
    queue: _Queue = plan.queue
    if plan.roadblocks and _place_roadblocks(plan, context, rng, page, decisions, notes):
        queue = [entry for entry in queue if decisions[wants[entry[1]][0]] is None]
    with_history = bool(request.frequency)
    # ``page.admits`` and ``page.take``, inline: this loop runs for every slot of every page.
    ids = page.ids
    labels = page.labels
    prefix = context.prefix
    getrandbits = rng.getrandbits
    at = 0
    while at < len(queue):
        _, index, position = queue[at]
        at += 1
        want = wants[index]
        tier = tiers[index][position]
        if notes is None and not (tier.always_checked or (with_history and tier.capped)):
            # The usual case, inline (``_draw`` written out): one draw from the tier, kept if the
            # page admits it (``_try_tier`` draws again otherwise, which keeps every chance exact).
            pairs = tier.pairs
            if len(pairs) == 1:
                found = 0
            else:
                cumulative = tier.cumulative
                total = cumulative[-1]
                if total > 0:
                    found = bisect.bisect_right(cumulative, rng.random() * total)
                    if found >= len(pairs):
                        found = len(pairs) - 1
                else:
                    found = rng.randrange(len(pairs))  # as ``rng.choice`` draws
            campaign, fitting = pairs[found]
            own = campaign.id
            if own in ids:
                admitted = campaign.repeats
            elif not labels or not campaign.labels:
                admitted = True
            else:
                admitted = all(labels.get(label, own) == own for label in campaign.labels)
            if admitted:
                if len(fitting) == 1:
                    creative = fitting[0]
                elif campaign.rotation == "even":  # ``_rotate``'s even draw, inline
                    creative = fitting[int(rng.random() * len(fitting))]
                else:
                    creative = _rotate(campaign, fitting, rng, tier.creative_totals[found])
                raw_id = prefix + getrandbits(56).to_bytes(7, "big")
                decisions[want[0]] = _new_tuple(Decision, (raw_id, want[1], campaign, creative))
                ids.add(own)
                if tier.labels:  # most tiers have none: the campaign's own set goes unread
                    for label in campaign.labels:
                        labels.setdefault(label, own)
                continue
            if len(pairs) == 1:  # ``_try_tier`` would find no other campaign here
                queue = _next_tier(queue, tiers[index], index, position, at)
                continue
        slot_notes = None if notes is None else notes.setdefault(want[0], {})
        decision = _try_tier(want[1], tier, context, rng, page, slot_notes, with_history)
        if decision is not None:
            decisions[want[0]] = decision
            campaign = decision.campaign
            ids.add(campaign.id)
            for label in campaign.labels:
                labels.setdefault(label, campaign.id)
        else:
            queue = _next_tier(queue, tiers[index], index, position, at)


def _next_tier(
    queue: _Queue,
    tiers: tuple[_TierInContext, ...],
    index: int,
    position: int,
    at: int,
) -> _Queue:
    """The queue with the slot's next tier at its rank, if it has one, after the entries
    already taken: a list of its own (the plan's tuple is every such page's)."""
    if position + 1 >= len(tiers):
        return queue
    if isinstance(queue, tuple):
        queue = list(queue)
    bisect.insort(queue, (tiers[position + 1].rank, index, position + 1), lo=at)
    return queue


def _tiers(want: _Want, context: ReaderContext) -> tuple[_TierInContext, ...]:
    """The slot's tiers of campaigns in flight that the reader's context admits, from the
    slot's memo: for its own sizes, or for the sizes a page narrowed them to (a phone's tag
    narrows every slot's, and loads lazy slots one request each)."""
    _, slot, wanted = want
    request = context.request
    key: Hashable = slot.targets.key(request)
    if wanted is not None:
        # The slot's bounds and targets cover every campaign the narrowed sizes may keep.
        key = (wanted, key)
    admitted = slot.seen.get(key)
    if admitted is None or not admitted.opens <= request.now < admitted.closes:
        fitting = slot.fitting if wanted is None else _fitting_tiers(slot.tiers, _sizes(want))
        admitted = _in_context(slot, context, fitting)
        if len(slot.seen) >= MEMO_LIMIT:
            slot.seen.clear()
        slot.seen[key] = admitted
    return admitted.tiers


def _try_tier(
    slot: SlotSpec,
    tier: _TierInContext,
    context: ReaderContext,
    rng: random.Random,
    page: pagerules.Page | None,
    notes: dict[int, str] | None,
    with_history: bool,
) -> Decision | None:
    """A campaign of ``tier`` for ``slot``, or None when the checks left (days, hours, caps,
    throttle, in that order) and then the page rules turn every one away."""
    pairs: Sequence[Pair] = tier.pairs
    cumulative: Sequence[int] | None = tier.cumulative
    if notes is not None:
        kept = []
        for pair in pairs:
            reason = _residual_reason(pair[0], context, rng) if pair[0].residual else None
            if reason is None:
                kept.append(pair)
            else:
                notes[pair[0].id] = reason
        pairs = kept
        cumulative = None
    elif tier.always_checked or (with_history and tier.capped):
        pairs = [
            pair
            for pair in pairs
            if not pair[0].residual or _passes_residual(pair[0], context, rng)
        ]
        cumulative = None
    prefix = context.prefix
    if page is not None and not (
        page.ids.isdisjoint(tier.ids) and (not page.labels or tier.labels.isdisjoint(page.labels))
    ):
        if cumulative is not None:
            # Drawn from the whole tier and kept if the page admits it, else drawn again among
            # those it admits: each admitted campaign's chance is its weight's share among them
            # (p / (1 - q) either way), and the usual draw needs no new list.
            pair = pairs[0] if len(pairs) == 1 else _draw(pairs, cumulative, rng)
            if page.admits(pair[0]):
                return _choose(slot, pair, prefix, rng)
        kept = []
        for pair in pairs:
            if page.admits(pair[0]):
                kept.append(pair)
            elif notes is not None:
                notes[pair[0].id] = "page_rule"
        pairs = kept
        cumulative = None
    if not pairs:
        return None
    if len(pairs) == 1:
        return _choose(slot, pairs[0], prefix, rng)
    if cumulative is None:
        cumulative = _running(c.weight for c, _ in pairs)
    return _choose(slot, _draw(pairs, cumulative, rng), prefix, rng)


def _place_roadblocks(
    plan: _Plan,
    context: ReaderContext,
    rng: random.Random,
    page: pagerules.Page,
    decisions: dict[str, Decision | None],
    notes: dict[str, dict[int, str]] | None,
) -> bool:
    """Roadblocks that can show on every slot of theirs the page asks for take all of them,
    drawn by weight (one the page already shows first); the others get none. True when one
    took the page's slots."""
    request = context.request
    candidates: list[tuple[CampaignSpec, _Placed]]
    candidates = []
    for campaign, names, placement in plan.roadblocks:
        # ``pagerules.roadblock_refusal``, which a page with nothing on it yet always passes.
        if request.shown is not None or page.ids:
            reason = pagerules.roadblock_refusal(campaign, request.shown, page)
        else:
            reason = None
        # One the page shows already is not throttled or capped again halfway down the page.
        if reason is None and campaign.residual and campaign.id not in (request.shown or ()):
            reason = _residual_reason(campaign, context, rng)
        if reason is None and placement is None:
            reason = "page_rule"
        if reason is None:
            assert placement is not None
            candidates.append((campaign, placement))
        elif notes is not None:
            for name in names:
                notes.setdefault(name, {})[campaign.id] = reason
    took = bool(candidates)
    while candidates:
        shown = [c for c in candidates if c[0].id in request.shown] if request.shown else None
        if shown:
            pick = shown[0]
        elif len(candidates) == 1:
            pick = candidates[0]
        else:
            pick = _draw(candidates, _running(c.weight for c, _ in candidates), rng)
        campaign, placed = pick
        for want, creatives, totals in placed:
            creative = _rotate(campaign, creatives, rng, totals)
            raw_id = context.prefix + rng.getrandbits(56).to_bytes(7, "big")
            decisions[want[0]] = _new_tuple(Decision, (raw_id, want[1], campaign, creative))
        page.take(campaign)
        if len(candidates) == 1:
            break
        taken = {want[0] for want, _, _ in placed}
        rest = []
        for other in candidates:
            if other is pick:
                continue
            overlaps = any(want[0] in taken for want, _, _ in other[1])
            if not overlaps and page.admits(other[0]):
                rest.append(other)
            elif notes is not None:
                for want, _, _ in other[1]:
                    notes.setdefault(want[0], {})[other[0].id] = (
                        "lost_draw" if overlaps else "page_rule"
                    )
        candidates = rest
    return took


def _in_context(slot: SlotSpec, context: ReaderContext, fitting: tuple[Tier, ...]) -> _InContext:
    """Each tier's campaigns in flight whose targeting (but days and hours) admits the
    reader, and for how long that holds: until the next flight starts or ends."""
    now = context.request.now
    after = bisect.bisect_right(slot.bounds, now)
    opens = slot.bounds[after - 1] if after else -math.inf
    closes = slot.bounds[after] if after < len(slot.bounds) else math.inf
    tiers = []
    for tier in fitting:
        pairs = tuple(
            pair
            for pair in tier
            if pair[0].opens <= now < pair[0].closes
            and (not pair[0].targeting.constrained or _targeted_here(pair[0].targeting, context))
        )
        if pairs:
            campaigns = [campaign for campaign, _ in pairs]
            tiers.append(
                _TierInContext(
                    TIER_RANK[campaigns[0].tier],
                    pairs,
                    _running(c.weight for c in campaigns),
                    any(c.throttle < 1.0 or c.targeting.timed for c in campaigns),
                    any(c.fc_count is not None for c in campaigns),
                    frozenset(c.id for c in campaigns),
                    frozenset(label for c in campaigns for label in c.labels),
                    tuple(_creative_totals(campaign, fitting) for campaign, fitting in pairs),
                )
            )
    return _InContext(opens, closes, tuple(tiers))


def _choose(slot: SlotSpec, pair: Pair, prefix: bytes, rng: random.Random) -> Decision:
    campaign, fitting = pair
    creative = _rotate(campaign, fitting, rng)
    raw_id = prefix + rng.getrandbits(56).to_bytes(7, "big")
    return _new_tuple(Decision, (raw_id, slot, campaign, creative))


def allowed_sizes(slot_sizes: tuple[str, ...], asked: tuple[str, ...]) -> tuple[str, ...]:
    """The page may narrow a slot's sizes, never widen them."""
    if FLUID in slot_sizes:
        return asked
    return tuple(size for size in asked if size in slot_sizes)


def fits(creative: CreativeSpec, sizes: tuple[str, ...]) -> bool:
    return creative.size == FLUID or FLUID in sizes or creative.size in sizes


def _fitting_tiers(
    tiers: tuple[tuple[CampaignSpec, ...], ...], sizes: tuple[str, ...]
) -> tuple[Tier, ...]:
    """Each campaign with its creatives that fit ``sizes``; campaigns with none left out, and
    roadblocks too (``_place_roadblocks`` places them over the whole page)."""
    if not sizes:
        return ()
    fitting = []
    for tier in tiers:
        pairs = []
        for campaign in tier:
            if campaign.roadblock:
                continue
            creatives = tuple(c for c in campaign.creatives if fits(c, sizes))
            if creatives:
                pairs.append((campaign, creatives))
        if pairs:
            fitting.append(tuple(pairs))
    return tuple(fitting)


def _passes_residual(campaign: CampaignSpec, context: ReaderContext, rng: random.Random) -> bool:
    """Day and hour targeting, frequency cap and throttle, in that order."""
    request = context.request
    if campaign.targeting.timed and not _targeted_now(campaign.targeting, context):
        return False
    if campaign.fc_count is not None and request.frequency and capped(campaign, request):
        return False
    return campaign.throttle >= 1.0 or rng.random() < campaign.throttle


def _residual_reason(
    campaign: CampaignSpec, context: ReaderContext, rng: random.Random
) -> str | None:
    """``_passes_residual`` with the reason it fails (the same checks and random draws)."""
    if campaign.targeting.timed:
        reason = timing_reason(campaign.targeting, context)
        if reason is not None:
            return reason
    request = context.request
    if campaign.fc_count is not None and request.frequency and capped(campaign, request):
        return "capped"
    if campaign.throttle < 1.0 and rng.random() >= campaign.throttle:
        return "paced"
    return None


def _targeted_here(targeting: Targeting, context: ReaderContext) -> bool:
    """Targeting by what the reader's context tells: every dimension must match; set lookups
    go before path patterns, which cost more."""
    request = context.request
    if targeting.devices and request.device not in targeting.devices:
        return False
    if targeting.countries and request.country not in targeting.countries:
        return False
    if targeting.keywords and targeting.keywords.isdisjoint(request.keywords):
        return False
    if targeting.exclude_keywords and not targeting.exclude_keywords.isdisjoint(request.keywords):
        return False
    if targeting.paths is not None and not targeting.paths.match(request.path):
        return False
    return targeting.exclude_paths is None or not targeting.exclude_paths.match(request.path)


def targeting_reason(targeting: Targeting, context: ReaderContext) -> str | None:
    """The first targeting dimension the reader's context fails, as an explain code."""
    if not _targeted_here(targeting, context):
        request = context.request
        if targeting.devices and request.device not in targeting.devices:
            return "targeting_device"
        if targeting.countries and request.country not in targeting.countries:
            return "targeting_country"
        if targeting.paths is not None and not targeting.paths.match(request.path):
            return "targeting_path"
        if targeting.exclude_paths is not None and targeting.exclude_paths.match(request.path):
            return "targeting_path"
        return "targeting_keyword"
    return timing_reason(targeting, context) if targeting.timed else None


def timing_reason(targeting: Targeting, context: ReaderContext) -> str | None:
    """Day and hour targeting, by the site's local time, as an explain code."""
    if targeting.days and context.local().weekday() not in targeting.days:
        return "targeting_day"
    if targeting.hours and context.local().hour not in targeting.hours:
        return "targeting_hour"
    return None


def _targeted_now(targeting: Targeting, context: ReaderContext) -> bool:
    """Day and hour targeting, by the site's local time, worked out only when asked."""
    if targeting.days and context.local().weekday() not in targeting.days:
        return False
    return not targeting.hours or context.local().hour in targeting.hours


def capped(campaign: CampaignSpec, request: DecideRequest) -> bool:
    seen = request.frequency.get(campaign.id)
    if not seen:
        return False
    window = CAP_WINDOWS.get(campaign.fc_per or "")
    if window is not None:
        since = request.now - window
    else:
        since = campaign.starts_at if campaign.starts_at is not None else float("-inf")
    recent = sum(1 for at in seen if at >= since)
    assert campaign.fc_count is not None
    return recent >= campaign.fc_count


def _rotate(
    campaign: CampaignSpec,
    fitting: Sequence[CreativeSpec],
    rng: random.Random,
    totals: tuple[int, ...] | None = None,
) -> CreativeSpec:
    """One of the campaign's creatives that fit, by its rotation; ``totals`` are
    ``_creative_totals`` when worked out ahead."""
    if len(fitting) == 1:
        return fitting[0]
    if campaign.rotation == "even":
        # An even draw, as Random.choice makes, in one C call rather than two Python ones.
        return fitting[int(rng.random() * len(fitting))]
    if campaign.rotation == "ctr":
        return _thompson(fitting, rng)
    return _draw(fitting, totals or _running(c.weight for c in fitting), rng)


def _creative_totals(
    campaign: CampaignSpec, fitting: Sequence[CreativeSpec]
) -> tuple[int, ...] | None:
    """The running totals of the creatives' weights when ``_rotate`` draws by weight among
    several: worked out once with the slot's tiers or the page's plan, not per decision."""
    if len(fitting) == 1 or campaign.rotation in ("even", "ctr"):
        return None
    return _running(c.weight for c in fitting)


def _thompson(fitting: Sequence[CreativeSpec], rng: random.Random) -> CreativeSpec:
    """Thompson sampling: a click rate drawn for each creative from what its figures allow
    (a beta distribution over its clicks and impressions, after the prior), and the highest
    draw shown. A creative is shown as often as it may be the best: new or close ones keep
    being tried, clearly worse ones almost never (see docs/design.md)."""
    best, best_draw = fitting[0], -1.0
    for creative in fitting:
        misses = max(0, creative.impressions - creative.clicks)
        draw = rng.betavariate(creative.clicks + 1, misses + CTR_PRIOR - 1)
        if draw > best_draw:
            best, best_draw = creative, draw
    return best


def smoothed_ctr(impressions: int, clicks: int) -> float:
    """Clicks per impression with a prior of 1 click in 100 impressions, so a creative with
    little delivery is neither written off nor crowned on a lucky click."""
    return (clicks + 1) / (impressions + 100)


def _running(weights: Iterable[int]) -> tuple[int, ...]:
    """Running totals of ``weights``: what ``_draw`` takes."""
    return tuple(accumulate(weights))


def _draw(items: Sequence[T], cumulative: Sequence[int], rng: random.Random) -> T:
    """One item, with probability proportional to its weight (equal if all weights are 0), from
    the running totals of the weights: the first item whose total exceeds a uniform point,
    found by bisection in C (a Python loop over the weights was an eighth of a decision)."""
    total = cumulative[-1]
    if total <= 0:
        return rng.choice(items)
    found = bisect.bisect_right(cumulative, rng.random() * total)
    return items[min(found, len(items) - 1)]

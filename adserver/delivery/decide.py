"""The decision engine: picks one creative per requested slot. Pure: no I/O, no clock, no globals.

``decide(snapshot, request, rng)`` depends only on its arguments, so it is tested exhaustively
with a seeded ``random.Random`` and runs in microseconds. Everything it needs was compiled into
the immutable :class:`Snapshot` by ``inventory.py``.

Order of choice for one slot: the highest priority tier that has an eligible campaign wins
(sponsorship > standard > price > house); within it a campaign is drawn by weight; within the
campaign a creative that fits the slot's sizes is drawn by its rotation.
"""

from __future__ import annotations

import bisect
import math
import random
import re
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import accumulate
from types import MappingProxyType
from typing import NamedTuple, TypeVar
from zoneinfo import ZoneInfo

from adserver.delivery.render import NO_ANSWER, Answer
from adserver.tracking.tokens import new_decision_id, raw_decision_id

#: ``ctr`` rotation shows a creative drawn evenly this often (exploring), else the best so far.
CTR_EXPLORE = 0.1
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
    #: Smoothed click-through rate so far, for ``ctr`` rotation (see ``smoothed_ctr``).
    ctr: float = 0.0
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
    #: The flight as bounds that always compare (-inf and inf for an open end).
    opens: float = field(init=False, repr=False, compare=False)
    closes: float = field(init=False, repr=False, compare=False)
    #: True when targeting, a cap or the throttle may turn the campaign away within its flight;
    #: most campaigns have none of them and skip those checks.
    gated: bool = field(init=False, repr=False, compare=False)
    #: True when the answer depends on more than the reader's context and the flight: day or
    #: hour targeting, a cap or the throttle, checked on every decision (see ``_in_context``).
    residual: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
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


@dataclass(frozen=True, slots=True)
class SlotSpec:
    id: int
    name: str
    sizes: tuple[str, ...]
    #: Campaigns assigned to the slot, grouped by tier, highest priority first.
    tiers: tuple[tuple[CampaignSpec, ...], ...]
    fallback_html: str | None = None
    #: ``tiers`` again, each campaign paired with its creatives that fit the slot's sizes (and
    #: left out if none does): worked out once here rather than on every decision.
    fitting: tuple[Tier, ...] = field(init=False, repr=False, compare=False)
    #: Every finite flight start and end among ``fitting``'s campaigns, sorted: between two of
    #: them, which campaigns are in flight cannot change.
    bounds: tuple[float, ...] = field(init=False, repr=False, compare=False)
    #: Which reader dimensions some campaign of ``fitting`` targets (by days and hours aside).
    targets: _Targets = field(init=False, repr=False, compare=False)
    #: Reader context -> the campaigns in flight that its targeting admits (``_in_context``).
    #: A page is viewed over and over by readers alike, so this is worked out once per context
    #: and flight period; it never changes an outcome, only what the decision costs.
    seen: dict[Hashable, _InContext] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        fitting = _fitting_tiers(self.tiers, self.sizes)
        bounds = {
            bound
            for tier in fitting
            for campaign, _ in tier
            for bound in (campaign.opens, campaign.closes)
            if -math.inf < bound < math.inf
        }
        targeting = [campaign.targeting for tier in fitting for campaign, _ in tier]
        targets = _Targets(
            paths=any(t.paths is not None or t.exclude_paths is not None for t in targeting),
            keywords=any(t.keywords or t.exclude_keywords for t in targeting),
            devices=any(t.devices for t in targeting),
            countries=any(t.countries for t in targeting),
        )
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


@dataclass(frozen=True, slots=True)
class Snapshot:
    version: int
    sites: Mapping[str, SiteSpec]
    creatives: Mapping[int, CreativeSpec]
    sites_by_id: Mapping[int, SiteSpec] = field(default_factory=dict)

    @classmethod
    def empty(cls) -> Snapshot:
        return cls(version=-1, sites={}, creatives={})


@dataclass(frozen=True, slots=True)
class SlotRequest:
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


class DecideResult(NamedTuple):
    site: SiteSpec
    decisions: dict[str, Decision | None]
    errors: list[str]


class UnknownSite(LookupError):
    pass


@dataclass(frozen=True, slots=True)
class _TierInContext:
    """One tier's campaigns in flight that a reader context's targeting admits."""

    pairs: Tier
    #: The running totals of the campaigns' weights, for ``_draw``.
    cumulative: tuple[int, ...]
    #: Some campaign here is throttled or targets days or hours: checked on every decision.
    always_checked: bool
    #: Some campaign here has a frequency cap: checked when the reader sends its history.
    capped: bool


@dataclass(frozen=True, slots=True)
class _InContext:
    """A slot's tiers for one reader context, true while ``opens <= now < closes``."""

    opens: float
    closes: float
    tiers: tuple[_TierInContext, ...]


#: Reader contexts remembered per slot before the memo starts afresh.
MEMO_LIMIT = 256


class _Context:
    """The request, with the site-local time worked out only if day or hour targeting asks."""

    __slots__ = ("_local", "request", "zone")

    def __init__(self, request: DecideRequest, zone: ZoneInfo) -> None:
        self.request = request
        self.zone = zone
        self._local: datetime | None = None

    def local(self) -> datetime:
        if self._local is None:
            self._local = datetime.fromtimestamp(self.request.now, UTC).astimezone(self.zone)
        return self._local


def decide(snapshot: Snapshot, request: DecideRequest, rng: random.Random) -> DecideResult:
    """Choose a creative (or nothing) for every slot in ``request``."""
    site = snapshot.sites.get(request.site)
    if site is None:
        raise UnknownSite(request.site)
    context = _Context(request, site.timezone)
    decisions: dict[str, Decision | None] = {}
    errors: list[str] = []
    for wanted in request.slots:
        slot = site.slots.get(wanted.name)
        if slot is None:
            errors.append(f"unknown slot {wanted.name!r}")
            decisions[wanted.name] = None
            continue
        decisions[wanted.name] = (
            _decide_in_context(slot, context, rng)
            if wanted.sizes is None
            else _decide_for_sizes(slot, wanted.sizes, context, rng)
        )
    return DecideResult(site, decisions, errors)


def _decide_for_sizes(
    slot: SlotSpec, sizes: tuple[str, ...], context: _Context, rng: random.Random
) -> Decision | None:
    """A slot narrowed to some of its sizes by the page: every campaign checked."""
    tiers = _fitting_tiers(slot.tiers, _allowed_sizes(slot.sizes, sizes))
    now = context.request.now
    for tier in tiers:
        eligible = [
            pair
            for pair in tier
            if pair[0].opens <= now < pair[0].closes
            and (not pair[0].gated or _passes_gates(pair[0], context, rng))
        ]
        if eligible:
            return _choose(slot, eligible, _running(c.weight for c, _ in eligible), now, rng)
    return None


def _decide_in_context(slot: SlotSpec, context: _Context, rng: random.Random) -> Decision | None:
    """The slot's own sizes: as ``_decide_for_sizes`` decides them, from the memo of what the
    reader's context admits; the checks left (days, hours, caps, throttle) run in the same
    order, so the same random draws give the same decisions."""
    request = context.request
    now = request.now
    # Only what some campaign of the slot targets tells one reader's context from another's.
    key = (
        request.path if slot.targets.paths else None,
        request.keywords if slot.targets.keywords else None,
        request.device if slot.targets.devices else None,
        request.country if slot.targets.countries else None,
    )
    admitted = slot.seen.get(key)
    if admitted is None or not admitted.opens <= now < admitted.closes:
        admitted = _in_context(slot, context)
        if len(slot.seen) >= MEMO_LIMIT:
            slot.seen.clear()
        slot.seen[key] = admitted
    with_history = bool(request.frequency)
    for tier in admitted.tiers:
        if tier.always_checked or (with_history and tier.capped):
            eligible = [
                pair
                for pair in tier.pairs
                if not pair[0].residual or _passes_residual(pair[0], context, rng)
            ]
            if eligible:
                return _choose(slot, eligible, _running(c.weight for c, _ in eligible), now, rng)
        else:
            return _choose(slot, tier.pairs, tier.cumulative, now, rng)
    return None


def _in_context(slot: SlotSpec, context: _Context) -> _InContext:
    """Each tier's campaigns in flight whose targeting (but days and hours) admits the
    reader, and for how long that holds: until the next flight starts or ends."""
    now = context.request.now
    after = bisect.bisect_right(slot.bounds, now)
    opens = slot.bounds[after - 1] if after else -math.inf
    closes = slot.bounds[after] if after < len(slot.bounds) else math.inf
    tiers = []
    for tier in slot.fitting:
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
                    pairs,
                    _running(c.weight for c in campaigns),
                    any(c.throttle < 1.0 or c.targeting.timed for c in campaigns),
                    any(c.fc_count is not None for c in campaigns),
                )
            )
    return _InContext(opens, closes, tuple(tiers))


def _choose(
    slot: SlotSpec,
    eligible: Sequence[Pair],
    cumulative: Sequence[int],
    now: float,
    rng: random.Random,
) -> Decision:
    campaign, fitting = eligible[0] if len(eligible) == 1 else _draw(eligible, cumulative, rng)
    creative = _rotate(campaign, fitting, rng)
    return Decision(raw_decision_id(now, rng.getrandbits(56)), slot, campaign, creative)


def _allowed_sizes(slot_sizes: tuple[str, ...], asked: tuple[str, ...]) -> tuple[str, ...]:
    """The page may narrow a slot's sizes, never widen them."""
    if FLUID in slot_sizes:
        return asked
    return tuple(size for size in asked if size in slot_sizes)


def _fits(creative: CreativeSpec, sizes: tuple[str, ...]) -> bool:
    return creative.size == FLUID or FLUID in sizes or creative.size in sizes


def _fitting_tiers(
    tiers: tuple[tuple[CampaignSpec, ...], ...], sizes: tuple[str, ...]
) -> tuple[Tier, ...]:
    """Each campaign with its creatives that fit ``sizes``; campaigns with none left out."""
    if not sizes:
        return ()
    fitting = []
    for tier in tiers:
        pairs = []
        for campaign in tier:
            creatives = tuple(c for c in campaign.creatives if _fits(c, sizes))
            if creatives:
                pairs.append((campaign, creatives))
        if pairs:
            fitting.append(tuple(pairs))
    return tuple(fitting)


def _passes_gates(campaign: CampaignSpec, context: _Context, rng: random.Random) -> bool:
    """Targeting, frequency cap and throttle, for a campaign within its flight."""
    if campaign.targeting.constrained and not _targeted_here(campaign.targeting, context):
        return False
    return _passes_residual(campaign, context, rng)


def _passes_residual(campaign: CampaignSpec, context: _Context, rng: random.Random) -> bool:
    """Day and hour targeting, frequency cap and throttle, in that order."""
    request = context.request
    if campaign.targeting.timed and not _targeted_now(campaign.targeting, context):
        return False
    if campaign.fc_count is not None and request.frequency and _capped(campaign, request):
        return False
    return campaign.throttle >= 1.0 or rng.random() < campaign.throttle


def _targeted_here(targeting: Targeting, context: _Context) -> bool:
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


def _targeted_now(targeting: Targeting, context: _Context) -> bool:
    """Day and hour targeting, by the site's local time, worked out only when asked."""
    if targeting.days and context.local().weekday() not in targeting.days:
        return False
    return not targeting.hours or context.local().hour in targeting.hours


def _capped(campaign: CampaignSpec, request: DecideRequest) -> bool:
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
    campaign: CampaignSpec, fitting: Sequence[CreativeSpec], rng: random.Random
) -> CreativeSpec:
    if len(fitting) == 1:
        return fitting[0]
    if campaign.rotation == "even":
        # An even draw, as Random.choice makes, in one C call rather than two Python ones.
        return fitting[int(rng.random() * len(fitting))]
    if campaign.rotation == "ctr":
        if rng.random() < CTR_EXPLORE:
            return rng.choice(fitting)
        return max(fitting, key=lambda c: c.ctr)
    return _draw(fitting, _running(c.weight for c in fitting), rng)


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

"""Specification of the pure decision engine, ``adserver.decide``.

Every test builds the tiny snapshot it needs with the builders below and decides with a seeded
``random.Random``: no database, no clock (``now`` travels in the request).

Statistical tests draw 20,000 decisions. The standard deviation of an observed share ``p`` over
``n`` draws is ``sqrt(p * (1 - p) / n)``, at most 0.0036 for n = 20,000, so a tolerance of
+/-0.02 is more than five standard deviations: it holds for any seed, while a wrong rule (weights
ignored: 0.50 instead of 0.75; weights applied to an even rotation: 0.90 instead of 0.50) misses
it by a wide margin.
"""

from __future__ import annotations

import dataclasses
import random
import re
from collections import Counter
from collections.abc import Callable, Hashable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from adserver.delivery.decide import (
    MEMO_LIMIT,
    TIER_RANK,
    CampaignSpec,
    CreativeSpec,
    DecideRequest,
    Decision,
    SiteSpec,
    SlotRequest,
    SlotSpec,
    Snapshot,
    Targeting,
    UnknownSite,
    decide,
    smoothed_ctr,
)
from adserver.delivery.inventory import compile_targeting

#: Monday 2026-11-30 12:00 UTC.
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC).timestamp()
HOUR = 3600
DAY = 24 * HOUR
WEEK = 7 * DAY
DRAWS = 20_000
TOLERANCE = 0.02
SLOT = "top-of-post"


# --- builders ---------------------------------------------------------------------------------


def utc(*args: int) -> float:
    return datetime(*args, tzinfo=UTC).timestamp()  # type: ignore[arg-type, misc]


def creative(creative_id: int, *, size: str = "728x90", weight: int = 1) -> CreativeSpec:
    if size == "fluid":
        width, height = 0, 0
    else:
        width, height = (int(n) for n in size.split("x"))
    return CreativeSpec(
        id=creative_id,
        campaign_id=0,  # set by campaign()
        kind="image",
        width=width,
        height=height,
        weight=weight,
        size=size,
        click_url=f"https://advertiser.example/{creative_id}",
    )


def campaign(
    campaign_id: int,
    *,
    tier: str = "standard",
    weight: int = 1,
    creatives: tuple[CreativeSpec, ...] | None = None,
    rotation: str = "weighted",
    targeting: Targeting | None = None,
    **overrides: Any,
) -> CampaignSpec:
    """A deliverable campaign; by default one 728x90 creative with id ``campaign_id * 100``."""
    if creatives is None:
        creatives = (creative(campaign_id * 100),)
    owned = tuple(dataclasses.replace(c, campaign_id=campaign_id) for c in creatives)
    return CampaignSpec(
        id=campaign_id,
        advertiser_id=1,
        tier=tier,
        weight=weight,
        starts_at=overrides.pop("starts_at", None),
        ends_at=overrides.pop("ends_at", None),
        rotation=rotation,
        creatives=owned,
        targeting=targeting or Targeting(),
        **overrides,
    )


def slot(
    *campaigns: CampaignSpec,
    name: str = SLOT,
    sizes: tuple[str, ...] = ("728x90",),
    slot_id: int = 1,
) -> SlotSpec:
    """A slot with ``campaigns`` grouped by tier, highest first, as the inventory builds it."""
    ranks = sorted({TIER_RANK[c.tier] for c in campaigns})
    tiers = tuple(tuple(c for c in campaigns if TIER_RANK[c.tier] == rank) for rank in ranks)
    return SlotSpec(id=slot_id, name=name, sizes=sizes, tiers=tiers)


def snapshot(*slots: SlotSpec, key: str = "demo", timezone: str = "UTC") -> Snapshot:
    site = SiteSpec(
        id=1,
        key=key,
        timezone=ZoneInfo(timezone),
        domains=frozenset({"blog.example"}),
        slots={s.name: s for s in slots},
    )
    creatives = {
        c.id: c for s in slots for tier in s.tiers for camp in tier for c in camp.creatives
    }
    return Snapshot(version=1, sites={key: site}, creatives=creatives)


def request(
    *slots: str | SlotRequest, site: str = "demo", now: float = NOW, **context: Any
) -> DecideRequest:
    wanted = tuple(s if isinstance(s, SlotRequest) else SlotRequest(s) for s in slots or (SLOT,))
    return DecideRequest(site=site, slots=wanted, now=now, **context)


def decide_slot(
    snap: Snapshot, req: DecideRequest, *, seed: int = 1, name: str = SLOT
) -> Decision | None:
    return decide(snap, req, random.Random(seed)).decisions[name]


def served_campaign(snap: Snapshot, req: DecideRequest, *, seed: int = 1) -> int | None:
    decision = decide_slot(snap, req, seed=seed)
    return None if decision is None else decision.campaign.id


def tally(
    snap: Snapshot,
    req: DecideRequest,
    key: Callable[[Decision | None], Hashable],
    *,
    draws: int = DRAWS,
    seed: int = 7,
) -> Counter[Hashable]:
    """How often each ``key(decision)`` comes up over ``draws`` decisions from one seeded rng."""
    rng = random.Random(seed)
    return Counter(key(decide(snap, req, rng).decisions[SLOT]) for _ in range(draws))


def by_campaign(decision: Decision | None) -> int | None:
    return None if decision is None else decision.campaign.id


def by_creative(decision: Decision | None) -> int | None:
    return None if decision is None else decision.creative.id


def never_served(snap: Snapshot, req: DecideRequest, seeds: int = 200) -> bool:
    return all(decide_slot(snap, req, seed=seed) is None for seed in range(seeds))


# --- priority tiers ---------------------------------------------------------------------------


def test_sponsorship_beats_every_lower_tier_whatever_the_weights() -> None:
    snap = snapshot(
        slot(
            campaign(4, tier="house", weight=1000),
            campaign(3, tier="price", weight=1000),
            campaign(2, tier="standard", weight=1000),
            campaign(1, tier="sponsorship", weight=1),
        )
    )
    assert {served_campaign(snap, request(), seed=seed) for seed in range(200)} == {1}


def test_standard_serves_only_when_no_sponsorship_is_eligible() -> None:
    eligible = snapshot(slot(campaign(1, tier="sponsorship"), campaign(2, tier="standard")))
    ended = snapshot(
        slot(campaign(1, tier="sponsorship", ends_at=NOW - 1), campaign(2, tier="standard"))
    )
    assert served_campaign(eligible, request()) == 1
    assert served_campaign(ended, request()) == 2


def test_price_serves_only_when_sponsorship_and_standard_are_ineligible() -> None:
    snap = snapshot(
        slot(
            campaign(1, tier="sponsorship", starts_at=NOW + HOUR),
            campaign(2, tier="standard", targeting=Targeting(countries=frozenset({"FR"}))),
            campaign(3, tier="price"),
            campaign(4, tier="house"),
        )
    )
    assert served_campaign(snap, request(country="IN")) == 3
    assert served_campaign(snap, request(country="FR")) == 2


def test_house_serves_only_when_every_higher_tier_is_ineligible() -> None:
    capped = {1: [NOW - 60], 2: [NOW - 60], 3: [NOW - 60]}
    snap = snapshot(
        slot(
            *(
                campaign(i, tier=tier, fc_count=1, fc_per="day")
                for i, tier in ((1, "sponsorship"), (2, "standard"), (3, "price"))
            ),
            campaign(4, tier="house"),
        )
    )
    assert served_campaign(snap, request(frequency=capped)) == 4
    assert served_campaign(snap, request(frequency={**capped, 3: []})) == 3


def test_a_higher_tier_without_a_creative_that_fits_gives_way() -> None:
    snap = snapshot(
        slot(
            campaign(1, tier="sponsorship", creatives=(creative(100, size="300x250"),)),
            campaign(2, tier="standard"),
        )
    )
    assert served_campaign(snap, request()) == 2


# --- weights and rotation ---------------------------------------------------------------------


def test_campaigns_in_one_tier_share_decisions_by_weight() -> None:
    snap = snapshot(slot(campaign(1, weight=3), campaign(2, weight=1)))
    counts = tally(snap, request(), by_campaign)
    assert set(counts) == {1, 2}
    assert counts[1] / DRAWS == pytest.approx(0.75, abs=TOLERANCE)


def test_campaigns_all_of_weight_zero_share_decisions_equally() -> None:
    snap = snapshot(slot(campaign(1, weight=0), campaign(2, weight=0)))
    counts = tally(snap, request(), by_campaign)
    assert counts[None] == 0
    assert counts[1] / DRAWS == pytest.approx(0.5, abs=TOLERANCE)


def test_a_campaign_of_weight_zero_beside_weighted_ones_is_never_chosen() -> None:
    snap = snapshot(
        slot(
            campaign(1, weight=0),
            campaign(2, weight=2),
            campaign(3, weight=0),
            campaign(4, weight=2),
            campaign(5, weight=0),
        )
    )
    counts = tally(snap, request(), by_campaign)
    assert set(counts) == {2, 4}
    assert counts[2] / DRAWS == pytest.approx(0.5, abs=TOLERANCE)


def test_even_rotation_shows_creatives_equally_whatever_their_weights() -> None:
    creatives = (creative(11, weight=9), creative(12, weight=1))
    snap = snapshot(slot(campaign(1, rotation="even", creatives=creatives)))
    counts = tally(snap, request(), by_creative)
    assert set(counts) == {11, 12}
    assert counts[11] / DRAWS == pytest.approx(0.5, abs=TOLERANCE)


def test_weighted_rotation_shows_creatives_by_weight() -> None:
    creatives = (creative(11, weight=3), creative(12, weight=1))
    snap = snapshot(slot(campaign(1, rotation="weighted", creatives=creatives)))
    counts = tally(snap, request(), by_creative)
    assert set(counts) == {11, 12}
    assert counts[11] / DRAWS == pytest.approx(0.75, abs=TOLERANCE)


@pytest.mark.parametrize("roadblock", [False, True], ids=["page", "roadblock"])
def test_weighted_rotation_keeps_to_the_weights_on_a_page_of_several_slots(
    roadblock: bool,
) -> None:
    # A page's draw (and a roadblock's placement) takes the creatives' running totals worked
    # out with the slot's tiers and the page's plan, not per decision.
    creatives = (creative(11, weight=3), creative(12, weight=1))
    rotating = campaign(
        1, tier="sponsorship", rotation="weighted", creatives=creatives, roadblock=roadblock
    )
    snap = snapshot(slot(rotating), slot(rotating, name="below", slot_id=2))
    counts = tally(snap, request(SLOT, "below"), by_creative)
    assert set(counts) == {11, 12}
    assert counts[11] / DRAWS == pytest.approx(0.75, abs=TOLERANCE)


def test_ctr_rotation_mostly_shows_the_best_creative_and_keeps_exploring() -> None:
    # Thompson sampling: a clearly better creative nearly always, two close ones both (each as
    # often as it may be the better), a new one often until its figures say otherwise.
    best = dataclasses.replace(creative(11, weight=1), impressions=1000, clicks=30)
    worse = dataclasses.replace(creative(12, weight=9), impressions=1000, clicks=5)
    clear = tally(snapshot(slot(campaign(1, rotation="ctr", creatives=(worse, best)))), request(),
                  by_creative, draws=5_000)  # fmt: skip
    assert clear[11] / 5_000 > 0.99  # weights ignored
    close = dataclasses.replace(creative(12), impressions=1000, clicks=25)
    near = tally(snapshot(slot(campaign(1, rotation="ctr", creatives=(close, best)))), request(),
                 by_creative, draws=5_000)  # fmt: skip
    assert 0.15 < near[12] / 5_000 < 0.5
    new = dataclasses.replace(creative(12), impressions=0, clicks=0)
    fresh = tally(snapshot(slot(campaign(1, rotation="ctr", creatives=(new, best)))), request(),
                  by_creative, draws=5_000)  # fmt: skip
    assert fresh[12] / 5_000 > 0.03  # tried until its own figures speak


def test_smoothed_ctr_neither_crowns_a_lucky_click_nor_writes_off_a_new_creative() -> None:
    assert smoothed_ctr(0, 0) == pytest.approx(0.01)
    assert smoothed_ctr(1, 1) < smoothed_ctr(10_000, 300)  # 1 in 1 is luck; 3% of 10,000 is not
    assert smoothed_ctr(10_000, 0) < smoothed_ctr(0, 0)


@pytest.mark.parametrize("rotation", ["even", "weighted", "ctr"])
def test_rotation_only_draws_creatives_that_fit_the_slot(rotation: str) -> None:
    creatives = (creative(11, size="300x250", weight=100), creative(12, size="728x90"))
    snap = snapshot(slot(campaign(1, rotation=rotation, creatives=creatives)))
    assert set(tally(snap, request(), by_creative, draws=500)) == {12}


# --- flight dates -----------------------------------------------------------------------------


def test_a_campaign_starts_serving_at_its_start_time() -> None:
    start = utc(2026, 12, 1)
    snap = snapshot(slot(campaign(1, starts_at=start)))
    assert decide_slot(snap, request(now=start - 1)) is None
    assert served_campaign(snap, request(now=start)) == 1


def test_a_campaign_stops_serving_at_its_end_time_which_is_exclusive() -> None:
    end = utc(2026, 12, 31)
    snap = snapshot(slot(campaign(1, starts_at=utc(2026, 12, 1), ends_at=end)))
    assert served_campaign(snap, request(now=end - 1)) == 1
    assert decide_slot(snap, request(now=end)) is None


def test_a_campaign_without_an_end_serves_indefinitely() -> None:
    snap = snapshot(slot(campaign(1, starts_at=utc(2026, 12, 1))))
    assert served_campaign(snap, request(now=utc(2036, 12, 1))) == 1


# --- sizes ------------------------------------------------------------------------------------


def test_a_creative_never_fills_a_slot_of_another_size() -> None:
    snap = snapshot(slot(campaign(1, creatives=(creative(100, size="300x250"),))))
    assert never_served(snap, request())


def test_a_creative_fills_a_slot_that_lists_its_size_among_several() -> None:
    snap = snapshot(
        slot(campaign(1, creatives=(creative(100, size="300x250"),)), sizes=("728x90", "300x250"))
    )
    assert served_campaign(snap, request()) == 1


def test_the_page_may_narrow_a_slots_sizes() -> None:
    creatives = (creative(11, size="728x90", weight=100), creative(12, size="300x250"))
    snap = snapshot(slot(campaign(1, creatives=creatives), sizes=("728x90", "300x250")))
    narrowed = request(SlotRequest(SLOT, sizes=("300x250",)))
    assert set(tally(snap, narrowed, by_creative, draws=500)) == {12}


def test_the_page_may_not_widen_a_slots_sizes() -> None:
    creatives = (creative(11, size="300x250", weight=100), creative(12, size="728x90"))
    snap = snapshot(slot(campaign(1, creatives=creatives), sizes=("728x90",)))
    widened = request(SlotRequest(SLOT, sizes=("728x90", "300x250")))
    only_new_size = request(SlotRequest(SLOT, sizes=("300x250",)))
    assert set(tally(snap, widened, by_creative, draws=500)) == {12}
    assert never_served(snap, only_new_size)


def test_the_page_may_not_turn_a_fixed_slot_fluid() -> None:
    snap = snapshot(slot(campaign(1, creatives=(creative(100, size="300x250"),))))
    assert never_served(snap, request(SlotRequest(SLOT, sizes=("fluid",))))


def test_a_fluid_slot_takes_a_creative_of_any_size() -> None:
    snap = snapshot(slot(campaign(1, creatives=(creative(100, size="300x250"),)), sizes=("fluid",)))
    decision = decide_slot(snap, request())
    assert decision is not None
    assert decision.creative.id == 100


def test_a_fluid_creative_fills_a_slot_of_any_size() -> None:
    snap = snapshot(slot(campaign(1, creatives=(creative(100, size="fluid"),)), sizes=("320x50",)))
    assert served_campaign(snap, request()) == 1


# --- no ad, unknown slots and sites -------------------------------------------------------------


def test_no_ad_when_no_campaign_is_eligible() -> None:
    snap = snapshot(slot(campaign(1, starts_at=NOW + DAY)))
    result = decide(snap, request(), random.Random(1))
    assert result.decisions == {SLOT: None}
    assert result.errors == []


def test_no_ad_for_a_slot_with_no_campaigns() -> None:
    snap = snapshot(slot())
    assert decide(snap, request(), random.Random(1)).decisions == {SLOT: None}


def test_every_requested_slot_gets_its_own_decision() -> None:
    snap = snapshot(
        slot(campaign(1), name="top-of-post"),
        slot(
            campaign(2, creatives=(creative(200, size="300x250"),)),
            name="sidebar",
            sizes=("300x250",),
        ),
    )
    result = decide(snap, request("top-of-post", "sidebar"), random.Random(1))
    assert {name: d and d.campaign.id for name, d in result.decisions.items()} == {
        "top-of-post": 1,
        "sidebar": 2,
    }


def test_unknown_slot_names_come_back_as_errors_with_no_ad() -> None:
    snap = snapshot(slot(campaign(1)))
    result = decide(snap, request(SLOT, "no-such-slot"), random.Random(1))
    assert result.decisions["no-such-slot"] is None
    assert result.decisions[SLOT] is not None
    assert len(result.errors) == 1
    assert "no-such-slot" in result.errors[0]


def test_an_unknown_site_raises_unknown_site() -> None:
    snap = snapshot(slot(campaign(1)), key="demo")
    with pytest.raises(UnknownSite):
        decide(snap, request(site="elsewhere"), random.Random(1))


# --- frequency caps ---------------------------------------------------------------------------


@pytest.mark.parametrize(("per", "window"), [("hour", HOUR), ("day", DAY), ("week", WEEK)])
def test_a_frequency_cap_counts_impressions_within_its_window(per: str, window: int) -> None:
    snap = snapshot(slot(campaign(1, fc_count=2, fc_per=per)))
    inside = [NOW - window + 10, NOW - 10]
    one_outside = [NOW - window - 10, NOW - 10]
    assert served_campaign(snap, request(frequency={1: inside[1:]})) == 1
    assert decide_slot(snap, request(frequency={1: inside})) is None
    assert served_campaign(snap, request(frequency={1: one_outside})) == 1


def test_a_flight_frequency_cap_counts_impressions_since_the_campaign_started() -> None:
    start = NOW - 30 * DAY
    snap = snapshot(slot(campaign(1, starts_at=start, fc_count=2, fc_per="flight")))
    assert decide_slot(snap, request(frequency={1: [start + 1, NOW - 20 * DAY]})) is None
    assert served_campaign(snap, request(frequency={1: [start - 1, NOW - 20 * DAY]})) == 1


def test_a_frequency_cap_counts_only_the_campaigns_own_impressions() -> None:
    snap = snapshot(slot(campaign(1, fc_count=1, fc_per="day")))
    assert served_campaign(snap, request(frequency={2: [NOW - 10, NOW - 20]})) == 1


def test_a_capped_campaign_gives_way_to_its_siblings() -> None:
    snap = snapshot(slot(campaign(1, weight=1000, fc_count=1, fc_per="hour"), campaign(2)))
    assert served_campaign(snap, request(frequency={1: [NOW - 60]})) == 2


# --- targeting ----------------------------------------------------------------------------------


def targeted(**raw: Any) -> Snapshot:
    """One campaign in one slot, with targeting as an admin stores it."""
    return snapshot(slot(campaign(1, targeting=compile_targeting(raw))))


def test_no_targeting_means_every_page_and_reader() -> None:
    snap = targeted()
    req = request(path="/any/where", keywords=frozenset({"x"}), device="tv", country="ZZ")
    assert served_campaign(snap, req) == 1


@pytest.mark.parametrize(
    ("path", "served"),
    [
        ("/sport/cricket", True),
        ("/sport/cricket/ipl-final", True),
        ("/travel/goa", True),
        ("/sport", False),
        ("/news/sport/cricket", False),
        ("/travel", False),
    ],
)
def test_path_targeting_takes_shell_style_patterns(path: str, served: bool) -> None:
    snap = targeted(paths=["/sport/*", "/travel/goa"])
    assert (served_campaign(snap, request(path=path)) == 1) is served


@pytest.mark.parametrize(
    ("path", "served"),
    [("/sport/cricket", True), ("/sport/private/scores", False), ("/about", False)],
)
def test_excluded_paths_win_over_included_paths(path: str, served: bool) -> None:
    snap = targeted(paths=["/sport/*"], exclude_paths=["/sport/private/*"])
    assert (served_campaign(snap, request(path=path)) == 1) is served


def test_excluded_paths_alone_allow_every_other_path() -> None:
    snap = targeted(exclude_paths=["/checkout*"])
    assert served_campaign(snap, request(path="/blog/post")) == 1
    assert decide_slot(snap, request(path="/checkout/pay")) is None


@pytest.mark.parametrize(
    ("keywords", "served"),
    [({"cricket"}, True), ({"travel", "cricket"}, True), ({"travel"}, False), (set(), False)],
)
def test_keyword_targeting_needs_one_shared_keyword(keywords: set[str], served: bool) -> None:
    snap = targeted(keywords=["Cricket", "football"])
    req = request(keywords=frozenset(keywords))
    assert (served_campaign(snap, req) == 1) is served


@pytest.mark.parametrize(
    ("keywords", "served"), [({"cricket"}, True), (set(), True), ({"cricket", "gambling"}, False)]
)
def test_any_excluded_keyword_blocks_the_campaign(keywords: set[str], served: bool) -> None:
    snap = targeted(exclude_keywords=["gambling"])
    req = request(keywords=frozenset(keywords))
    assert (served_campaign(snap, req) == 1) is served


@pytest.mark.parametrize(
    ("device", "served"), [("mobile", True), ("tablet", True), ("desktop", False), (None, False)]
)
def test_device_targeting(device: str | None, served: bool) -> None:
    snap = targeted(devices=["mobile", "tablet"])
    assert (served_campaign(snap, request(device=device)) == 1) is served


@pytest.mark.parametrize(("country", "served"), [("IN", True), ("US", False), (None, False)])
def test_country_targeting(country: str | None, served: bool) -> None:
    snap = targeted(countries=["in"])
    assert (served_campaign(snap, request(country=country)) == 1) is served


def test_day_targeting_uses_the_sites_time_zone() -> None:
    # Sunday 20:00 UTC is already Monday 01:30 in Kolkata; Monday is day 0.
    sunday_evening_utc = utc(2026, 11, 29, 20, 0)
    monday = snapshot(
        slot(campaign(1, targeting=compile_targeting({"days": [0]}))), timezone="Asia/Kolkata"
    )
    sunday = snapshot(
        slot(campaign(1, targeting=compile_targeting({"days": [6]}))), timezone="Asia/Kolkata"
    )
    assert served_campaign(monday, request(now=sunday_evening_utc)) == 1
    assert decide_slot(sunday, request(now=sunday_evening_utc)) is None


def test_hour_targeting_uses_the_sites_time_zone() -> None:
    # 18:30 UTC is midnight in Kolkata.
    at = utc(2026, 11, 30, 18, 30)
    midnight = snapshot(
        slot(campaign(1, targeting=compile_targeting({"hours": [0]}))), timezone="Asia/Kolkata"
    )
    utc_hour = snapshot(
        slot(campaign(1, targeting=compile_targeting({"hours": [18]}))), timezone="Asia/Kolkata"
    )
    assert served_campaign(midnight, request(now=at)) == 1
    assert decide_slot(utc_hour, request(now=at)) is None


def test_a_campaign_must_match_every_kind_of_targeting_it_sets() -> None:
    snap = targeted(paths=["/sport/*"], countries=["IN"], devices=["mobile"])
    match: dict[str, Any] = {"path": "/sport/x", "country": "IN", "device": "mobile"}
    assert served_campaign(snap, request(**match)) == 1
    for field, wrong in (("path", "/news/x"), ("country", "US"), ("device", "desktop")):
        assert decide_slot(snap, request(**{**match, field: wrong})) is None, field


# --- throttle (even pacing) ---------------------------------------------------------------------


def test_a_throttled_campaign_takes_part_in_that_share_of_decisions() -> None:
    snap = snapshot(slot(campaign(1, throttle=0.25)))
    counts = tally(snap, request(), by_campaign)
    assert counts[1] / DRAWS == pytest.approx(0.25, abs=TOLERANCE)


def test_a_throttled_campaign_leaves_the_rest_to_lower_tiers() -> None:
    snap = snapshot(slot(campaign(1, tier="standard", throttle=0.25), campaign(2, tier="house")))
    counts = tally(snap, request(), by_campaign)
    assert counts[None] == 0
    assert counts[2] / DRAWS == pytest.approx(0.75, abs=TOLERANCE)


def test_an_unthrottled_campaign_takes_part_in_every_decision() -> None:
    snap = snapshot(slot(campaign(1, throttle=1.0)))
    assert tally(snap, request(), by_campaign, draws=2_000) == Counter({1: 2_000})


# --- reproducibility and decision ids ---------------------------------------------------------


def test_the_same_seed_gives_the_same_decisions() -> None:
    snap = snapshot(
        slot(
            campaign(1, weight=2, creatives=(creative(11), creative(12))),
            campaign(2),
            campaign(3, throttle=0.5),
            name="a",
        ),
        slot(campaign(4), campaign(5, weight=3), name="b"),
    )
    req = request("a", "b")

    def run(seed: int) -> list[tuple[str, int, int]]:
        rng = random.Random(seed)
        return [
            (d.decision_id, d.campaign.id, d.creative.id)
            for _ in range(100)
            for d in decide(snap, req, rng).decisions.values()
            if d is not None
        ]

    assert run(42) == run(42)
    assert run(42) != run(43)


def test_decision_ids_are_16_url_safe_characters_and_unique() -> None:
    snap = snapshot(slot(campaign(1)))
    rng = random.Random(3)
    ids = []
    for _ in range(1_000):
        decision = decide(snap, request(), rng).decisions[SLOT]
        assert decision is not None
        ids.append(decision.decision_id)
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{16}", i) for i in ids)
    assert len(set(ids)) == len(ids)


def test_a_decision_names_the_slot_campaign_and_one_of_its_creatives() -> None:
    snap = snapshot(slot(campaign(1, creatives=(creative(11), creative(12)))))
    decision = decide_slot(snap, request())
    assert decision is not None
    assert decision.slot.name == SLOT
    assert decision.campaign.id == 1
    assert decision.creative in decision.campaign.creatives
    assert decision.creative.campaign_id == 1


# --- the memo of reader contexts ------------------------------------------------------------


def random_slot(rng: random.Random, slot_id: int) -> SlotSpec:
    """A slot with a random mix of tiers, weights, flights, targeting, caps and throttles."""
    campaigns = []
    for n in range(rng.randrange(1, 12)):
        campaign_id = slot_id * 100 + n
        targeting: dict[str, Any] = {}
        for key, values in (
            ("paths", ["/news/*", "/sport/*"]),
            ("keywords", ["travel", "cricket"]),
            ("devices", ["desktop"]),
            ("countries", ["IN", "GB"]),
            ("days", [0, 2, 4]),
            ("hours", list(range(9, 17))),
        ):
            if rng.random() < 0.15:
                targeting[key] = rng.sample(values, rng.randrange(1, len(values) + 1))
        capped = rng.random() < 0.25
        campaigns.append(
            campaign(
                campaign_id,
                tier=rng.choice(list(TIER_RANK)),
                weight=rng.randrange(0, 5),
                creatives=tuple(
                    creative(campaign_id * 10 + k, weight=rng.randrange(1, 4))
                    for k in range(rng.randrange(1, 4))
                ),
                rotation=rng.choice(("even", "weighted")),
                targeting=compile_targeting(targeting),
                starts_at=rng.choice((None, NOW - DAY, NOW + HOUR)),
                ends_at=rng.choice((None, NOW + 2 * HOUR, NOW + DAY)),
                fc_count=2 if capped else None,
                fc_per="day" if capped else None,
                throttle=rng.choice((1.0, 1.0, 0.5)),
            )
        )
    return slot(*campaigns, name=f"slot-{slot_id}", slot_id=slot_id)


def test_the_memo_of_reader_contexts_never_changes_a_decision() -> None:
    # Each decision is made twice with the same random draws: from the slot's memo (the
    # slot's own sizes), and with the memo emptied, checking every campaign (the page asks
    # for those same sizes, the narrowed path).
    rng = random.Random(11)
    slots = [random_slot(rng, n) for n in range(1, 9)]
    snap = snapshot(*slots)
    differences = []
    for trial in range(3_000):
        chosen = rng.choice(slots)
        context: dict[str, Any] = {
            "now": NOW + rng.choice((-HOUR, 0, 30 * 60, HOUR, 90 * 60, 3 * HOUR, 2 * DAY)),
            "path": rng.choice(("/", "/news/today", "/sport/cricket")),
            "keywords": frozenset(rng.sample(["travel", "food", "cricket"], rng.randrange(3))),
            "device": rng.choice(("desktop", "mobile", None)),
            "country": rng.choice(("IN", "GB", "US", None)),
        }
        if rng.random() < 0.3:
            context["frequency"] = {c.id: (NOW - 60, NOW - 30) for t in chosen.tiers for c in t}
        seed = rng.randrange(2**32)
        memo = decide(snap, request(chosen.name, **context), random.Random(seed))
        kept = dict(chosen.seen)
        chosen.seen.clear()
        checked = decide(
            snap,
            request(SlotRequest(chosen.name, chosen.sizes), **context),
            random.Random(seed),
        )
        chosen.seen.clear()
        chosen.seen.update(kept)
        outcome = memo.decisions[chosen.name], checked.decisions[chosen.name]
        if outcome[0] != outcome[1]:
            differences.append((trial, outcome))
    assert differences == []
    assert any(s.seen for s in slots)


def test_sizes_a_page_narrowed_have_memo_entries_of_their_own() -> None:
    # A phone's tag asks for the slot's narrow sizes only, one lazy slot a request: the same
    # page seen again is decided from the memo, and each set of sizes keeps to its creatives.
    wide, narrow = creative(11, size="728x90"), creative(12, size="300x250")
    snap = snapshot(slot(campaign(1, creatives=(wide, narrow)), sizes=("728x90", "300x250")))
    rng = random.Random(1)
    for _ in range(20):
        phone = decide(snap, request(SlotRequest(SLOT, ("300x250",))), rng).decisions[SLOT]
        desktop = decide(snap, request(SlotRequest(SLOT, ("728x90",))), rng).decisions[SLOT]
        assert phone is not None and phone.creative.id == narrow.id
        assert desktop is not None and desktop.creative.id == wide.id
    assert len(snap.sites["demo"].slots[SLOT].seen) == 2


def test_the_memo_is_bounded_per_slot() -> None:
    by_path = compile_targeting({"paths": ["/page-*"]})
    snap = snapshot(slot(campaign(1, targeting=by_path)))
    rng = random.Random(1)
    for n in range(MEMO_LIMIT * 2 + 10):
        assert decide(snap, request(path=f"/page-{n}"), rng).decisions[SLOT] is not None
    assert 10 <= len(snap.sites["demo"].slots[SLOT].seen) <= MEMO_LIMIT


def test_readers_differing_only_where_no_campaign_targets_share_one_memo_entry() -> None:
    by_device = compile_targeting({"devices": ["desktop"]})
    snap = snapshot(slot(campaign(1, targeting=by_device), campaign(2)))
    rng = random.Random(1)
    for n in range(50):
        decide(snap, request(path=f"/page-{n}", device="desktop", country="IN"), rng)
        decide(snap, request(path=f"/page-{n}", device="mobile", country="GB"), rng)
    assert len(snap.sites["demo"].slots[SLOT].seen) == 2

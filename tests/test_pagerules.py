"""Page rules of the pure engine: a page is decided tier by tier over all of its slots.

Roadblocks take all of their asked-for slots or none; no campaign twice on a page but house
campaigns and roadblocks; two campaigns sharing a label never share a page; lazy slots keep the
rules through ``shown``. The last part checks the engine's promises over random snapshots and
requests with hypothesis.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from playwright.sync_api import Browser
from sqlalchemy import Engine, select, text
from sqlmodel import Session

from adserver.core.db import bump_inventory_version
from adserver.core.models import Slot
from adserver.delivery.decide import (
    TIER_RANK,
    CampaignSpec,
    DecideRequest,
    Decision,
    SlotRequest,
    SlotSpec,
    Snapshot,
    decide,
)
from adserver.delivery.inventory import compile_targeting
from adserver.demo.data import SITE_KEY, add_demo_data
from tests.conftest import BROWSER_UA, LiveServer
from tests.seed import add_campaign, add_creative, publish
from tests.test_browser import (  # noqa: F401  (fixtures: SQLite, demo pages mounted)
    browser,
    database_url,
    playwright,
    server_settings,
)
from tests.test_decide import DAY, HOUR, NOW, campaign, creative, request, slot, snapshot

PAGE = ("top", "side", "below")


def page(*campaigns: CampaignSpec, sizes: dict[str, tuple[str, ...]] | None = None) -> Snapshot:
    """Three slots, each with every campaign given whose creatives fit it."""
    sizes = sizes or {"top": ("728x90",), "side": ("300x250",), "below": ("728x90", "300x250")}
    slots = []
    for number, name in enumerate(PAGE, start=1):
        mine = [c for c in campaigns if any(cr.size in sizes[name] for cr in c.creatives)]
        slots.append(slot(*mine, name=name, sizes=sizes[name], slot_id=number))
    return snapshot(*slots)


def both_sizes(campaign_id: int) -> tuple[Any, ...]:
    return (creative(campaign_id * 100), creative(campaign_id * 100 + 1, size="300x250"))


def chosen(snap: Snapshot, req: DecideRequest, seed: int = 1) -> dict[str, int | None]:
    decisions = decide(snap, req, random.Random(seed)).decisions
    return {name: None if d is None else d.campaign.id for name, d in decisions.items()}


# --- no campaign twice ------------------------------------------------------------------------


def test_a_campaign_fills_one_slot_of_a_page_and_the_next_takes_the_other() -> None:
    snap = page(
        campaign(1, creatives=both_sizes(1)),
        campaign(2, creatives=both_sizes(2)),
        campaign(3, creatives=both_sizes(3)),
    )
    for seed in range(100):
        ids = list(chosen(snap, request(*PAGE), seed).values())
        assert None not in ids and len(set(ids)) == 3


def test_a_house_campaign_may_fill_every_slot() -> None:
    snap = page(campaign(9, tier="house", creatives=both_sizes(9)))
    assert chosen(snap, request(*PAGE)) == {"top": 9, "side": 9, "below": 9}


def test_a_slot_stays_empty_rather_than_repeat_a_campaign() -> None:
    snap = page(campaign(1, creatives=both_sizes(1)))
    assert sorted(chosen(snap, request(*PAGE)).values(), key=str) == [1, None, None]


# --- tier by tier over the page ---------------------------------------------------------------


def test_a_higher_tier_is_placed_before_a_lower_tier_of_an_earlier_slot() -> None:
    # Slot order would give "top" to standard 2 and leave sponsorship 1 only "below", which
    # it then could not take under the label rule; tier order places the sponsorship first.
    sponsor = campaign(1, tier="sponsorship", labels=frozenset({"bank"}), creatives=both_sizes(1))
    rival = campaign(2, labels=frozenset({"bank"}))
    snap = snapshot(
        slot(rival, name="top", slot_id=1),
        slot(sponsor, name="below", sizes=("728x90", "300x250"), slot_id=2),
    )
    for seed in range(50):
        assert chosen(snap, request("top", "below"), seed) == {"top": None, "below": 1}


# --- competitive exclusion --------------------------------------------------------------------


def test_two_campaigns_sharing_a_label_never_share_a_page() -> None:
    snap = page(
        campaign(1, labels=frozenset({"bank"}), creatives=both_sizes(1)),
        campaign(2, labels=frozenset({"bank", "car"}), creatives=both_sizes(2)),
        campaign(3, tier="house", creatives=both_sizes(3)),
    )
    for seed in range(200):
        ids = set(chosen(snap, request(*PAGE), seed).values())
        assert not {1, 2} <= ids
        assert 3 in ids


def test_a_label_shown_earlier_keeps_its_rivals_off_the_lazy_slots() -> None:
    snap = page(
        campaign(1, labels=frozenset({"car"}), creatives=both_sizes(1)),
        campaign(2, labels=frozenset({"car"}), creatives=both_sizes(2)),
    )
    assert chosen(snap, request("below", shown=frozenset({1}))) == {"below": None}
    assert chosen(snap, request("below", shown=frozenset({7}))) in ({"below": 1}, {"below": 2})


def test_a_campaign_shown_earlier_is_not_repeated_on_a_lazy_slot() -> None:
    snap = page(campaign(1, creatives=both_sizes(1)), campaign(2, creatives=both_sizes(2)))
    for seed in range(50):
        assert chosen(snap, request("below", shown=frozenset({1})), seed) == {"below": 2}


# --- roadblocks -------------------------------------------------------------------------------


def roadblock(campaign_id: int, **overrides: Any) -> CampaignSpec:
    return campaign(
        campaign_id,
        tier="sponsorship",
        roadblock=True,
        creatives=both_sizes(campaign_id),
        **overrides,
    )


def test_a_roadblock_takes_every_slot_the_page_asks_for() -> None:
    snap = page(roadblock(1), campaign(2, tier="sponsorship", creatives=both_sizes(2)))
    for seed in range(50):
        assert chosen(snap, request(*PAGE), seed) == {"top": 1, "side": 1, "below": 1}


def test_a_roadblock_that_cannot_show_on_one_slot_takes_none() -> None:
    blocked = roadblock(1)
    only_leaderboard = campaign(1, tier="sponsorship", roadblock=True, creatives=(creative(100),))
    house = campaign(9, tier="house", creatives=both_sizes(9))
    snap = snapshot(
        slot(only_leaderboard, house, name="top", slot_id=1),
        slot(only_leaderboard, house, name="side", sizes=("300x250",), slot_id=2),
    )
    # "side" asks for 300x250 and the roadblock has none: the page gets no part of it.
    assert chosen(snap, request("top", "side")) == {"top": 9, "side": 9}
    # Asked for alone, "top" is all of its slots that the page asked for.
    assert chosen(snap, request("top")) == {"top": 1}
    assert blocked.roadblock


def test_a_throttled_roadblock_is_on_all_of_its_slots_or_none() -> None:
    snap = page(roadblock(1, throttle=0.5), campaign(9, tier="house", creatives=both_sizes(9)))
    outcomes = Counter(tuple(chosen(snap, request(*PAGE), seed).values()) for seed in range(400))
    assert set(outcomes) == {(1, 1, 1), (9, 9, 9)}
    assert 0.4 < outcomes[(1, 1, 1)] / 400 < 0.6


def test_a_page_narrowing_sizes_can_keep_a_roadblock_off() -> None:
    snap = page(roadblock(1), campaign(9, tier="house", creatives=both_sizes(9)))
    narrowed = request("top", SlotRequest("side", ("300x250",)), SlotRequest("below", ("320x50",)))
    assert chosen(snap, narrowed)["top"] == 9


def test_a_roadblock_shown_earlier_fills_the_lazy_slots_it_fits() -> None:
    snap = page(roadblock(1, throttle=0.01), campaign(2, creatives=both_sizes(2)))
    for seed in range(50):
        assert chosen(snap, request("below", shown=frozenset({1})), seed) == {"below": 1}


def test_a_roadblock_cannot_start_on_a_lazy_batch_of_a_page_already_filled() -> None:
    snap = page(roadblock(1), campaign(2, creatives=both_sizes(2)))
    assert chosen(snap, request("below", shown=frozenset({5}))) == {"below": 2}
    assert chosen(snap, request("below", shown=frozenset())) == {"below": 2}


def test_two_roadblocks_over_the_same_slots_never_mix() -> None:
    snap = page(roadblock(1), roadblock(2, weight=3))
    outcomes = Counter(tuple(chosen(snap, request(*PAGE), seed).values()) for seed in range(400))
    assert set(outcomes) == {(1, 1, 1), (2, 2, 2)}
    assert 0.65 < outcomes[(2, 2, 2)] / 400 < 0.85


def test_a_roadblock_beats_a_sponsorship_and_blocks_its_rival_label() -> None:
    snap = page(
        roadblock(1, labels=frozenset({"bikes"})),
        campaign(2, tier="sponsorship", creatives=both_sizes(2)),
        campaign(3, labels=frozenset({"bikes"}), creatives=both_sizes(3)),
    )
    for seed in range(50):
        assert chosen(snap, request(*PAGE), seed) == {"top": 1, "side": 1, "below": 1}


# --- properties over random snapshots ---------------------------------------------------------

LABELS = ("bank", "car", "bikes")


#: Times around the scenarios' flight bounds (NOW - DAY, NOW - HOUR, NOW + HOUR, NOW + DAY).
MOMENTS = (NOW - 2 * DAY, NOW - DAY, NOW - HOUR / 2, NOW, NOW + HOUR, NOW + 2 * DAY)
#: Other readers of the page, or of other pages of the site (other slots asked).
CONTEXTS = st.fixed_dictionaries(
    {
        "path": st.sampled_from(("/news/a", "/about")),
        "device": st.sampled_from(("desktop", "mobile", None)),
    },
    optional={
        "slots": st.lists(st.sampled_from(PAGE), min_size=1, max_size=3, unique=True).map(
            lambda names: tuple(SlotRequest(name) for name in names)
        ),
    },
)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Callable[[], Snapshot], DecideRequest, int]:
    """A random 3-slot site (a function building it afresh, with nothing remembered yet) and
    a random request to it."""
    campaigns = []
    for n in range(1, draw(st.integers(1, 9)) + 1):
        tier = draw(st.sampled_from(list(TIER_RANK)))
        targeting: dict[str, Any] = {}
        if draw(st.booleans()):
            targeting["devices"] = [draw(st.sampled_from(("desktop", "mobile")))]
        if draw(st.booleans()):
            targeting["paths"] = ["/news/*"]
        capped = draw(st.booleans())
        sizes = draw(st.sampled_from((("728x90",), ("300x250",), ("728x90", "300x250"))))
        campaigns.append(
            campaign(
                n,
                tier=tier,
                weight=draw(st.integers(0, 4)),
                creatives=tuple(creative(n * 100 + k, size=s) for k, s in enumerate(sizes)),
                targeting=compile_targeting(targeting),
                starts_at=draw(st.sampled_from((None, NOW - DAY, NOW + HOUR))),
                ends_at=draw(st.sampled_from((None, NOW - HOUR, NOW + DAY))),
                fc_count=1 if capped else None,
                fc_per="day" if capped else None,
                throttle=draw(st.sampled_from((1.0, 1.0, 0.5, 0.2))),
                labels=frozenset(draw(st.lists(st.sampled_from(LABELS), max_size=2))),
                roadblock=tier == "sponsorship" and draw(st.booleans()),
            )
        )
    assigned = {c.id: draw(st.sets(st.sampled_from(PAGE), min_size=1)) for c in campaigns}
    sizes = {"top": ("728x90",), "side": ("300x250",), "below": ("728x90", "300x250")}
    booked = [[c for c in campaigns if name in assigned[c.id]] for name in PAGE]

    def build() -> Snapshot:
        return snapshot(
            *(
                slot(*mine, name=name, sizes=sizes[name], slot_id=number)
                for number, (name, mine) in enumerate(zip(PAGE, booked, strict=True), start=1)
            )
        )

    asked = draw(st.lists(st.sampled_from(PAGE), min_size=1, max_size=3, unique=True))
    req = request(
        *asked,
        path=draw(st.sampled_from(("/news/a", "/about"))),
        device=draw(st.sampled_from(("desktop", "mobile"))),
        frequency={c.id: (NOW - 60,) for c in campaigns if draw(st.booleans())},
        shown=draw(st.sampled_from((None, frozenset(), frozenset({1}), frozenset({2})))),
    )
    return build, req, draw(st.integers(0, 2**32 - 1))


def eligible_somewhere(c: CampaignSpec, req: DecideRequest) -> bool:
    """Everything but the throttle's draw and the page rules that a campaign must pass (a
    roadblock the page already shows is not capped again on its lazy slots)."""
    if not c.opens <= req.now < c.closes or c.throttle <= 0:
        return False
    t = c.targeting
    if t.devices and req.device not in t.devices:
        return False
    if t.paths is not None and not t.paths.match(req.path):
        return False
    if c.roadblock and c.id in (req.shown or ()):
        return True
    return not (c.fc_count is not None and c.id in req.frequency)


@settings(max_examples=200, deadline=None)
@given(scenarios())
def test_the_engine_keeps_its_promises_on_any_page(
    scenario: tuple[Callable[[], Snapshot], DecideRequest, int],
) -> None:
    build, req, seed = scenario
    snap = build()
    result = decide(snap, req, random.Random(seed))
    placed = [d for d in result.decisions.values() if d is not None]
    site = snap.sites["demo"]
    for decision in placed:
        assert eligible_somewhere(decision.campaign, req)
        assert decision.creative in decision.campaign.creatives
    _no_campaign_twice(placed)
    _no_shared_label(placed, req, site.campaigns)
    _roadblocks_all_or_none(result.decisions, req, site.roadblocks)
    _higher_tier_wins(result.decisions, req, site.slots)
    again = decide(snap, req, random.Random(seed))
    assert [(d.campaign.id, d.creative.id) for d in placed] == [
        (d.campaign.id, d.creative.id) for d in again.decisions.values() if d is not None
    ]


@settings(max_examples=200, deadline=None)
@given(scenarios(), st.lists(st.tuples(st.sampled_from(MOMENTS), CONTEXTS), max_size=6))
def test_what_the_engine_remembers_of_earlier_readers_never_changes_a_decision(
    scenario: tuple[Callable[[], Snapshot], DecideRequest, int],
    earlier: list[tuple[float, dict[str, Any]]],
) -> None:
    """A site remembers what it worked out for a page and a reader context, for as long as no
    flight starts or ends: other readers, other pages and other times before the request never
    change what the same random draws decide."""
    build, req, seed = scenario
    remembering = build()
    for moment, context in earlier:
        decide(remembering, req._replace(now=moment, **context), random.Random(0))
    fresh = decide(build(), req, random.Random(seed)).decisions
    assert outcome(decide(remembering, req, random.Random(seed)).decisions) == outcome(fresh)


def outcome(decisions: dict[str, Decision | None]) -> dict[str, tuple[int, int] | None]:
    return {
        name: None if d is None else (d.campaign.id, d.creative.id) for name, d in decisions.items()
    }


def _no_campaign_twice(placed: list[Decision]) -> None:
    counts = Counter(d.campaign.id for d in placed if not d.campaign.repeats)
    assert all(n == 1 for n in counts.values())


def _no_shared_label(placed: list[Decision], req: DecideRequest, campaigns: Any) -> None:
    """No placed campaign shares a label with another placed one or with one already shown."""
    others = {d.campaign for d in placed} | {
        campaigns[i] for i in req.shown or () if i in campaigns
    }
    for d in placed:
        for other in others:
            if other.id != d.campaign.id:
                assert d.campaign.labels.isdisjoint(other.labels)
        if req.shown is not None and d.campaign.id in req.shown:
            assert d.campaign.repeats


def _roadblocks_all_or_none(
    decisions: dict[str, Decision | None], req: DecideRequest, roadblocks: Any
) -> None:
    for c, fitting in roadblocks:
        names = set(fitting)
        mine = [n for n in decisions if n in names]
        got = [n for n in mine if (d := decisions[n]) is not None and d.campaign.id == c.id]
        assert got == [] or got == mine


def _higher_tier_wins(
    decisions: dict[str, Decision | None], req: DecideRequest, slots: dict[str, SlotSpec]
) -> None:
    """A slot never goes to a lower tier than an untargeted, unthrottled, uncapped, unlabelled
    campaign in flight with a fitting creative, which nothing can turn away (but a roadblock)."""
    for name, decision in decisions.items():
        sure = [
            c
            for tier in slots[name].tiers
            for c in tier
            if eligible_somewhere(c, req)
            and c.throttle >= 1.0
            and not c.labels
            and not c.roadblock
            and not c.repeats
            and (req.shown is None or c.id not in req.shown)
            and not c.targeting.constrained
            and any(cr.size in slots[name].sizes for cr in c.creatives)
        ]
        if not sure or len(decisions) > 1:
            continue
        best = min(TIER_RANK[c.tier] for c in sure)
        assert decision is not None and TIER_RANK[decision.campaign.tier] <= best


# --- on a live server and in a browser --------------------------------------------------------


def add_roadblock(engine: Engine, *, sizes: tuple[tuple[int, int], ...]) -> int:
    """A roadblock sponsorship on all three demo slots, with a creative of each size given."""
    with Session(engine) as session:
        slots = list(session.scalars(select(Slot)))
        block = add_campaign(
            session,
            slots,
            advertiser="Harbourside",
            name="Launch day",
            tier="sponsorship",
            roadblock=True,
            labels=["bikes"],
        )
        for width, height in sizes:
            add_creative(session, block, width=width, height=height)
        block_id = int(block.id or 0)
        publish(session)
    return block_id


def decided(server: LiveServer, slots: str, **params: str) -> dict[str, Any]:
    with server.client() as client:
        answer = client.get(
            "/v1/decide", params={"site": SITE_KEY, "slots": slots, "url": "/a", **params}
        )
    assert answer.status_code == 200, answer.text
    return {n: d and d["campaign"] for n, d in answer.json()["decisions"].items()}


@pytest.fixture
def demo_site(engine: Engine, live_server: LiveServer) -> LiveServer:
    assert add_demo_data(engine, base_url=live_server.url) is not None
    return live_server


def test_page_rules_through_decide(demo_site: LiveServer, engine: Engine) -> None:
    block = add_roadblock(engine, sizes=((728, 90), (300, 250)))
    demo_site.runtime.inventory.rebuild()
    everything = "top-of-post,below-post,ads-area"
    assert set(decided(demo_site, everything).values()) == {block}
    # A lazy batch of a page that shows the roadblock gets it; one that does not, never.
    assert decided(demo_site, "below-post", shown=str(block)) == {"below-post": block}
    lazy = decided(demo_site, "below-post", shown="")
    assert lazy["below-post"] not in (block, None)
    # The tearoom's campaign is on top already: no campaign twice on one page.
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE campaign SET status = 'paused' WHERE id = :i"), {"i": block}
        )
        bump_inventory_version(connection)
        tearoom = connection.execute(
            text("SELECT id FROM campaign WHERE tier = 'standard'")
        ).scalar_one()
    demo_site.runtime.inventory.rebuild()
    assert decided(demo_site, "below-post", shown=str(tearoom))["below-post"] != tearoom


def test_a_roadblock_without_a_size_for_one_slot_shows_on_none(
    demo_site: LiveServer, engine: Engine
) -> None:
    block = add_roadblock(engine, sizes=((728, 90),))  # nothing for ads-area's 300x250
    demo_site.runtime.inventory.rebuild()
    for _ in range(20):
        assert block not in decided(demo_site, "top-of-post,below-post,ads-area").values()
    assert decided(demo_site, "top-of-post,below-post") == {
        "top-of-post": block,
        "below-post": block,
    }


@pytest.mark.browser
@pytest.mark.parametrize("height", [4000, 500])
def test_a_roadblock_fills_all_three_demo_slots_in_a_browser(
    demo_site: LiveServer,
    engine: Engine,
    browser: Browser,  # noqa: F811
    height: int,
) -> None:
    """Tall: one request for the page. Short: the lower slots load lazily, in later requests
    that send what the page shows, and the roadblock fills them too."""
    block = add_roadblock(engine, sizes=((728, 90), (300, 250)))
    demo_site.runtime.inventory.rebuild()
    context = browser.new_context(user_agent=BROWSER_UA, viewport={"width": 1280, "height": height})
    page = context.new_page()
    answers: list[dict[str, Any]] = []
    page.on("response", lambda r: answers.append(r.json()) if "/v1/decide" in r.url else None)
    page.goto(f"{demo_site.url}/demo/")
    for name in ("top-of-post", "below-post", "ads-area"):
        slot = page.locator(f'ins[data-ad-slot="{name}"]')
        slot.scroll_into_view_if_needed()
        page.locator(f'ins[data-ad-slot="{name}"][data-ad-status="filled"]').wait_for(
            state="attached", timeout=10_000
        )
    context.close()
    campaigns = [d["campaign"] for a in answers for d in a["decisions"].values()]
    assert campaigns == [block, block, block]
    assert (len(answers) == 1) == (height == 4000)

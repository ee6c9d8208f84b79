"""Specification of the inventory snapshot (``adserver.inventory``) and of pacing's throttle.

The snapshot is everything a decision needs, read from the database in one pass: only what can
deliver goes in (active campaigns with active creatives, goals and budgets not yet met), grouped
by priority tier, with flight dates turned from the site's wall clock into UNIX times. Tests run
on a real SQLite file in a temporary directory, migrated like a production database.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import orjson
import pytest
from sqlalchemy import Engine, select
from sqlmodel import Session

from adserver.core.db import bump_inventory_version, make_engine, migrate
from adserver.core.models import (
    Advertiser,
    Campaign,
    CampaignDelivery,
    CampaignSlot,
    Creative,
    HourlyStat,
    Site,
    Slot,
    table,
)
from adserver.delivery import pacing, render
from adserver.delivery.decide import (
    CampaignSpec,
    CreativeSpec,
    DecideRequest,
    SlotRequest,
    Snapshot,
    Targeting,
    decide,
    smoothed_ctr,
)
from adserver.delivery.inventory import (
    REBUILD_SHARE,
    Inventory,
    Reuse,
    build_snapshot,
    compile_targeting,
)

BASE_URL = "https://ads.example"
KOLKATA = ZoneInfo("Asia/Kolkata")
#: Monday 2026-11-30 12:00 UTC (17:30 in Kolkata).
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC).timestamp()

Row = TypeVar("Row")


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    url = f"sqlite:///{tmp_path / 'adserver.db'}"
    migrate(url)
    engine = make_engine(url)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with Session(engine) as session:
        yield session


# --- factories: each adds one row with sensible defaults and returns it with its id -------------


def make_site(session: Session, **overrides: Any) -> Site:
    values: dict[str, Any] = {"key": "demo", "name": "Demo blog", "domains": ["blog.example"]}
    return _add(session, Site(**{**values, **overrides}))


def make_slot(session: Session, *, site: Site, **overrides: Any) -> Slot:
    values: dict[str, Any] = {"name": "top-of-post", "sizes": ["728x90"]}
    return _add(session, Slot(site_id=pk(site), **{**values, **overrides}))


def make_campaign(
    session: Session, *, slots: list[Slot], with_creative: bool = True, **overrides: Any
) -> Campaign:
    """An active standard campaign assigned to ``slots``, with one active 728x90 image."""
    advertiser = session.get(Advertiser, 1) or _add(session, Advertiser(name="Acme"))
    values: dict[str, Any] = {"name": "Spring sale", "status": "active", "tier": "standard"}
    campaign = _add(session, Campaign(advertiser_id=pk(advertiser), **{**values, **overrides}))
    for slot in slots:
        session.add(CampaignSlot(campaign_id=pk(campaign), slot_id=pk(slot)))
    if with_creative:
        make_creative(session, campaign=campaign)
    return campaign


def make_creative(session: Session, *, campaign: Campaign, **overrides: Any) -> Creative:
    values: dict[str, Any] = {
        "name": "Leaderboard",
        "kind": "image",
        "width": 728,
        "height": 90,
        "click_url": "https://acme.example/sale",
        "image": b"\x89PNG",
        "image_type": "image/png",
    }
    return _add(session, Creative(campaign_id=pk(campaign), **{**values, **overrides}))


def make_delivery(session: Session, *, campaign: Campaign, **overrides: Any) -> CampaignDelivery:
    return _add(session, CampaignDelivery(campaign_id=pk(campaign), **overrides))


def pk(row: Site | Slot | Advertiser | Campaign | Creative) -> int:
    """The id of a row that has been flushed."""
    assert row.id is not None
    return row.id


def _add(session: Session, row: Row) -> Row:
    session.add(row)
    session.flush()
    return row


def snapshot_of(session: Session, *, now: float = NOW) -> Snapshot:
    session.commit()
    with session.get_bind().connect() as connection:  # type: ignore[union-attr]
        return build_snapshot(connection, base_url=BASE_URL, now=now)


def campaigns_in(snapshot: Snapshot, slot: str = "top-of-post", site: str = "demo") -> list[int]:
    return [c.id for tier in snapshot.sites[site].slots[slot].tiers for c in tier]


def only_campaign(snapshot: Snapshot, slot: str = "top-of-post") -> CampaignSpec:
    (tier,) = snapshot.sites["demo"].slots[slot].tiers
    (campaign,) = tier
    return campaign


# --- what is deliverable ------------------------------------------------------------------------


def test_only_active_campaigns_are_in_the_snapshot(session: Session) -> None:
    slot = make_slot(session, site=make_site(session))
    ids = {
        status: pk(make_campaign(session, slots=[slot], status=status))
        for status in ("draft", "active", "paused", "archived")
    }
    snapshot = snapshot_of(session)
    assert campaigns_in(snapshot) == [ids["active"]]
    assert {c.campaign_id for c in snapshot.creatives.values()} == {ids["active"]}


def test_inactive_creatives_are_left_out(session: Session) -> None:
    slot = make_slot(session, site=make_site(session))
    campaign = make_campaign(session, slots=[slot], with_creative=False)
    active = make_creative(session, campaign=campaign, status="active")
    make_creative(session, campaign=campaign, status="paused")
    make_creative(session, campaign=campaign, status="archived")
    snapshot = snapshot_of(session)
    assert [c.id for c in only_campaign(snapshot).creatives] == [pk(active)]
    assert set(snapshot.creatives) == {pk(active)}


def test_a_campaign_with_no_active_creative_is_left_out(session: Session) -> None:
    slot = make_slot(session, site=make_site(session))
    make_campaign(session, slots=[slot], with_creative=False)  # no creative at all
    paused_only = make_campaign(session, slots=[slot], with_creative=False)
    make_creative(session, campaign=paused_only, status="paused")
    deliverable = make_campaign(session, slots=[slot])
    assert campaigns_in(snapshot_of(session)) == [pk(deliverable)]


def test_a_campaign_appears_only_in_the_slots_it_is_assigned_to(session: Session) -> None:
    site = make_site(session)
    top = make_slot(session, site=site, name="top-of-post")
    below = make_slot(session, site=site, name="below-post")
    both = make_campaign(session, slots=[top, below])
    top_only = make_campaign(session, slots=[top])
    snapshot = snapshot_of(session)
    assert sorted(campaigns_in(snapshot, "top-of-post")) == sorted([pk(both), pk(top_only)])
    assert campaigns_in(snapshot, "below-post") == [pk(both)]


def test_campaigns_are_grouped_by_tier_highest_priority_first(session: Session) -> None:
    slot = make_slot(session, site=make_site(session))
    for tier in ("house", "standard", "price", "sponsorship", "standard"):
        make_campaign(session, slots=[slot], tier=tier)
    tiers = snapshot_of(session).sites["demo"].slots["top-of-post"].tiers
    assert [[c.tier for c in tier] for tier in tiers] == [
        ["sponsorship"],
        ["standard", "standard"],
        ["price"],
        ["house"],
    ]


def test_a_campaign_that_met_its_goal_is_left_out(session: Session) -> None:
    slot = make_slot(session, site=make_site(session))
    done = make_campaign(session, slots=[slot], goal_kind="impressions", goal_total=1000)
    make_delivery(session, campaign=done, impressions=1000)
    running = make_campaign(session, slots=[slot], goal_kind="impressions", goal_total=1000)
    make_delivery(session, campaign=running, impressions=999)
    assert campaigns_in(snapshot_of(session)) == [pk(running)]


def test_ctr_rotation_carries_each_creatives_smoothed_ctr_from_the_statistics(
    session: Session,
) -> None:
    site = make_site(session)
    slot = make_slot(session, site=site)
    campaign = make_campaign(session, slots=[slot], rotation="ctr", with_creative=False)
    good = make_creative(session, campaign=campaign, name="good")
    fresh = make_creative(session, campaign=campaign, name="fresh")
    hour = {"site_id": pk(site), "slot_id": pk(slot), "campaign_id": pk(campaign)}
    for at, impressions, clicks in ((1_790_000_000, 600, 20), (1_790_003_600, 400, 10)):
        _add(
            session,
            HourlyStat(
                hour=at, creative_id=pk(good), impressions=impressions, clicks=clicks, **hour
            ),
        )
    specs = {c.id: c for c in only_campaign(snapshot_of(session)).creatives}
    assert specs[pk(good)].ctr == pytest.approx(smoothed_ctr(1000, 30))
    assert specs[pk(fresh)].ctr == pytest.approx(smoothed_ctr(0, 0))


def test_an_even_paced_campaign_ahead_of_schedule_is_throttled(session: Session) -> None:
    slot = make_slot(session, site=make_site(session))
    campaign = make_campaign(
        session,
        slots=[slot],
        pacing="even",
        goal_kind="impressions",
        goal_total=10_000,
        starts_at=datetime(2026, 11, 1),
        ends_at=datetime(2026, 12, 31),
    )
    make_delivery(session, campaign=campaign, impressions=9_000)
    assert 0 < only_campaign(snapshot_of(session)).throttle < 1


# --- sites, slots and creatives as the engine sees them ------------------------------------------


def test_a_site_carries_its_zone_lowercased_domains_and_slots(session: Session) -> None:
    site = make_site(session, timezone="Asia/Kolkata", domains=["Blog.Example", "WWW.blog.example"])
    make_slot(session, site=site, name="sidebar", sizes=["300x250", "fluid"])
    spec = snapshot_of(session).sites["demo"]
    assert spec.timezone == KOLKATA
    assert spec.domains == {"blog.example", "www.blog.example"}
    assert spec.slots["sidebar"].sizes == ("300x250", "fluid")


def test_a_creative_with_a_zero_dimension_is_fluid(session: Session) -> None:
    slot = make_slot(session, site=make_site(session))
    campaign = make_campaign(session, slots=[slot], with_creative=False)
    fixed = make_creative(session, campaign=campaign, width=300, height=250)
    fluid = make_creative(session, campaign=campaign, kind="text", width=0, height=0, title="Hi")
    fluid_height = make_creative(session, campaign=campaign, width=300, height=0)
    creatives = snapshot_of(session).creatives
    assert creatives[pk(fixed)].size == "300x250"
    assert creatives[pk(fluid)].size == "fluid"
    assert creatives[pk(fluid_height)].size == "fluid"


TOKEN = "T0KEN"
CLICK = f"{BASE_URL}/v1/click/{TOKEN}"


def markup_of(spec: CreativeSpec) -> str:
    """The creative's markup as a decision whose token is TOKEN shows it."""
    html: str = orjson.loads(render.fill(spec.answer, b"ID", TOKEN.encode()))["html"]
    return html


def test_image_markup_is_a_sponsored_link_to_the_click_url(session: Session) -> None:
    slot = make_slot(session, site=make_site(session))
    campaign = make_campaign(session, slots=[slot], with_creative=False)
    image = make_creative(session, campaign=campaign, name='Big "sale" <now>')
    markup = markup_of(snapshot_of(session).creatives[pk(image)])
    assert 'rel="sponsored noopener"' in markup
    assert f'href="{CLICK}"' in markup
    assert f"{BASE_URL}/v1/asset/{pk(image)}?v=" in markup
    assert 'width="728" height="90"' in markup
    assert "&lt;now&gt;" in markup
    assert "<now>" not in markup


def test_text_markup_is_a_sponsored_link_with_escaped_text(session: Session) -> None:
    slot = make_slot(session, site=make_site(session))
    campaign = make_campaign(session, slots=[slot], with_creative=False)
    text = make_creative(
        session,
        campaign=campaign,
        kind="text",
        width=0,
        height=0,
        title="Tea & <b>biscuits</b>",
        body="Fresh daily",
        cta="Order now",
        image=None,
        image_type=None,
    )
    markup = markup_of(snapshot_of(session).creatives[pk(text)])
    assert 'rel="sponsored noopener"' in markup
    assert f'href="{CLICK}"' in markup
    assert "Tea &amp; &lt;b&gt;biscuits&lt;/b&gt;" in markup
    assert "Fresh daily" in markup
    assert "Order now" in markup
    assert "<img" not in markup


def test_html_markup_is_kept_as_written(session: Session) -> None:
    slot = make_slot(session, site=make_site(session))
    campaign = make_campaign(session, slots=[slot], with_creative=False)
    html = '<div><a href="%%CLICK_URL%%">Buy</a><script>track()</script></div>'
    creative = make_creative(
        session, campaign=campaign, kind="html", html=html, image=None, image_type=None
    )
    assert markup_of(snapshot_of(session).creatives[pk(creative)]) == html.replace(
        "%%CLICK_URL%%", CLICK
    )


def test_the_snapshot_carries_the_inventory_version(session: Session) -> None:
    make_site(session)
    assert snapshot_of(session).version == 0


def rebuilt(session: Session, reuse: Reuse) -> Snapshot:
    session.commit()
    with session.get_bind().connect() as connection:  # type: ignore[union-attr]
        return build_snapshot(connection, base_url=BASE_URL, now=NOW, reuse=reuse)


def test_a_rebuild_reuses_the_specs_of_creatives_that_did_not_change(session: Session) -> None:
    slot = make_slot(session, site=make_site(session))
    campaign = make_campaign(session, slots=[slot], with_creative=False)
    kept = make_creative(session, campaign=campaign, name="kept")
    edited = make_creative(session, campaign=campaign, name="edited")
    reuse = Reuse()
    first = rebuilt(session, reuse)
    # An edit that leaves updated_at alone is still seen: specs are kept by the row's content.
    edited.click_url = "https://acme.example/new-landing"
    session.add(edited)
    second = rebuilt(session, reuse)
    assert second.creatives[pk(kept)] is first.creatives[pk(kept)]
    assert second.creatives[pk(edited)].click_url == "https://acme.example/new-landing"
    assert first.creatives[pk(edited)].click_url == "https://acme.example/sale"


class SteppingClock:
    """A monotonic clock the test sets; every reading also moves it on by ``step``, so a rebuild,
    which reads it when it starts and when it ends, takes ``step`` seconds."""

    def __init__(self, step: float) -> None:
        self.now = 0.0
        self.step = step

    def __call__(self) -> float:
        reading = self.now
        self.now += self.step
        return reading


def test_rebuilds_take_at_most_a_twentieth_of_the_time_while_campaigns_keep_changing(
    engine: Engine, session: Session
) -> None:
    make_campaign(session, slots=[make_slot(session, site=make_site(session))])
    session.commit()
    assert REBUILD_SHARE == 0.05
    clock = SteppingClock(step=1.0)
    inventory = Inventory(engine, base_url=BASE_URL, clock=clock)
    inventory.rebuild()  # read at 0 s and at 1 s: it took 1 s, so it rests 19 s, until 20 s
    first = inventory.current
    with engine.begin() as connection:
        bump_inventory_version(connection)
    clock.now = 19.0
    inventory.rebuild_when_due()
    assert inventory.current is first  # the change waits for the rest to end
    clock.now = 20.0
    inventory.rebuild_when_due()
    assert inventory.current.version == first.version + 1


def test_campaigns_with_the_same_targeting_share_one_compiled_targeting(
    session: Session,
) -> None:
    slot = make_slot(session, site=make_site(session))
    sport = {"paths": ["/sport/*"], "keywords": ["Football"]}
    first = make_campaign(session, slots=[slot], targeting=sport, name="first")
    # The same content, keys in another order.
    second = make_campaign(session, slots=[slot], targeting=dict(reversed(sport.items())))
    other = make_campaign(session, slots=[slot], targeting={"devices": ["mobile"]}, name="o")
    reuse = Reuse()

    def targetings() -> dict[int, Targeting]:
        campaigns = rebuilt(session, reuse).sites["demo"].slots[slot.name].tiers[0]
        return {c.id: c.targeting for c in campaigns}

    before = targetings()
    assert before[pk(first)] is before[pk(second)]
    assert before[pk(first)].keywords == frozenset({"football"})
    assert before[pk(other)].devices == frozenset({"mobile"})
    second.targeting = {"paths": ["/news/*"]}
    session.add(second)
    after = targetings()
    assert after[pk(first)] is before[pk(first)]  # kept across the rebuild
    assert after[pk(second)].paths is not None and after[pk(second)].paths.match("/news/a")
    assert not after[pk(second)].keywords


def test_a_creative_whose_ctr_moved_gets_a_new_spec(session: Session) -> None:
    slot = make_slot(session, site=make_site(session))
    campaign = make_campaign(session, slots=[slot], with_creative=False, rotation="ctr")
    creative = make_creative(session, campaign=campaign)
    reuse = Reuse()
    before = rebuilt(session, reuse).creatives[pk(creative)]
    session.add(
        HourlyStat(
            hour=0,
            site_id=0,
            slot_id=0,
            campaign_id=pk(campaign),
            creative_id=pk(creative),
            impressions=1000,
            clicks=50,
        )
    )
    after = rebuilt(session, reuse).creatives[pk(creative)]
    assert after.ctr > before.ctr


def test_a_creative_read_again_and_again_keeps_one_spec(session: Session) -> None:
    # Between two full rebuilds, patches and the timed refreshes read creatives again (a
    # rotation by click rate every 30 s, its figures moving each time).
    slot = make_slot(session, site=make_site(session))
    campaign = make_campaign(session, slots=[slot], with_creative=False, rotation="ctr")
    make_creative(session, campaign=campaign)
    session.commit()
    creatives = table(Creative)
    columns = [column for column in creatives.c if column.name != "image"]
    with session.get_bind().connect() as connection:  # type: ignore[union-attr]
        row = connection.execute(select(*columns)).one()
    reuse = Reuse()
    specs = [reuse.creative(row, BASE_URL, (1000, clicks), row.click_url) for clicks in range(50)]
    assert len({id(spec) for spec in specs}) == 50
    assert reuse.kept == 1
    assert reuse.creative(row, BASE_URL, (1000, 49), row.click_url) is specs[-1]


# --- flight dates are booked in the site's time zone ---------------------------------------------


def test_a_flight_is_kept_as_the_wall_clock_time_it_was_booked_for(engine: Engine) -> None:
    # models.Campaign: "starts_at and ends_at are wall-clock times in the time zone of the site
    # the campaign serves on (stored without a zone)". The inventory reads them that way.
    with Session(engine) as session:
        slot = make_slot(session, site=make_site(session, timezone="Asia/Kolkata"))
        try:
            campaign = make_campaign(session, slots=[slot], starts_at=datetime(2026, 12, 1))
        except ValueError as error:
            pytest.fail(f"a naive wall-clock flight start cannot be stored: {error}")
        session.commit()
        campaign_id = pk(campaign)
    with Session(engine) as session:
        stored = session.get(Campaign, campaign_id)
        assert stored is not None
        assert stored.starts_at is not None
        assert stored.starts_at.replace(tzinfo=None) == datetime(2026, 12, 1)


def test_a_flight_booked_in_kolkata_starts_at_local_midnight(session: Session) -> None:
    site = make_site(session, timezone="Asia/Kolkata")
    slot = make_slot(session, site=site)
    campaign = make_campaign(
        session,
        slots=[slot],
        starts_at=datetime(2026, 12, 1, 0, 0),
        ends_at=datetime(2026, 12, 8, 0, 0),
    )
    snapshot = snapshot_of(session)

    def served_at(*utc: int) -> int | None:
        now = datetime(*utc, tzinfo=UTC).timestamp()  # type: ignore[arg-type, misc]
        request = DecideRequest(site="demo", slots=(SlotRequest("top-of-post"),), now=now)
        decision = decide(snapshot, request, random.Random(1)).decisions["top-of-post"]
        return None if decision is None else decision.campaign.id

    assert served_at(2026, 11, 30, 18, 29) is None
    assert served_at(2026, 11, 30, 18, 29, 59) is None
    assert served_at(2026, 11, 30, 18, 30) == pk(campaign)
    assert served_at(2026, 12, 7, 18, 29, 59) == pk(campaign)
    assert served_at(2026, 12, 7, 18, 30) is None


def test_flight_bounds_become_unix_times_in_the_sites_zone(session: Session) -> None:
    site = make_site(session, timezone="Asia/Kolkata")
    make_campaign(
        session,
        slots=[make_slot(session, site=site)],
        starts_at=datetime(2026, 12, 1, 0, 0),
        ends_at=None,
    )
    spec = only_campaign(snapshot_of(session))
    assert spec.starts_at == datetime(2026, 11, 30, 18, 30, tzinfo=UTC).timestamp()
    assert spec.ends_at is None


# --- targeting is compiled once ----------------------------------------------------------------


def test_compile_targeting_turns_lists_into_sets() -> None:
    targeting = compile_targeting(
        {
            "keywords": ["Cricket", " travel ", ""],
            "exclude_keywords": ["Gambling"],
            "devices": ["Mobile", "tablet"],
            "countries": ["in", "GB"],
            "days": [0, "6"],
            "hours": ["9", 17],
        }
    )
    assert targeting.keywords == frozenset({"cricket", "travel"})
    assert targeting.exclude_keywords == frozenset({"gambling"})
    assert targeting.devices == frozenset({"mobile", "tablet"})
    assert targeting.countries == frozenset({"IN", "GB"})
    assert targeting.days == frozenset({0, 6})
    assert targeting.hours == frozenset({9, 17})


def test_compile_targeting_turns_path_patterns_into_one_anchored_regex() -> None:
    targeting = compile_targeting(
        {"paths": ["/sport/*", "/travel/goa"], "exclude_paths": ["*.amp"]}
    )
    assert targeting.paths is not None
    assert targeting.exclude_paths is not None
    assert targeting.paths.match("/sport/cricket/final")
    assert targeting.paths.match("/travel/goa")
    assert not targeting.paths.match("/travel/goa/beaches")
    assert not targeting.paths.match("/news/sport/cricket")
    assert targeting.exclude_paths.match("/sport/cricket.amp")
    assert not targeting.exclude_paths.match("/sport/cricket.amp.html")


def test_compile_targeting_of_nothing_means_any() -> None:
    raws: list[dict[str, Any]] = [{}, {"paths": [], "keywords": None, "days": []}]
    for raw in raws:
        targeting = compile_targeting(raw)
        assert targeting.paths is None
        assert targeting.exclude_paths is None
        assert not (targeting.keywords or targeting.devices or targeting.countries)
        assert not (targeting.days or targeting.hours)


# --- pacing.throttle ----------------------------------------------------------------------------


def pacing_campaign(**overrides: Any) -> Campaign:
    values: dict[str, Any] = {
        "advertiser_id": 1,
        "name": "Flight",
        "status": "active",
        "pacing": "even",
        "goal_kind": "impressions",
        "goal_total": 10_000,
        "starts_at": datetime(2026, 11, 1),
        "ends_at": datetime(2026, 12, 31),
    }
    return Campaign(**{**values, **overrides})


def delivery(**figures: Any) -> CampaignDelivery:
    return CampaignDelivery(campaign_id=1, **figures)


def test_throttle_is_one_without_delivery_figures() -> None:
    assert pacing.throttle(pacing_campaign(), None, NOW, KOLKATA) == 1.0


def test_throttle_is_zero_once_the_total_goal_is_met() -> None:
    campaign = pacing_campaign(pacing="asap", goal_total=500)
    assert pacing.throttle(campaign, delivery(impressions=499), NOW, KOLKATA) == 1.0
    assert pacing.throttle(campaign, delivery(impressions=500), NOW, KOLKATA) == 0.0


def test_throttle_counts_clicks_for_a_click_goal() -> None:
    campaign = pacing_campaign(pacing="asap", goal_kind="clicks", goal_total=50)
    figures = delivery(impressions=1_000_000, clicks=49)
    assert pacing.throttle(campaign, figures, NOW, KOLKATA) == 1.0
    assert pacing.throttle(campaign, delivery(clicks=50), NOW, KOLKATA) == 0.0


def test_throttle_is_zero_once_todays_goal_is_met_in_the_sites_zone() -> None:
    campaign = pacing_campaign(pacing="asap", goal_total=None, goal_daily=100)
    late_utc = datetime(2026, 11, 30, 19, 0, tzinfo=UTC).timestamp()  # 2026-12-01 in Kolkata
    met_today = delivery(today_impressions=100, day="2026-12-01")
    assert pacing.throttle(campaign, met_today, late_utc, KOLKATA) == 0.0
    assert pacing.throttle(campaign, met_today, late_utc, ZoneInfo("UTC")) == 1.0


def test_yesterdays_figures_do_not_count_against_the_daily_goal() -> None:
    campaign = pacing_campaign(pacing="asap", goal_total=None, goal_daily=100)
    yesterday = delivery(today_impressions=100, day="2026-11-29")
    assert pacing.throttle(campaign, yesterday, NOW, KOLKATA) == 1.0


def test_throttle_is_zero_once_the_budget_is_spent() -> None:
    campaign = pacing_campaign(pacing="asap", goal_total=None, budget_micros=5_000_000)
    under = delivery(spend_nanos=5_000_000 * 1000 - 1)
    spent = delivery(spend_nanos=5_000_000 * 1000)
    assert pacing.throttle(campaign, under, NOW, KOLKATA) == 1.0
    assert pacing.throttle(campaign, spent, NOW, KOLKATA) == 0.0


def test_an_even_paced_campaign_well_ahead_of_schedule_is_throttled() -> None:
    # About half the flight has passed (Nov 1 to Dec 31, now Nov 30) but 90% is delivered.
    ahead = pacing.throttle(pacing_campaign(), delivery(impressions=9_000), NOW, KOLKATA)
    assert pacing.MIN_THROTTLE <= ahead < 1.0


def test_the_further_ahead_the_harder_the_throttle() -> None:
    # A day's even share is 10,000 / 60 = 167 impressions; about 4,955 are due by now.
    slightly = pacing.throttle(pacing_campaign(), delivery(impressions=4_965), NOW, KOLKATA)
    further = pacing.throttle(pacing_campaign(), delivery(impressions=4_990), NOW, KOLKATA)
    far = pacing.throttle(pacing_campaign(), delivery(impressions=8_000), NOW, KOLKATA)
    assert far < further < slightly < 1.0


def test_an_even_paced_campaign_on_or_behind_schedule_serves_freely() -> None:
    assert pacing.throttle(pacing_campaign(), delivery(impressions=1_000), NOW, KOLKATA) == 1.0


def test_an_asap_campaign_ahead_of_schedule_serves_freely() -> None:
    campaign = pacing_campaign(pacing="asap")
    assert pacing.throttle(campaign, delivery(impressions=9_000), NOW, KOLKATA) == 1.0

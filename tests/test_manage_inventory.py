"""Edits through the service layer patch the serving snapshot: only the campaigns and sites they
name are read again, the result is what a full rebuild gives, and anything else still
rebuilds."""

from __future__ import annotations

import gc
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, insert, select, update

from adserver.core.db import bump_inventory_version, inventory_counters, make_engine, migrate
from adserver.core.models import Campaign, CampaignDelivery, Change, HourlyStat, table
from adserver.delivery import inventory as inventory_module
from adserver.delivery.decide import (
    CampaignSpec,
    CreativeSpec,
    SiteSpec,
    SlotSpec,
    Snapshot,
    Targeting,
)
from adserver.delivery.incremental import MAX_CHANGES
from adserver.delivery.inventory import Inventory, build_snapshot
from adserver.delivery.pacing import refresh_delivery
from adserver.services import campaigns, creatives, history, sites, slots
from adserver.services.campaigns import CampaignUpdate
from adserver.services.common import SYSTEM
from adserver.services.creatives import CreativeUpdate
from adserver.services.sites import SiteUpdate
from adserver.services.slots import SlotUpdate
from tests.conftest import postgres_database
from tests.factories import NOW, make_campaign, make_creative, make_site, make_slot
from tests.seed import add_hourly


def shape(snapshot: Snapshot) -> dict[str, Any]:
    """What decisions depend on, comparable between two builds."""
    return {
        "sites": {
            key: (
                site.id,
                site.timezone.key,
                sorted(site.domains),
                {
                    name: (
                        slot.id,
                        slot.sizes,
                        slot.fallback_html,
                        # Within a tier, order is the database's (no order is promised).
                        [sorted((c.id, c.weight, c.tier, c.throttle, c.starts_at, c.ends_at,
                                 c.targeting, c.creatives) for c in tier) for tier in slot.tiers],
                        sorted(slot.dropped),
                    )
                    for name, slot in site.slots.items()
                },
            )
            for key, site in snapshot.sites.items()
        },
        "sites_by_id": {site_id: site.key for site_id, site in snapshot.sites_by_id.items()},
        "creatives": sorted(snapshot.creatives),
        "version": snapshot.version,
    }  # fmt: skip


def inventory(engine: Engine, **ages: float) -> Inventory:
    # A clock that never moves: every build takes no time, so no rest holds a refresh back.
    held = Inventory(
        engine, base_url="http://ads.example", clock=lambda: 0.0, cpu_clock=lambda: 0.0, **ages
    )
    held.rebuild()
    return held


def refresh(held: Inventory) -> None:
    """Both refreshers' work, as the serving process's two threads do it."""
    held.patch()
    held.rebuild_when_due()


def full(engine: Engine) -> dict[str, Any]:
    with engine.connect() as connection:
        return shape(build_snapshot(connection, base_url="http://ads.example", now=NOW.timestamp()))


def test_service_edits_patch_the_snapshot_as_a_full_rebuild_would(engine: Engine) -> None:
    with engine.begin() as c:
        make_site(c, key="news")
        make_site(c, key="blog")
        top = make_slot(c, site="news", name="top")
        side = make_slot(c, site="news", name="side", sizes=["300x250"])
        other = make_slot(c, site="blog", name="top")
        first = make_campaign(c, name="First", slots=[top.id])
        make_creative(c, campaign=first.id)
        second = make_campaign(c, name="Second", slots=[top.id], advertiser=first.advertiser)
        banner = make_creative(c, campaign=second.id)
        make_campaign(c, name="Blog", slots=[other.id], advertiser=first.advertiser)
    held = inventory(engine)
    blog = held.current.sites["blog"]

    def edit(work: Any) -> None:
        with engine.begin() as connection:
            work(connection)
        refresh(held)
        assert shape(held.current) == full(engine)
        assert held.current.sites["blog"] is blog  # untouched: patched, not rebuilt

    edit(
        lambda c: campaigns.update_campaign(
            c,
            campaign_id=first.id,
            data=CampaignUpdate(weight=7, targeting={"devices": ["mobile"]}),
            expected_version=None,
            actor=SYSTEM,
            now=NOW,
        )
    )
    edit(
        lambda c: campaigns.update_campaign(
            c,
            campaign_id=second.id,
            data=CampaignUpdate(status="paused"),
            expected_version=None,
            actor=SYSTEM,
            now=NOW,
        )
    )
    edit(
        lambda c: campaigns.update_campaign(
            c,
            campaign_id=second.id,
            data=CampaignUpdate(status="active", slots=[side.id]),
            expected_version=None,
            actor=SYSTEM,
            now=NOW,
        )
    )
    edit(lambda c: make_creative(c, campaign=second.id, width=300, height=250))
    edit(
        lambda c: creatives.update_creative(
            c,
            creative_id=banner.id,
            data=CreativeUpdate(status="paused"),
            expected_version=None,
            actor=SYSTEM,
            now=NOW,
        )
    )
    edit(
        lambda c: make_creative(
            c,
            campaign=make_campaign(
                c, name="New", slots=[top.id, side.id], advertiser=first.advertiser
            ).id,
        )
    )
    edit(
        lambda c: campaigns.delete_campaign(
            c, campaign_id=first.id, expected_version=None, actor=SYSTEM, now=NOW
        )
    )
    assert held.current.version == full(engine)["version"]  # fmt: skip


def test_site_and_slot_edits_patch_the_snapshot_as_a_full_rebuild_would(engine: Engine) -> None:
    with engine.begin() as c:
        make_site(c, key="news")
        make_site(c, key="blog")
        top = make_slot(c, site="news", name="top")
        make_slot(c, site="blog", name="top")
        first = make_campaign(c, name="First", slots=[top.id])
        make_creative(c, campaign=first.id)
        # Paused: listed with the slots it is booked on as one that cannot deliver.
        make_campaign(
            c, name="Paused", status="paused", slots=[top.id], advertiser=first.advertiser
        )
        # Its goal met: paced to nothing on every site, listed with the slot's dropped too.
        done = make_campaign(
            c,
            name="Done",
            slots=[top.id],
            advertiser=first.advertiser,
            goal={"kind": "impressions", "total": 10},
        )
        make_creative(c, campaign=done.id)
        c.execute(insert(table(CampaignDelivery)).values(campaign_id=done.id, impressions=10))
    held = inventory(engine)
    assert [d[1:] for d in held.current.sites["news"].slots["top"].dropped] == [
        ("Paused", "paused"),
        ("Done", "goal_reached"),
    ]

    def edit(work: Any, *, untouched: tuple[str, ...]) -> None:
        kept = {key: held.current.sites[key] for key in untouched}
        rebuilds, patches = held.rebuilds, held.patches
        with engine.begin() as connection:
            work(connection)
        refresh(held)
        assert (held.rebuilds, held.patches) == (rebuilds, patches + 1)  # no full rebuild
        assert shape(held.current) == full(engine)
        for key, site in kept.items():
            assert held.current.sites[key] is site  # only the changed site was built again

    def site_update(key: str, **fields: Any) -> Any:
        return lambda c: sites.update_site(
            c,
            key=key,
            data=SiteUpdate.model_validate(fields),
            expected_version=None,
            actor=SYSTEM,
            now=NOW,
        )

    def slot_update(slot_id: int, **fields: Any) -> Any:
        return lambda c: slots.update_slot(
            c,
            slot_id=slot_id,
            data=SlotUpdate.model_validate(fields),
            expected_version=None,
            actor=SYSTEM,
            now=NOW,
        )

    edit(
        lambda c: make_site(c, key="shop", timezone="Asia/Kolkata", domains=["Shop.example"]),
        untouched=("news", "blog"),
    )
    assert held.current.sites["shop"].slots == {}
    edit(lambda c: make_slot(c, site="shop", name="side"), untouched=("news", "blog"))
    assert list(held.current.sites["shop"].slots) == ["side"]

    def slot_and_booking(c: Any) -> None:
        """A new slot and campaigns booked on it, in one batch."""
        bottom = make_slot(c, site="news", name="bottom", sizes=["728x90", "300x250"])
        campaigns.update_campaign(
            c,
            campaign_id=first.id,
            data=CampaignUpdate(slots=[top.id, bottom.id]),
            expected_version=None,
            actor=SYSTEM,
            now=NOW,
        )
        second = make_campaign(c, name="Second", slots=[bottom.id], advertiser=first.advertiser)
        make_creative(c, campaign=second.id, width=300, height=250)

    edit(slot_and_booking, untouched=("blog", "shop"))
    bottom = held.current.sites["news"].slots["bottom"]
    assert sorted(c.name for tier in bottom.tiers for c in tier) == ["First", "Second"]

    # The flights are wall-clock times: in another zone they start at other instants.
    starts = held.current.sites["news"].slots["top"].tiers[0][0].starts_at
    edit(
        site_update("news", timezone="America/New_York", domains=["news.example"]),
        untouched=("blog", "shop"),
    )
    assert held.current.sites["news"].slots["top"].tiers[0][0].starts_at != starts
    assert held.current.sites["news"].domains == {"news.example"}

    edit(slot_update(top.id, sizes=["300x250"], fallback_html="<p>House</p>"), untouched=("blog",))
    assert held.current.sites["news"].slots["top"].fitting == ()  # nothing of First fits now
    edit(
        lambda c: slots.delete_slot(
            c, slot_id=bottom.id, expected_version=None, actor=SYSTEM, now=NOW
        ),
        untouched=("blog", "shop"),
    )
    assert "bottom" not in held.current.sites["news"].slots  # booked: archived, serves nothing

    blog_id = held.current.sites["blog"].id
    edit(site_update("blog", status="archived"), untouched=("news", "shop"))
    assert "blog" not in held.current.sites and blog_id not in held.current.sites_by_id

    # Deleted (nothing refers to it) and made again under its key: a new site, a new id.
    shop_id = held.current.sites["shop"].id

    def remake(c: Any) -> None:
        make_site(c, key="mall")  # SQLite would hand the highest id out again
        sites.delete_site(c, key="shop", expected_version=None, actor=SYSTEM, now=NOW)
        make_site(c, key="shop", timezone="UTC")

    edit(remake, untouched=("news",))
    assert held.current.sites["shop"].id != shop_id and shop_id not in held.current.sites_by_id
    edit(
        lambda c: sites.delete_site(c, key="shop", expected_version=None, actor=SYSTEM, now=NOW),
        untouched=("news", "mall"),
    )
    assert sorted(held.current.sites) == ["mall", "news"]


def test_other_changes_still_rebuild_everything(engine: Engine) -> None:
    with engine.begin() as c:
        make_site(c, key="news")
        make_site(c, key="blog")
        top = make_slot(c, site="news", name="top")
        make_creative(c, campaign=make_campaign(c, slots=[top.id]).id)
    held = inventory(engine)
    blog = held.current.sites["blog"]
    with engine.begin() as c:  # a bump from outside the service layer and the pacing job
        bump_inventory_version(c)
    refresh(held)
    assert (held.rebuilds, held.patches) == (2, 0)
    assert held.current.sites["blog"] is not blog
    assert shape(held.current) == full(engine)
    blog = held.current.sites["blog"]
    with engine.begin() as c:  # more changes at once than a patch is worth
        for n in range(MAX_CHANGES + 1):
            make_slot(c, site="blog", name=f"slot-{n}")
    refresh(held)
    assert (held.rebuilds, held.patches) == (3, 0)
    assert held.current.sites["blog"] is not blog
    assert shape(held.current) == full(engine)


def weight(held: Inventory, campaign_id: int) -> int:
    """The campaign's weight as the held snapshot serves it."""
    return next(
        spec.weight
        for site in held.current.sites.values()
        for slot in site.slots.values()
        for tier in slot.tiers
        for spec in tier
        if spec.id == campaign_id
    )


class HeldBuild:
    """Holds every full build after it has read the database, until the test lets it go:
    a rebuild of 10,000 campaigns takes seconds, and edits go on meanwhile."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.read = threading.Event()
        self.go_on = threading.Event()

        def held_build(connection: Any, **options: Any) -> Snapshot:
            built = build_snapshot(connection, **options)
            self.read.set()
            assert self.go_on.wait(10)
            return built

        monkeypatch.setattr("adserver.delivery.inventory.build_snapshot", held_build)

    def rebuild(self, held: Inventory) -> threading.Thread:
        """``held.rebuild()`` in a thread of its own, once it has read the database."""
        worker = threading.Thread(target=held.rebuild)
        worker.start()
        assert self.read.wait(10)
        return worker


@pytest.fixture
def booked(engine: Engine) -> int:
    """One campaign of weight 1, with a creative, on the news site's top slot: its id."""
    with engine.begin() as c:
        make_site(c, key="news")
        top = make_slot(c, site="news", name="top")
        campaign = make_campaign(c, slots=[top.id], weight=1)
        make_creative(c, campaign=campaign.id)
    return campaign.id


def reweigh(engine: Engine, campaign_id: int, value: int) -> None:
    with engine.begin() as c:
        campaigns.update_campaign(
            c,
            campaign_id=campaign_id,
            data=CampaignUpdate(weight=value),
            expected_version=None,
            actor=SYSTEM,
            now=NOW,
        )


def test_an_edit_serves_while_a_full_rebuild_runs_and_the_rebuild_keeps_it(
    engine: Engine, booked: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    held = inventory(engine)
    build = HeldBuild(monkeypatch)
    rebuilding = build.rebuild(held)
    try:
        reweigh(engine, booked, 7)
        held.patch()  # the edits' refresher, while the rebuild is still at work
        assert weight(held, booked) == 7
    finally:
        build.go_on.set()
        rebuilding.join(10)
    assert held.rebuilds == 2
    assert weight(held, booked) == 7  # the rebuild read weight 1, and caught up
    assert shape(held.current) == full(engine)
    with engine.connect() as c:
        assert (held.current.version, held.edits) == inventory_counters(c)[:2]


def test_a_full_rebuild_applies_the_edits_made_while_it_ran_before_it_publishes(
    engine: Engine, booked: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    held = inventory(engine)
    build = HeldBuild(monkeypatch)
    rebuilding = build.rebuild(held)
    reweigh(engine, booked, 7)  # no patch runs before the rebuild publishes
    build.go_on.set()
    rebuilding.join(10)
    assert (held.rebuilds, held.patches) == (2, 1)
    assert weight(held, booked) == 7
    assert shape(held.current) == full(engine)
    with engine.connect() as c:
        assert (held.current.version, held.edits) == inventory_counters(c)[:2]
    held.patch()
    assert held.patches == 1  # nothing left to patch


def test_edits_are_patched_while_another_change_waits_for_its_rebuild(
    engine: Engine, booked: int
) -> None:
    held = inventory(engine)
    with engine.begin() as c:  # a bump nothing explains: only a full rebuild covers it
        bump_inventory_version(c)
    reweigh(engine, booked, 7)
    held.patch()
    assert weight(held, booked) == 7
    with engine.connect() as c:
        version = inventory_counters(c).version
    assert held.current.version == version - 1  # the snapshot says what it does not cover
    held.rebuild_when_due()
    assert (held.rebuilds, held.current.version) == (2, version)


# --- what changes with nothing written ------------------------------------------------------


def on_top(held: Inventory) -> dict[str, CampaignSpec]:
    return {c.name: c for tier in held.current.sites["news"].slots["top"].tiers for c in tier}


@pytest.fixture
def timed(engine: Engine) -> dict[str, int]:
    """On news/top: an even-paced campaign with a goal over a long flight, one rotating its
    creatives by click rate, and one served as fast as it can (nothing about it is timed)."""
    with engine.begin() as c:
        make_site(c, key="news")
        top = make_slot(c, site="news", name="top")
        even = make_campaign(
            c,
            name="Even",
            slots=[top.id],
            pacing="even",
            goal={"kind": "impressions", "total": 1000},
            ends_at="2099-01-01T00:00:00",
        )
        same = {"slots": [top.id], "advertiser": even.advertiser}
        made = {
            "Even": even,
            "Clicks": make_campaign(c, name="Clicks", rotation="ctr", **same),
            "Steady": make_campaign(c, name="Steady", pacing="asap", **same),
        }
        for campaign in made.values():
            make_creative(c, campaign=campaign.id)
            make_creative(c, campaign=campaign.id, name="Other")
        ids = {name: campaign.id for name, campaign in made.items()}
        c.execute(
            insert(table(CampaignDelivery)),
            [{"campaign_id": ids["Even"]}, {"campaign_id": ids["Steady"]}],
        )
    return ids


def test_campaigns_that_change_with_nothing_written_are_read_again_without_a_rebuild(
    engine: Engine, timed: dict[str, int]
) -> None:
    held = inventory(engine, max_age=0.0)  # the timed refresh due at every call
    before = on_top(held)
    assert before["Even"].throttle == 1.0  # nothing delivered yet: behind its even line
    clicks = held.current.creatives
    # What the pacing job and the tally would write, with no bump of the inventory version.
    with engine.begin() as c:
        delivery = table(CampaignDelivery)
        c.execute(update(delivery).values(impressions=900))
        creative = before["Clicks"].creatives[0].id
        c.execute(
            insert(table(HourlyStat)).values(
                hour=0, site_id=1, slot_id=1, campaign_id=timed["Clicks"],
                creative_id=creative, impressions=400, clicks=20,
            )
        )  # fmt: skip
    held.rebuild_when_due()
    after = on_top(held)
    assert (held.rebuilds, held.timed) == (1, 1)
    assert after["Even"].throttle < 1.0  # 900 of 1,000 is far ahead of the flight's share
    figures = {(c.impressions, c.clicks) for c in after["Clicks"].creatives}
    assert figures == {(400, 20), (0, 0)}
    assert held.current.creatives[creative].clicks == 20 and clicks[creative].clicks == 0
    assert after["Steady"] is before["Steady"]  # not timed: not read again


def test_a_timed_refresh_waits_for_its_age_and_reads_nothing_when_nothing_is_timed(
    engine: Engine, booked: int
) -> None:
    held = inventory(engine, max_age=3600.0)
    first = held.current
    held.rebuild_when_due()
    assert held.current is first and held.timed == 0  # not due yet
    held = inventory(engine, max_age=0.0)
    first = held.current
    held.rebuild_when_due()
    # Due, and the one campaign is served as fast as it can: nothing to read again.
    assert held.current is first and (held.rebuilds, held.timed) == (1, 0)
    assert on_top(held)["Launch"].id == booked


def test_too_many_timed_campaigns_or_an_old_snapshot_take_a_full_rebuild(
    engine: Engine, timed: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    held = inventory(engine, max_age=0.0)
    monkeypatch.setattr(inventory_module, "MAX_TIMED", 1)
    held.rebuild_when_due()
    assert (held.rebuilds, held.timed) == (2, 0)
    monkeypatch.undo()
    held = inventory(engine, max_age=3600.0, full_age=0.0)
    held.rebuild_when_due()
    assert (held.rebuilds, held.timed) == (2, 0)


def deliver(engine: Engine, campaign_id: int, impressions: int) -> None:
    """The tally's hourly and daily figures for ``campaign_id`` on news/top, then the pacing
    job's refresh of the delivered figures from them."""
    at = int(NOW.timestamp())
    with engine.begin() as c:
        stat = {"hour": at, "site_id": 1, "slot_id": 1, "campaign_id": campaign_id}
        add_hourly(c, [{**stat, "creative_id": 1, "impressions": impressions}])
    refresh_delivery(engine, now=at)


def test_a_pacing_refresh_reads_again_only_the_campaigns_whose_figures_changed(
    engine: Engine, timed: dict[str, int]
) -> None:
    with engine.begin() as c:
        c.execute(update(table(Campaign)).values(goal_total=1000))  # a goal each: all paced
    held = inventory(engine)
    before = on_top(held)
    deliver(engine, timed["Steady"], impressions=1000)
    with engine.connect() as c:
        counters = inventory_counters(c)
    assert counters.paced == 1
    refresh(held)
    after = on_top(held)
    assert (held.rebuilds, held.paced, held.current.version) == (1, 1, counters.version)
    assert "Steady" not in after  # its goal is met: it serves no more
    dropped = held.current.sites["news"].slots["top"].dropped
    assert (timed["Steady"], "Steady", "goal_reached") in dropped
    assert after["Even"] is before["Even"] and after["Clicks"] is before["Clicks"]
    assert shape(held.current) == full(engine)


def test_too_many_campaigns_paced_at_once_take_a_full_rebuild(
    engine: Engine, timed: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    with engine.begin() as c:
        c.execute(update(table(Campaign)).values(goal_total=1000))
    held = inventory(engine)
    monkeypatch.setattr(inventory_module, "MAX_TIMED", 1)
    deliver(engine, timed["Steady"], impressions=10)
    deliver(engine, timed["Even"], impressions=10)
    refresh(held)
    assert (held.rebuilds, held.paced) == (2, 0)
    assert shape(held.current) == full(engine)


def test_a_replaced_snapshot_is_freed_without_the_collector(engine: Engine) -> None:
    """Start-up freezes its snapshot out of the collector's sight (``app``): a snapshot held
    in a reference cycle would stay in memory for good once a rebuild or a patch replaced it.
    With the collector off, neither leaves a snapshot's part for it to find."""
    with engine.begin() as c:
        make_site(c, key="news")
        top = make_slot(c, site="news", name="top")
        campaign = make_campaign(c, slots=[top.id], targeting={"keywords": ["travel"]})
        make_creative(c, campaign=campaign.id)
    gc.collect()
    gc.disable()
    try:
        held = inventory(engine)
        held.rebuild()
        reweigh(engine, campaign.id, 7)
        refresh(held)
        assert held.patches == 1
        held.rebuild()
        del held
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        parts = (Snapshot, SiteSpec, SlotSpec, CampaignSpec, CreativeSpec, Targeting)
        assert [o for o in gc.garbage if isinstance(o, parts)] == []
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


@pytest.mark.postgres
def test_change_ids_follow_commit_order_on_postgresql(tmp_path: Path) -> None:
    """A change recorded while another transaction holds an earlier, uncommitted one waits for
    it: a process that has seen change N can never later find a lower id committed."""
    with postgres_database() as url:
        migrate(url)
        engine = make_engine(url)
        first = engine.connect()
        first.begin()
        change: dict[str, Any] = {"action": "update", "before": {"a": 1}, "after": {"a": 2}}
        history.record(first, actor=SYSTEM, entity="user", entity_id=1, now=NOW, **change)
        done = threading.Event()

        def second() -> None:
            with engine.begin() as connection:
                history.record(
                    connection, actor=SYSTEM, entity="campaign", entity_id=2, now=NOW, **change
                )
            done.set()

        worker = threading.Thread(target=second)
        worker.start()
        try:
            assert not done.wait(0.5)  # waits for the first transaction, not merely slow
            first.commit()
        finally:
            first.close()
            worker.join(10)
        assert done.is_set()
        with engine.connect() as connection:
            order = (
                connection.execute(select(table(Change).c.entity).order_by(table(Change).c.id))
                .scalars()
                .all()
            )
        engine.dispose()
    assert order == ["user", "campaign"]

"""Edits through the service layer patch the serving snapshot: only the campaigns they name are
read again, the result is what a full rebuild gives, and anything else still rebuilds."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from adserver.core.db import bump_inventory_version
from adserver.delivery.decide import Snapshot
from adserver.delivery.inventory import Inventory, build_snapshot
from adserver.services import campaigns, creatives
from adserver.services.campaigns import CampaignUpdate
from adserver.services.common import SYSTEM
from adserver.services.creatives import CreativeUpdate
from tests.factories import NOW, make_campaign, make_creative, make_site, make_slot


def shape(snapshot: Snapshot) -> dict[str, Any]:
    """What decisions depend on, comparable between two builds."""
    return {
        "sites": {
            key: {
                name: (
                    # Within a tier, order is the database's (no order is promised).
                    [sorted((c.id, c.weight, c.tier, c.throttle, c.targeting, c.creatives)
                            for c in tier) for tier in slot.tiers],
                    sorted(slot.dropped),
                )
                for name, slot in site.slots.items()
            }
            for key, site in snapshot.sites.items()
        },
        "creatives": sorted(snapshot.creatives),
        "version": snapshot.version,
    }  # fmt: skip


def inventory(engine: Engine) -> Inventory:
    # A clock that never moves: every build takes no time, so no rest holds a refresh back.
    held = Inventory(
        engine, base_url="http://ads.example", clock=lambda: 0.0, cpu_clock=lambda: 0.0
    )
    held.rebuild()
    return held


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
        held.refresh()
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


def test_other_changes_still_rebuild_everything(engine: Engine) -> None:
    with engine.begin() as c:
        make_site(c, key="news")
        make_site(c, key="blog")
        top = make_slot(c, site="news", name="top")
        make_creative(c, campaign=make_campaign(c, slots=[top.id]).id)
    held = inventory(engine)
    blog = held.current.sites["blog"]
    with engine.begin() as c:  # a site is not patched
        make_slot(c, site="blog", name="top")
    held.refresh()
    assert held.current.sites["blog"] is not blog
    assert shape(held.current) == full(engine)
    blog = held.current.sites["blog"]
    with engine.begin() as c:  # a bump from outside the service layer (the pacing job's)
        bump_inventory_version(c)
    held.refresh()
    assert held.current.sites["blog"] is not blog
    assert shape(held.current) == full(engine)

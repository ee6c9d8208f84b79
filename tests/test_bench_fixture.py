"""The benchmark's inventory generator makes what it claims, on a small size."""

from __future__ import annotations

import random
import time

import pytest
from sqlalchemy import func, select, text

from adserver.core.db import make_engine
from adserver.core.models import Campaign, CampaignSlot, Creative, Site, Slot
from adserver.delivery.decide import DecideRequest, SlotRequest, decide
from adserver.delivery.inventory import build_snapshot
from bench.fixture import SLOTS, generate


def count(connection: object, model: type) -> int:
    return int(connection.execute(select(func.count()).select_from(model)).scalar_one())  # type: ignore[attr-defined]


def test_counts_and_every_slot_fillable(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    fixture = generate(engine, campaigns=40, sites=5, seed=7)
    with engine.connect() as connection:
        assert count(connection, Site) == 5
        assert count(connection, Slot) == 5 * len(SLOTS)
        assert count(connection, Campaign) == 40 == fixture.campaigns
        assert count(connection, Creative) == fixture.creatives
        active = connection.execute(
            select(func.count()).select_from(Campaign).where(text("status = 'active'"))
        ).scalar_one()
        assert active == 40
        assert connection.execute(text("SELECT value FROM meta")).scalar_one() > 0
        # every assignment stays within the campaign's own site
        crossed = connection.execute(
            text(
                "SELECT cs.campaign_id FROM campaign_slot cs JOIN slot s ON s.id = cs.slot_id "
                "GROUP BY cs.campaign_id HAVING count(DISTINCT s.site_id) > 1"
            )
        ).all()
        assert crossed == []
        assert count(connection, CampaignSlot) >= 40
        snapshot = build_snapshot(connection, base_url="http://127.0.0.1:1", now=time.time())
    engine.dispose()

    assert sorted(snapshot.sites) == fixture.sites
    assert len(snapshot.creatives) == fixture.creatives  # every creative fits a slot it serves
    for site in snapshot.sites.values():
        assert set(site.slots) == set(SLOTS)
        for slot in site.slots.values():
            campaigns = [c for tier in slot.tiers for c in tier]
            assert campaigns, f"{site.key}/{slot.name} has no campaign"
            for campaign in campaigns:
                assert any(c.size in slot.sizes for c in campaign.creatives)
    rng = random.Random(1)
    for key in fixture.sites:
        for _ in range(20):  # targeting, caps and weights never leave a slot empty
            result = decide(
                snapshot,
                DecideRequest(
                    site=key,
                    slots=tuple(SlotRequest(name) for name in SLOTS),
                    now=time.time(),
                    device="mobile",
                ),
                rng,
            )
            assert all(result.decisions.values()), result.decisions
            for decision in result.decisions.values():
                assert decision is not None
                assert decision.creative.size in decision.slot.sizes


def test_placements_are_real_ids(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    fixture = generate(engine, campaigns=12, sites=2)
    with engine.connect() as connection:
        for placement in fixture.placements:
            row = connection.execute(
                text(
                    "SELECT s.site_id FROM creative c JOIN campaign_slot cs "
                    "ON cs.campaign_id = c.campaign_id JOIN slot s ON s.id = cs.slot_id "
                    "WHERE c.id = :creative AND c.campaign_id = :campaign AND s.id = :slot"
                ),
                {
                    "creative": placement.creative_id,
                    "campaign": placement.campaign_id,
                    "slot": placement.slot_id,
                },
            ).scalar_one()
            assert row == placement.site_id
    engine.dispose()


def test_refuses_too_few_campaigns(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    with pytest.raises(ValueError, match="at least 6"):
        generate(engine, campaigns=5, sites=2)
    engine.dispose()

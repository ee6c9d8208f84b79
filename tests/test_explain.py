"""explain=1: every campaign assigned to a slot with its outcome and the first reason it was
dropped, in the pure engine (each code) and through /v1/decide (admins only)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from adserver.core.models import CampaignDelivery, Creative
from adserver.delivery.decide import DecideRequest, SlotRequest, Snapshot, decide
from adserver.delivery.explain import REASONS, explain
from adserver.delivery.inventory import compile_targeting
from adserver.services.tokens import create_api_token
from tests.conftest import LiveServer
from tests.seed import add_campaign, add_creative, add_site, add_slot, publish
from tests.test_decide import (
    DAY,
    HOUR,
    NOW,
    SLOT,
    campaign,
    creative,
    request,
    slot,
    snapshot,
)


def reasons(snap: Snapshot, req: DecideRequest, seed: int = 1) -> dict[int, str | None]:
    result = decide(snap, req, random.Random(seed), explain=True)
    entries = explain(result, req)[req.slots[0].name]
    for entry in entries:
        assert entry["outcome"] == ("chosen" if entry["reason"] is None else "dropped")
        assert entry["reason"] is None or entry["reason"] in REASONS
    return {e["campaign"]: e["reason"] for e in entries}


def test_the_chosen_campaign_and_the_lower_tiers_it_beat() -> None:
    snap = snapshot(slot(campaign(1, tier="sponsorship"), campaign(2), campaign(3, tier="house")))
    assert reasons(snap, request()) == {1: None, 2: "lower_tier", 3: "lower_tier"}


def test_a_sibling_of_the_same_tier_lost_the_draw() -> None:
    snap = snapshot(slot(campaign(1), campaign(2)))
    found = reasons(snap, request())
    assert sorted(found.values(), key=str) == [None, "lost_draw"]


def test_flight_reasons() -> None:
    snap = snapshot(slot(campaign(1, starts_at=NOW + HOUR), campaign(2, ends_at=NOW - 1)))
    assert reasons(snap, request()) == {1: "not_started", 2: "ended"}


@pytest.mark.parametrize(
    ("targeting", "context", "code"),
    [
        ({"paths": ["/sport/*"]}, {"path": "/news/a"}, "targeting_path"),
        ({"exclude_paths": ["/news/*"]}, {"path": "/news/a"}, "targeting_path"),
        ({"keywords": ["cricket"]}, {"keywords": frozenset({"food"})}, "targeting_keyword"),
        ({"exclude_keywords": ["food"]}, {"keywords": frozenset({"food"})}, "targeting_keyword"),
        ({"devices": ["mobile"]}, {"device": "desktop"}, "targeting_device"),
        ({"countries": ["GB"]}, {"country": "IN"}, "targeting_country"),
        ({"days": [6]}, {}, "targeting_day"),  # NOW is a Monday
        ({"hours": [3]}, {}, "targeting_hour"),  # NOW is 12:00
    ],
)
def test_targeting_reasons(targeting: dict[str, Any], context: dict[str, Any], code: str) -> None:
    snap = snapshot(slot(campaign(1, targeting=compile_targeting(targeting))))
    assert reasons(snap, request(**context)) == {1: code}


def test_capped_paced_and_no_fitting_creative() -> None:
    snap = snapshot(
        slot(
            campaign(1, fc_count=1, fc_per="day"),
            campaign(2, throttle=1e-9),
            campaign(3, creatives=(creative(300, size="300x250"),)),
            campaign(4, tier="house"),
            sizes=("728x90", "300x250"),
        )
    )
    narrowed = request(SlotRequest(SLOT, ("728x90",)), frequency={1: (NOW - HOUR,)})
    assert reasons(snap, narrowed) == {
        1: "capped",
        2: "paced",
        3: "no_fitting_creative",
        4: None,
    }


def test_page_rules_are_a_reason() -> None:
    labelled = frozenset({"bank"})
    snap = snapshot(slot(campaign(1, labels=labelled), campaign(2, labels=labelled)))
    assert reasons(snap, request(shown=frozenset({1}))) == {1: "page_rule", 2: "page_rule"}


def test_a_roadblock_that_cannot_fill_every_slot_is_a_page_rule_elsewhere() -> None:
    block = campaign(1, tier="sponsorship", roadblock=True)
    house = campaign(9, tier="house", creatives=(creative(900), creative(901, size="300x250")))
    snap = snapshot(
        slot(block, house, name="top", slot_id=1),
        slot(block, house, name="side", sizes=("300x250",), slot_id=2),
    )
    req = request("top", "side")
    result = decide(snap, req, random.Random(1), explain=True)
    answer = explain(result, req)
    assert {e["campaign"]: e["reason"] for e in answer["top"]} == {1: "page_rule", 9: None}
    assert {e["campaign"]: e["reason"] for e in answer["side"]} == {
        1: "no_fitting_creative",
        9: None,
    }


def test_explaining_decides_as_the_usual_path_would() -> None:
    snap = snapshot(slot(campaign(1, weight=3), campaign(2), campaign(3, tier="house")))
    for seed in range(50):
        usual = decide(snap, request(), random.Random(seed)).decisions[SLOT]
        explained = decide(snap, request(), random.Random(seed), explain=True).decisions[SLOT]
        assert usual is not None and explained is not None
        assert usual.campaign.id == explained.campaign.id
    assert DAY > HOUR


# --- through /v1/decide -----------------------------------------------------------------------


@pytest.fixture
def site(engine: Engine, live_server: LiveServer) -> dict[str, str]:
    """Campaigns on 'top' each dropped for another reason, and tokens to ask with."""
    now = datetime.now()
    with Session(engine) as session:
        news = add_site(session)
        top = add_slot(session, news, "top", ["728x90"])
        chosen = add_campaign(session, [top], advertiser="Acme", name="Chosen", tier="standard")
        add_creative(session, chosen)
        acme = chosen.advertiser_id
        for name, fields in {
            "Paused": {"status": "paused"},
            "Archived": {"status": "archived"},
            "Later": {"starts_at": now + timedelta(days=2)},
            "Phones": {"targeting": {"devices": ["mobile"]}},
            "House": {"tier": "house"},
            "Done": {"goal_kind": "impressions", "goal_total": 10},
            "Spent": {"budget_micros": 1_000},
        }.items():
            made = add_campaign(session, [top], advertiser=name, name=name, **fields)
            add_creative(session, made)
            if name in ("Done", "Spent"):
                session.add(
                    CampaignDelivery(campaign_id=made.id, impressions=10, spend_nanos=10**6)
                )
        waiting = add_campaign(session, [top], advertiser="Waiting", name="Waiting")
        session.add(
            Creative(campaign_id=waiting.id, name="new", status="pending", width=728, height=90)
        )
        publish(session)
    with engine.begin() as connection:
        admin = create_api_token(connection, name="ops", advertiser_id=None)
        advertiser = create_api_token(connection, name="acme", advertiser_id=acme)
    live_server.runtime.inventory.rebuild()
    return {"admin": admin, "advertiser": advertiser}


def ask(server: LiveServer, token: str | None) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with server.client() as client:
        answer = client.get(
            "/v1/decide",
            params={"site": "news", "slots": "top", "explain": "1", "url": "/a"},
            headers=headers,
        )
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


def test_an_admin_learns_why_each_campaign_was_dropped(
    live_server: LiveServer, site: dict[str, str]
) -> None:
    answer = ask(live_server, site["admin"])
    found = {e["name"]: (e["outcome"], e["reason"]) for e in answer["explain"]["top"]}
    assert found == {
        "Chosen": ("chosen", None),
        "House": ("dropped", "lower_tier"),
        "Later": ("dropped", "not_started"),
        "Phones": ("dropped", "targeting_device"),
        "Paused": ("dropped", "paused"),
        "Archived": ("dropped", "archived"),
        "Done": ("dropped", "goal_reached"),
        "Spent": ("dropped", "budget_spent"),
        "Waiting": ("dropped", "pending_approval"),
    }
    assert answer["decisions"]["top"]["campaign"] == next(
        e["campaign"] for e in answer["explain"]["top"] if e["outcome"] == "chosen"
    )


def test_a_reader_or_an_advertiser_never_learns_why(
    live_server: LiveServer, site: dict[str, str]
) -> None:
    for token in (None, site["advertiser"], "not-a-token"):
        answer = ask(live_server, token)
        assert "explain" not in answer
        assert answer["decisions"]["top"] is not None

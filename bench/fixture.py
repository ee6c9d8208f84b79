"""Bench inventory: N active campaigns spread over sites with three slots each.

Every slot can be filled: each site gets one untargeted house campaign per slot, and every
campaign's creatives are sized to fit the slots it is assigned to. The rest is a plausible mix
of tiers, weights, rotations, frequency caps, targeting, roadblocks (half the sponsorships, on all
three slots) and competitive-exclusion labels, so decisions exercise the real code
paths. Rows go in with Core executemany inserts: 10,000 campaigns take about a second.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, Table, insert
from sqlmodel import SQLModel

from adserver.core import models  # noqa: F401  (registers the tables on SQLModel.metadata)
from adserver.core.db import bump_inventory_version

#: Slot name -> sizes; every bench site has these three.
SLOTS: dict[str, list[str]] = {
    "top": ["728x90"],
    "side": ["300x250"],
    "below": ["728x90", "300x250"],
}
ZONES = ("UTC", "Europe/London", "America/New_York", "Asia/Kolkata")
TIERS = (("sponsorship", 0.04), ("standard", 0.6), ("price", 0.26), ("house", 0.1))
#: Competitive-exclusion labels: a fifth of the paid campaigns carry one.
LABELS = ("bank", "car", "telecom", "travel")
LANDING = "https://advertiser.example/landing"
#: A real 1x1 PNG, so image creatives have bytes behind their URL.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000005000100a5f6450a0000000049454e44ae426082"
)


@dataclass(frozen=True)
class Placement:
    """Real ids that belong together: what an event token for this campaign carries."""

    site_id: int
    slot_id: int
    campaign_id: int
    creative_id: int


@dataclass
class Fixture:
    sites: list[str]
    slot_names: tuple[str, ...]
    campaigns: int
    creatives: int
    placements: list[Placement] = field(default_factory=list)
    campaign_ids: list[int] = field(default_factory=list)


def _table(name: str) -> Table:
    return SQLModel.metadata.tables[name]


def _insert_ids(connection: Any, table: Table, rows: list[dict[str, Any]]) -> list[int]:
    """Insert ``rows`` in one executemany and return their new ids in the same order."""
    result = connection.execute(
        insert(table).returning(table.c.id, sort_by_parameter_order=True), rows
    )
    return [int(row[0]) for row in result]


def generate(engine: Engine, *, campaigns: int = 1000, sites: int = 50, seed: int = 0) -> Fixture:
    """Add ``sites`` sites and ``campaigns`` active campaigns (at least one house campaign per
    slot, so ``campaigns`` must be >= 3 x ``sites``) to an empty, migrated database."""
    if campaigns < len(SLOTS) * sites:
        raise ValueError(f"need at least {len(SLOTS) * sites} campaigns for {sites} sites")
    rng = random.Random(seed)
    now = datetime.now(UTC)
    yesterday = (now - timedelta(days=1)).replace(tzinfo=None, microsecond=0)
    next_month = yesterday + timedelta(days=31)
    slot_names = tuple(SLOTS)
    with engine.begin() as connection:
        site_keys = [f"site-{i:03d}" for i in range(sites)]
        site_ids = _insert_ids(
            connection,
            _table("site"),
            [
                {
                    "key": key,
                    "name": f"Bench {key}",
                    "domains": ["localhost", "127.0.0.1"],
                    "timezone": ZONES[i % len(ZONES)],
                    "currency": "USD",
                    "created_at": now,
                }
                for i, key in enumerate(site_keys)
            ],
        )
        slot_rows = [
            {"site_id": site_id, "name": name, "sizes": sizes}
            for site_id in site_ids
            for name, sizes in SLOTS.items()
        ]
        slot_ids = _insert_ids(connection, _table("slot"), slot_rows)
        #: (site index, slot name) -> (slot id, sizes)
        slots = {
            (i // len(SLOTS), row["name"]): (slot_id, row["sizes"])
            for i, (row, slot_id) in enumerate(zip(slot_rows, slot_ids, strict=True))
        }
        advertiser_ids = _insert_ids(
            connection,
            _table("advertiser"),
            [
                {"name": f"Advertiser {i}", "email": f"a{i}@example.com", "created_at": now}
                for i in range(max(1, campaigns // 20))
            ],
        )

        plans: list[tuple[int, list[str]]] = []  # (site index, slot names) per campaign
        campaign_rows: list[dict[str, Any]] = []
        # Page rules from their own random stream, so the rest of the fixture is what it was.
        rules = random.Random(seed + 1)
        for n in range(campaigns):
            site_index = n % sites
            house_slot = n // sites  # the first 3 x sites campaigns: one house per slot
            if house_slot < len(SLOTS):
                assigned = [slot_names[house_slot]]
                row = _campaign_row(n, rng, advertiser_ids, yesterday, None, tier="house")
            else:
                assigned = rng.sample(slot_names, rng.randint(1, len(SLOTS)))
                row = _campaign_row(n, rng, advertiser_ids, yesterday, next_month)
                if row["tier"] == "sponsorship" and rules.random() < 0.5:
                    row["roadblock"] = True  # the whole page: all three slots
                    assigned = list(slot_names)
                if rules.random() < 0.2:
                    row["labels"] = [rules.choice(LABELS)]
            plans.append((site_index, assigned))
            campaign_rows.append(row)
        campaign_ids = _insert_ids(connection, _table("campaign"), campaign_rows)

        links: list[dict[str, int]] = []
        creative_rows: list[dict[str, Any]] = []
        owners: list[tuple[int, int, list[int]]] = []  # (campaign id, site index, slot ids)
        for campaign_id, (site_index, assigned) in zip(campaign_ids, plans, strict=True):
            sizes: list[str] = []
            assigned_ids = []
            for name in assigned:
                slot_id, slot_sizes = slots[(site_index, name)]
                assigned_ids.append(slot_id)
                links.append({"campaign_id": campaign_id, "slot_id": slot_id})
                sizes += [s for s in slot_sizes if s not in sizes]
            for size in sizes:
                for _ in range(rng.choice((1, 1, 2))):
                    creative_rows.append(_creative_row(campaign_id, size, rng, now))
            owners.append((campaign_id, site_index, assigned_ids))
        connection.execute(insert(_table("campaign_slot")), links)
        creative_ids = _insert_ids(connection, _table("creative"), creative_rows)
        bump_inventory_version(connection)

    by_campaign: dict[int, list[int]] = {}
    for row, creative_id in zip(creative_rows, creative_ids, strict=True):
        by_campaign.setdefault(row["campaign_id"], []).append(creative_id)
    placements = [
        Placement(site_ids[site_index], slot_id, campaign_id, creative_id)
        for campaign_id, site_index, slot_ids_ in owners
        for slot_id in slot_ids_
        for creative_id in by_campaign[campaign_id][:1]
    ]
    return Fixture(
        sites=site_keys,
        slot_names=slot_names,
        campaigns=len(campaign_ids),
        creatives=len(creative_ids),
        placements=placements,
        campaign_ids=campaign_ids,
    )


def _pick_tier(rng: random.Random) -> str:
    point = rng.random()
    for tier, share in TIERS:
        point -= share
        if point < 0:
            return tier
    return TIERS[-1][0]


def _campaign_row(
    n: int,
    rng: random.Random,
    advertiser_ids: list[int],
    starts_at: datetime,
    ends_at: datetime | None,
    *,
    tier: str | None = None,
) -> dict[str, Any]:
    tier = tier or _pick_tier(rng)
    targeted = tier != "house" and rng.random() < 0.3
    targeting: dict[str, Any] = {}
    if targeted:
        choice = rng.randrange(3)
        if choice == 0:
            targeting["paths"] = ["/sport/*", "/news/*"]
        elif choice == 1:
            targeting["keywords"] = ["travel", "cricket"]
        else:
            targeting["devices"] = ["desktop", "tablet"]
    capped = tier != "house" and rng.random() < 0.2
    return {
        "advertiser_id": advertiser_ids[n % len(advertiser_ids)],
        "name": f"Campaign {n}",
        "status": "active",
        "tier": tier,
        "pricing": "house" if tier == "house" else rng.choice(("cpm", "cpm", "cpc")),
        "price_micros": 0 if tier == "house" else rng.randrange(500_000, 5_000_000),
        "weight": rng.randint(1, 10),
        "starts_at": starts_at,
        "ends_at": ends_at,
        "pacing": "asap",
        "fc_count": 3 if capped else None,
        "fc_per": "day" if capped else None,
        "targeting": targeting,
        "rotation": rng.choice(("even", "weighted")),
        "roadblock": False,
        "labels": [],
        "created_at": datetime.now(UTC),
        "updated_at": datetime.now(UTC),
    }


def _creative_row(campaign_id: int, size: str, rng: random.Random, now: datetime) -> dict[str, Any]:
    width, height = (int(x) for x in size.split("x"))
    row: dict[str, Any] = {
        "campaign_id": campaign_id,
        "name": f"{size} creative",
        "kind": "image",
        "width": width,
        "height": height,
        "click_url": LANDING,
        "weight": rng.randint(1, 5),
        "status": "active",
        "image": None,
        "image_type": None,
        "html": None,
        "title": None,
        "body": None,
        "cta": None,
        "updated_at": now,
    }
    kind = rng.choice(("image", "image", "text", "html"))
    row["kind"] = kind
    if kind == "image":
        row.update(image=PNG, image_type="image/png")
    elif kind == "text":
        row.update(title="A fine offer", body="Something readers want.", cta="Learn more")
    else:
        row["html"] = '<a href="%%CLICK_URL%%" target="_blank">Bench ad</a>'
    return row

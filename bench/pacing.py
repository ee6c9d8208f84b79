"""``python -m bench.pacing``: a month of delivery on a simulated clock, through the real engine,
event store, tally and pacing job, to show that even pacing delivers what was sold.

Traffic is hourly with a daily shape (night troughs, a morning peak, an evening rise), a
weekend dip and one viral spike. Every ``STEP`` simulated seconds the step's requests are
decided on the current snapshot, 90% of the ads render (impressions) and 1% of those are
clicked, the events are stored and tallied, the pacing job refreshes the delivered-so-far
figures and the snapshot is rebuilt: what a server does every pacing refresh.

Campaigns on one slot: even-paced impression goals (total and daily), an even click goal, an
even goal whose budget runs out first, and an asap campaign of a lower tier taking what is
left. The summary gives each one's total against its goal, the largest over-delivery, and
each day's delivery against its even share; a PNG plots delivery per day against the goal
lines (``bench/results/pacing-*.png``, git-ignored).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw
from sqlalchemy import Engine
from sqlmodel import Session

from adserver.core.db import bump_inventory_version, make_engine, migrate
from adserver.core.models import Advertiser, Campaign, CampaignSlot, Creative, Site, Slot
from adserver.delivery.decide import DecideRequest, SlotRequest, decide
from adserver.delivery.inventory import build_snapshot
from adserver.delivery.pacing import refresh_delivery
from adserver.reporting.tally import run_tally
from adserver.tracking.events import EventRecord, store
from adserver.tracking.tokens import new_decision_id

#: Requests per hour by hour of day (before the weekday factor and the spike).
SHAPE = [80, 48, 36, 32, 40, 88, 240, 560, 920, 840, 720, 680, 640, 640, 600, 560, 600, 720, 840,
         800, 680, 480, 280, 140]  # fmt: skip
WEEKEND = 0.7
#: Day (0-based) and hours of the viral spike, and how much more traffic it brings.
SPIKE_DAY, SPIKE_HOURS, SPIKE = 16, range(10, 15), 6.0
RENDERED, CTR = 0.9, 0.01
STEP = 600
DAYS = 30
START = datetime(2026, 6, 1, tzinfo=UTC)  # a Monday
RESULTS = Path(__file__).parent / "results"


@dataclass(frozen=True)
class Plan:
    name: str
    fields: dict[str, Any]


def plans(days: int) -> list[Plan]:
    ends = (START + timedelta(days=days)).replace(tzinfo=None)
    even = {"tier": "standard", "pacing": "even", "starts_at": START.replace(tzinfo=None),
            "ends_at": ends, "pricing": "cpm", "price_micros": 5_000_000}  # fmt: skip
    return [
        Plan(
            "impressions, total", {**even, "goal_kind": "impressions", "goal_total": 1_500 * days}
        ),
        Plan(
            "impressions, total and daily",
            {**even, "goal_kind": "impressions", "goal_total": 900 * days, "goal_daily": 1_000},
        ),
        Plan("clicks, total", {**even, "goal_kind": "clicks", "goal_total": 8 * days}),
        Plan(
            "budget before goal",
            {
                **even,
                "goal_kind": "impressions",
                "goal_total": 800 * days,
                "budget_micros": 5_000_000 * 600 * days // 1000,
            },
        ),
        Plan(
            "asap, lower tier",
            {
                "tier": "price",
                "pacing": "asap",
                "pricing": "cpm",
                "price_micros": 1_000_000,
                "starts_at": None,
            },
        ),
    ]


def setup(engine: Engine, days: int) -> tuple[dict[int, Plan], int, int]:
    with Session(engine) as session:
        site = Site(key="sim", name="Simulated", domains=["localhost"], timezone="UTC")
        session.add(site)
        session.flush()
        slot = Slot(site_id=site.id or 0, name="top", sizes=["728x90"])
        advertiser = Advertiser(name="Simulated advertiser")
        session.add_all([slot, advertiser])
        session.flush()
        campaigns: dict[int, Plan] = {}
        for plan in plans(days):
            campaign = Campaign(
                advertiser_id=advertiser.id or 0, name=plan.name, status="active", **plan.fields
            )
            session.add(campaign)
            session.flush()
            session.add(CampaignSlot(campaign_id=campaign.id or 0, slot_id=slot.id or 0))
            session.add(
                Creative(
                    campaign_id=campaign.id or 0,
                    name="banner",
                    width=728,
                    height=90,
                    click_url="https://advertiser.example/",
                )
            )
            campaigns[campaign.id or 0] = plan
        bump_inventory_version(session.connection())
        session.commit()
        return campaigns, int(site.id or 0), int(slot.id or 0)


def requests_in(at: float, rng: random.Random) -> int:
    """The requests of the ``STEP`` seconds from ``at``: the hour's traffic spread evenly."""
    moment = datetime.fromtimestamp(at, UTC)
    day = (moment - START).days
    rate = SHAPE[moment.hour] * (WEEKEND if moment.weekday() >= 5 else 1.0)
    if day == SPIKE_DAY and moment.hour in SPIKE_HOURS:
        rate *= SPIKE
    expected = rate * STEP / 3600
    return max(0, round(rng.gauss(expected, expected**0.5)))


def simulate(engine: Engine, days: int, seed: int = 1) -> dict[str, Any]:
    campaigns, site_id, slot_id = setup(engine, days)
    rng = random.Random(seed)
    daily: dict[int, list[int]] = {cid: [0] * days for cid in campaigns}
    clicks: dict[int, int] = defaultdict(int)
    wanted = (SlotRequest("top"),)
    started = time.monotonic()
    at = START.timestamp()
    end = at + days * 86400
    while at < end:
        with engine.connect() as connection:
            snapshot = build_snapshot(connection, base_url="http://sim", now=at)
        records = []
        for _ in range(requests_in(at, rng)):
            now = at + rng.random() * STEP
            result = decide(snapshot, DecideRequest("sim", wanted, now), rng)
            decision = result.decisions["top"]
            if decision is None or rng.random() >= RENDERED:
                continue
            hour = int(now) // 3600 * 3600
            ids = {"site_id": site_id, "slot_id": slot_id, "campaign_id": decision.campaign.id,
                   "creative_id": decision.creative.id, "hour": hour, "reason": None}  # fmt: skip
            decision_id = new_decision_id(decision.raw_id)
            records.append(EventRecord.new(decision_id=decision_id, kind="imp", at=int(now), **ids))
            daily[decision.campaign.id][int(now - START.timestamp()) // 86400] += 1
            if rng.random() < CTR:
                records.append(
                    EventRecord.new(decision_id=decision_id, kind="click", at=int(now), **ids)
                )
                clicks[decision.campaign.id] += 1
        with engine.begin() as connection:
            store(connection, records)
        run_tally(engine)
        at += STEP
        refresh_delivery(engine, now=at)
    return {
        "campaigns": campaigns,
        "daily": daily,
        "clicks": dict(clicks),
        "seconds": round(time.monotonic() - started, 1),
    }


def summarise(run: dict[str, Any], days: int) -> list[dict[str, Any]]:
    rows = []
    for cid, plan in run["campaigns"].items():
        fields, daily = plan.fields, run["daily"][cid]
        imps = sum(daily)
        row: dict[str, Any] = {"campaign": plan.name, "impressions": imps}
        if fields.get("goal_kind") == "clicks":
            row.update(clicks=run["clicks"].get(cid, 0), goal=fields["goal_total"])
            row["of_goal"] = round(row["clicks"] / row["goal"], 4)
        elif "budget_micros" in fields:
            bought = fields["budget_micros"] * 1000 // fields["price_micros"]
            row.update(goal=bought, of_goal=round(imps / bought, 4), bound="budget")
        elif "goal_total" in fields:
            row.update(goal=fields["goal_total"], of_goal=round(imps / fields["goal_total"], 4))
        if fields.get("goal_kind") == "impressions" and "budget_micros" not in fields:
            share = fields["goal_total"] / days
            if fields.get("goal_daily"):
                share = min(share, fields["goal_daily"])
            off = [abs(n - share) / share for n in daily[1:]]  # day 1 starts from nothing
            row["worst_day_off_even_share"] = round(max(off), 4)
            row["days_within_10pct"] = sum(1 for o in off if o <= 0.10)
            row["max_day"] = max(daily)
        rows.append(row)
    return rows


def plot(run: dict[str, Any], days: int, path: Path) -> None:
    """Delivered impressions per day, one line per campaign, each goal's even share dashed."""
    width, height, pad = 960, 540, 60
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    top = max(max(d) for d in run["daily"].values()) * 1.1
    colours = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#7f7f7f"]

    def point(day: float, value: float) -> tuple[float, float]:
        x = pad + (width - 2 * pad) * day / max(1, days - 1)
        return x, height - pad - (height - 2 * pad) * value / top

    draw.line([point(0, 0), point(days - 1, 0)], fill="black")
    draw.line([point(0, 0), (pad, pad)], fill="black")
    for tick in range(0, int(top) + 1, max(1, int(top) // 5 // 500 * 500 or 500)):
        _, y = point(0, tick)
        draw.text((5, y - 6), f"{tick:,}", fill="black")
    for n, (cid, plan) in enumerate(run["campaigns"].items()):
        colour = colours[n % len(colours)]
        daily = run["daily"][cid]
        draw.line([point(d, v) for d, v in enumerate(daily)], fill=colour, width=2)
        fields = plan.fields
        if fields.get("goal_kind") == "impressions" and "budget_micros" not in fields:
            share = fields["goal_total"] / days
            if fields.get("goal_daily"):
                share = min(share, fields["goal_daily"])
            for d in range(0, days - 1, 2):
                draw.line([point(d, share), point(d + 1, share)], fill=colour, width=1)
        draw.text((pad + 10, 10 + 14 * n), plan.name, fill=colour)
    draw.text((width // 2 - 80, height - 30), "day of the month", fill="black")
    path.parent.mkdir(exist_ok=True)
    image.save(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pacing", description=__doc__)
    parser.add_argument("--days", type=int, default=DAYS)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    memory = Path("/dev/shm")  # the database's fsyncs are not what is measured here
    where = str(memory) if memory.is_dir() else None
    with tempfile.TemporaryDirectory(prefix="adserver-pacing-", dir=where) as workdir:
        url = f"sqlite:///{workdir}/pacing.db"
        migrate(url)
        engine = make_engine(url)
        run = simulate(engine, args.days, args.seed)
        engine.dispose()
    rows = summarise(run, args.days)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    png = RESULTS / f"pacing-{stamp}.png"
    plot(run, args.days, png)
    print(json.dumps({"days": args.days, "seconds": run["seconds"], "campaigns": rows}, indent=2))
    print(f"plot: {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

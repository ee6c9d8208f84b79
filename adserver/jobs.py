"""The work behind the scheduled jobs other than the tally: pacing figures and retention."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, select, text
from sqlalchemy.dialects import postgresql, sqlite

from adserver.db import bump_inventory_version
from adserver.models import CampaignDelivery, table

UTC_ZONE = ZoneInfo("UTC")
FIGURES = ("impressions", "clicks", "spend_nanos")


def local_day_bounds(now: float, zone: ZoneInfo) -> tuple[str, int, int]:
    """(local date, UTC epoch of its first moment, of the next day's first moment)."""
    today = datetime.fromtimestamp(now, UTC).astimezone(zone).date()
    start = datetime.combine(today, time(), tzinfo=zone)
    end = datetime.combine(today + timedelta(days=1), time(), tzinfo=zone)
    return today.isoformat(), int(start.timestamp()), int(end.timestamp())


def refresh_delivery(engine: Engine, *, now: float) -> int:
    """Recompute ``campaign_delivery`` from the hourly statistics; returns campaigns changed.

    "Today" is the campaign's site-local day (the site of its first slot, else of its
    delivery). When a figure changed, the inventory version is bumped in the same transaction
    so every server process rebuilds its snapshot with the new throttles.
    """
    with engine.begin() as connection:
        zones: dict[int, ZoneInfo] = {}
        for row in connection.execute(
            text(
                "SELECT cs.campaign_id, site.timezone FROM campaign_slot cs "
                "JOIN slot ON slot.id = cs.slot_id JOIN site ON site.id = slot.site_id "
                "ORDER BY cs.campaign_id, cs.slot_id"
            )
        ):
            zones.setdefault(int(row.campaign_id), ZoneInfo(row.timezone))
        totals = connection.execute(
            text(
                "SELECT campaign_id, min(site_id) AS site_id, sum(impressions) AS impressions, "
                "sum(clicks) AS clicks, sum(spend_nanos) AS spend_nanos FROM hourly_stat "
                "WHERE campaign_id <> 0 GROUP BY campaign_id"
            )
        ).all()
        site_zones = {
            int(row.id): ZoneInfo(row.timezone)
            for row in connection.execute(text("SELECT id, timezone FROM site"))
        }
        # Two days back covers "today" in every zone (UTC-12 to UTC+14).
        recent: dict[int, list[Any]] = defaultdict(list)
        for row in connection.execute(
            text(
                "SELECT campaign_id, hour, sum(impressions) AS impressions, sum(clicks) AS clicks, "
                "sum(spend_nanos) AS spend_nanos FROM hourly_stat "
                "WHERE campaign_id <> 0 AND hour >= :since GROUP BY campaign_id, hour"
            ),
            {"since": int(now) - 2 * 86400},
        ):
            recent[int(row.campaign_id)].append(row)
        fresh: dict[int, dict[str, Any]] = {}
        for row in totals:
            campaign_id = int(row.campaign_id)
            zone = zones.get(campaign_id) or site_zones.get(int(row.site_id), UTC_ZONE)
            day, start, end = local_day_bounds(now, zone)
            figures: dict[str, Any] = {"campaign_id": campaign_id, "day": day}
            for name in FIGURES:
                figures[name] = int(getattr(row, name) or 0)
                figures[f"today_{name}"] = sum(
                    int(getattr(r, name) or 0) for r in recent[campaign_id] if start <= r.hour < end
                )
            fresh[campaign_id] = figures
        delivery = table(CampaignDelivery)
        current = {
            int(row.campaign_id): dict(row._mapping) for row in connection.execute(select(delivery))
        }
        changed = [figures for cid, figures in sorted(fresh.items()) if current.get(cid) != figures]
        if changed:
            insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
            statement = insert(delivery)
            statement = statement.on_conflict_do_update(
                index_elements=["campaign_id"],
                set_={c.name: statement.excluded[c.name] for c in delivery.columns},
            )
            connection.execute(statement, changed)
            bump_inventory_version(connection)
        return len(changed)


def prune_events(
    engine: Engine, *, now: float, retention_days: int, batch_size: int = 10_000
) -> int:
    """Delete tallied raw events older than ``retention_days``; never one still untallied.

    Deletes in batches so a first run over a large backlog never holds SQLite's write lock long.
    Hourly statistics are kept.
    """
    cutoff = int(now) - retention_days * 86400
    deleted = 0
    while True:
        with engine.begin() as connection:
            count = connection.execute(
                text(
                    "DELETE FROM event WHERE id IN (SELECT id FROM event "
                    "WHERE at < :cutoff AND tally_batch IS NOT NULL LIMIT :n)"
                ),
                {"cutoff": cutoff, "n": batch_size},
            ).rowcount
        deleted += count
        if count < batch_size:
            return deleted

"""The daily rollups, rebuilt from the hourly statistics, and the check that they agree.

``hourly.add_counts`` and ``hourly.add_invalid`` keep ``daily_stat`` and ``invalid_daily`` up to
date as they write, in the same transaction. Rebuilding is for what that cannot cover: rows
written before the rollups existed (the migration), a site whose time zone changed (its hours
fall into other days), and bulk loads that write hourly rows directly (the bench).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, text

from adserver.core.clock import UTC_ZONE
from adserver.reporting.hourly import COUNTERS, site_zones

_IDS = "site_id, slot_id, campaign_id, creative_id"
#: (table, its daily rollup, extra key columns, summed columns)
_PAIRS = (
    ("hourly_stat", "daily_stat", "", COUNTERS),
    ("invalid_stat", "invalid_daily", ", kind, reason", ("count",)),
)


def rebuild(connection: Connection, site_ids: Iterable[int] | None = None) -> None:
    """Recompute the daily rollups of ``site_ids`` (default: every site with statistics) from
    their hourly rows, inside the caller's transaction."""
    zones = site_zones(connection)
    spans = _spans(connection)
    wanted = set(spans) if site_ids is None else set(site_ids)
    for site_id in sorted(wanted):
        for hourly, daily, extra, sums in _PAIRS:
            connection.execute(text(f"DELETE FROM {daily} WHERE site_id = :s"), {"s": site_id})
            if site_id not in spans:
                continue
            days = _days_cte(zones.get(site_id, UTC_ZONE), *spans[site_id])
            totals = ", ".join(f"sum(h.{c})" for c in sums)
            connection.execute(
                text(
                    f"WITH {days} INSERT INTO {daily} (day, {_IDS}{extra}, {', '.join(sums)}) "
                    f"SELECT d.day, {_prefixed(_IDS + extra)}, {totals} "
                    f"FROM {hourly} h JOIN d ON h.hour >= d.lo AND h.hour < d.hi "
                    f"WHERE h.site_id = :s GROUP BY d.day, {_prefixed(_IDS + extra)}"
                ),
                {"s": site_id},
            )


def disagreements(connection: Connection) -> list[str]:
    """Every (table, site, day) whose daily rollup differs from the sum of its hours; an empty
    list when they agree."""
    zones = site_zones(connection)
    found: list[str] = []
    for site_id, (first, last) in sorted(_spans(connection).items()):
        days = _days_cte(zones.get(site_id, UTC_ZONE), first, last)
        for hourly, daily, extra, sums in _PAIRS:
            from_hours = (
                f"SELECT d.day, {_prefixed(_IDS + extra)}, "
                + ", ".join(f"sum(h.{c}) AS {c}" for c in sums)
                + f" FROM {hourly} h JOIN d ON h.hour >= d.lo AND h.hour < d.hi "
                f"WHERE h.site_id = :s GROUP BY d.day, {_prefixed(_IDS + extra)}"
            )
            from_days = (
                f"SELECT day, {_IDS}{extra}, {', '.join(sums)} FROM {daily} WHERE site_id = :s"
            )
            for one, other in ((from_hours, from_days), (from_days, from_hours)):
                rows = connection.execute(
                    text(f"WITH {days} SELECT * FROM ({one} EXCEPT {other}) AS x"), {"s": site_id}
                )
                found += [f"{daily} site {site_id} day {row[0]}" for row in rows]
    return sorted(set(found))


def _spans(connection: Connection) -> dict[int, tuple[int, int]]:
    """The first and last hour with statistics, by site id."""
    spans: dict[int, tuple[int, int]] = {}
    for hourly, *_ in _PAIRS:
        for site_id, first, last in connection.execute(
            text(f"SELECT site_id, min(hour), max(hour) FROM {hourly} GROUP BY site_id")
        ):
            old = spans.get(int(site_id), (int(first), int(last)))
            spans[int(site_id)] = (min(old[0], int(first)), max(old[1], int(last)))
    return spans


def _days_cte(zone: ZoneInfo, first: int, last: int) -> str:
    """A ``d(day, lo, hi)`` CTE of the site-local days from ``first`` to ``last`` (UTC
    epochs), each with the epochs of its first moment and of the next day's. Values are made
    here (dates and integers), never taken from input, so they are written inline."""
    day = datetime.fromtimestamp(first, UTC).astimezone(zone).date()
    end = datetime.fromtimestamp(last, UTC).astimezone(zone).date()
    values = []
    while day <= end:
        after = _midnight(day + timedelta(days=1), zone)
        values.append(f"('{day.isoformat()}', {_midnight(day, zone)}, {after})")
        day += timedelta(days=1)
    return f"d(day, lo, hi) AS (VALUES {', '.join(values)})"


def _midnight(day: date, zone: ZoneInfo) -> int:
    return int(datetime.combine(day, time(0), tzinfo=zone).timestamp())


def _prefixed(columns: str) -> str:
    return ", ".join(f"h.{c.strip()}" for c in columns.split(","))

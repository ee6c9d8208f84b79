"""The daily rollups, rebuilt from the hourly statistics, and the check that they agree.

``hourly.add_counts`` and ``hourly.add_invalid`` keep ``daily_stat`` and ``invalid_daily`` up to
date as they write, in the same transaction. Rebuilding is for what that cannot cover: a site
whose time zone changed (its hours fall into other days) and bulk loads that write hourly rows
directly (the bench). Both passes read the hourly rows once, joined to a temporary table giving
the site-local day of every (site, hour) that has statistics.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, text

from adserver.core.clock import UTC_ZONE, local_hour_start
from adserver.reporting.hourly import COUNTERS, site_zones

_IDS = ("site_id", "slot_id", "campaign_id", "creative_id")
#: (table, its daily rollup, key columns besides the day, summed columns)
_PAIRS = (
    ("hourly_stat", "daily_stat", _IDS, COUNTERS),
    ("invalid_stat", "invalid_daily", (*_IDS, "kind", "reason"), ("count",)),
)
_DAYS = "rollup_hour_day"


def rebuild(connection: Connection, site_ids: Iterable[int] | None = None) -> None:
    """Recompute the daily rollups of ``site_ids`` (default: every site with statistics) from
    their hourly rows, inside the caller's transaction."""
    wanted = None if site_ids is None else sorted(set(site_ids))
    with _hour_days(connection, wanted):
        for hourly, daily, key, sums in _PAIRS:
            where = "" if wanted is None else f" WHERE site_id IN ({_ids(wanted)})"
            connection.execute(text(f"DELETE FROM {daily}{where}"))
            connection.execute(
                text(
                    f"INSERT INTO {daily} (day, {', '.join(key)}, {', '.join(sums)}) "
                    + _summed(hourly, key, sums)
                )
            )


def disagreements(connection: Connection) -> list[str]:
    """Every (table, site, day) whose daily rollup differs from the sum of its hours; an empty
    list when they agree."""
    found: set[str] = set()
    with _hour_days(connection, None):
        for hourly, daily, key, sums in _PAIRS:
            stored = f"SELECT day, {', '.join(key)}, {', '.join(sums)} FROM {daily}"
            summed = _summed(hourly, key, sums)
            for one, other in ((summed, stored), (stored, summed)):
                rows = connection.execute(
                    text(f"SELECT day, site_id FROM ({one} EXCEPT {other}) AS x")
                )
                found |= {f"{daily} site {site} day {day}" for day, site in rows}
    return sorted(found)


def _summed(hourly: str, key: tuple[str, ...], sums: tuple[str, ...]) -> str:
    """The hourly rows of the sites in the day table, summed per site-local day."""
    columns = ", ".join(f"h.{c}" for c in key)
    totals = ", ".join(f"sum(h.{c}) AS {c}" for c in sums)
    return (
        f"SELECT d.day, {columns}, {totals} FROM {hourly} h "
        f"JOIN {_DAYS} d ON d.site_id = h.site_id AND d.hour = h.hour "
        f"GROUP BY d.day, {columns}"
    )


@contextlib.contextmanager
def _hour_days(connection: Connection, site_ids: list[int] | None) -> Iterator[None]:
    """A temporary table of the local day of every hour bucket of each site, from its first
    hour with statistics to its last."""
    zones = site_zones(connection)
    where = "" if site_ids is None else f" WHERE site_id IN ({_ids(site_ids)})"
    # Each site's span of hours (one aggregate pass, 50 groups), then every hour bucket in it:
    # a DISTINCT over millions of rows took minutes on PostgreSQL.
    spans: dict[int, tuple[int, int]] = {}
    for hourly, *_ in _PAIRS:
        for site, first, last in connection.execute(
            text(f"SELECT site_id, min(hour), max(hour) FROM {hourly}{where} GROUP BY site_id")
        ):
            old = spans.get(int(site), (int(first), int(last)))
            spans[int(site)] = (min(old[0], int(first)), max(old[1], int(last)))
    pairs: set[tuple[int, int]] = set()
    for site, (first, last) in spans.items():
        zone = zones.get(site, UTC_ZONE)
        pairs |= {(site, local_hour_start(at, zone)) for at in range(first, last + 3600, 3600)}
    connection.execute(
        text(
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {_DAYS} (site_id INTEGER NOT NULL, "
            "hour BIGINT NOT NULL, day VARCHAR(10) NOT NULL, PRIMARY KEY (site_id, hour))"
        )
    )
    # SQLite's driver runs DDL outside the transaction: a rolled-back caller may leave the table
    # on its pooled connection, so it is emptied rather than assumed new.
    connection.execute(text(f"DELETE FROM {_DAYS}"))
    try:
        rows = [
            {"s": site, "h": hour, "d": _local_day(hour, zones.get(site, UTC_ZONE))}
            for site, hour in sorted(pairs)
        ]
        if rows:
            connection.execute(text(f"INSERT INTO {_DAYS} VALUES (:s, :h, :d)"), rows)
        yield
    finally:
        connection.execute(text(f"DROP TABLE {_DAYS}"))


def _local_day(hour: int, zone: ZoneInfo) -> str:
    return datetime.fromtimestamp(hour, UTC).astimezone(zone).date().isoformat()


def _ids(site_ids: list[int]) -> str:
    """Site ids written inline (integers, never input)."""
    return ", ".join(str(int(i)) for i in site_ids) or "NULL"

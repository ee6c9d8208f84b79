"""Atomic increments of the hourly statistics (per site-local hour, see ``core.clock``) and of
their daily rollups.

Every write adds to the hourly row and, in the same statement batch and transaction, to the row
of the site-local day that hour belongs to (``daily_stat``, ``invalid_daily``): the two always
agree, and a report over whole days reads a 24th of the rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, select

from adserver.core.clock import UTC_ZONE
from adserver.core.db import insert_for
from adserver.core.models import InvalidDaily, InvalidStat, Site, table

STAT_KEY = ("hour", "site_id", "slot_id", "campaign_id", "creative_id")
DAY_KEY = ("day", "site_id", "slot_id", "campaign_id", "creative_id")
#: Counted by each process as it decides (``counters.py``).
DELIVERED = ("requests", "served")
#: Rolled up from the raw events (``tally.py``).
TALLIED = (
    "impressions",
    "viewable",
    "clicks",
    "invalid_impressions",
    "invalid_views",
    "invalid_clicks",
    "spend_nanos",
)
#: Every counter of an hourly statistic, in the order ``add_counts`` takes their values.
COUNTERS = (*DELIVERED, *TALLIED)


def add_counts(connection: Connection, rows: list[tuple[int, ...]]) -> None:
    """Add rows of ``STAT_KEY`` then ``COUNTERS`` values to the hourly statistics and to their
    daily rollups.

    One upsert run by the driver itself for every row (executemany): SQLAlchemy's per-row
    parameter handling cost more than the upsert, and a flush of the delivery counters or a
    tally batch brings thousands of rows, holding the GIL while decisions wait for it.
    """
    if not rows:
        return
    # Sorted by key, so concurrent upserts (counters from several processes, the tally) lock
    # shared rows in one order and cannot deadlock on PostgreSQL: every writer takes its hourly
    # rows first, then its daily rows, each in key order.
    rows.sort()
    paramstyle = connection.dialect.paramstyle
    connection.exec_driver_sql(_HOURLY_UPSERT[paramstyle], rows)
    connection.exec_driver_sql(_DAILY_UPSERT[paramstyle], daily_rows(connection, rows))


def daily_rows(connection: Connection, rows: Iterable[tuple[int, ...]]) -> list[tuple[Any, ...]]:
    """Hourly rows (``STAT_KEY`` + values) summed per site-local day (``DAY_KEY`` + values),
    in key order."""
    days = _Days(connection)
    summed: dict[tuple[Any, ...], list[int]] = {}
    for hour, site_id, *ids_and_values in rows:
        key = (days.of(hour, site_id), site_id, *ids_and_values[:3])
        values = ids_and_values[3:]
        total = summed.get(key)
        if total is None:
            summed[key] = list(values)
        else:
            for n, value in enumerate(values):
                total[n] += value
    return [(*key, *values) for key, values in sorted(summed.items())]


class _Days:
    """The site-local day of an hour bucket, each (site, hour) computed once; a site that is
    gone (or site 0, events that belong to no site) counts in UTC days, as ``stats`` reads it."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._zones: dict[int, ZoneInfo] | None = None
        self._days: dict[tuple[int, int], str] = {}

    def of(self, hour: int, site_id: int) -> str:
        day = self._days.get((site_id, hour))
        if day is None:
            if self._zones is None:
                self._zones = site_zones(self._connection)
            zone = self._zones.get(site_id, UTC_ZONE)
            day = datetime.fromtimestamp(hour, UTC).astimezone(zone).date().isoformat()
            self._days[(site_id, hour)] = day
        return day


def site_zones(connection: Connection) -> dict[int, ZoneInfo]:
    sites = table(Site)
    return {
        int(row.id): ZoneInfo(row.timezone)
        for row in connection.execute(select(sites.c.id, sites.c.timezone))
    }


def _upsert(name: str, key: tuple[str, ...], mark: str) -> str:
    keys = ", ".join(key)
    return (
        f"INSERT INTO {name} ({keys}, {', '.join(COUNTERS)}) "
        f"VALUES ({', '.join([mark] * (len(key) + len(COUNTERS)))}) "
        f"ON CONFLICT ({keys}) DO UPDATE SET "
        + ", ".join(f"{c} = {name}.{c} + excluded.{c}" for c in COUNTERS)
    )


_MARKS = {"qmark": "?", "format": "%s", "pyformat": "%s"}
#: By the driver's parameter style (sqlite3: qmark, psycopg: pyformat).
_HOURLY_UPSERT = {p: _upsert("hourly_stat", STAT_KEY, m) for p, m in _MARKS.items()}
_DAILY_UPSERT = {p: _upsert("daily_stat", DAY_KEY, m) for p, m in _MARKS.items()}


def add_invalid(connection: Connection, rows: Iterable[Mapping[str, Any]]) -> None:
    """Add invalid-event counts per hour, kind and reason, and to their daily rollup (one upsert
    each, executemany), in key order like ``add_counts`` so concurrent writers cannot
    deadlock."""
    rows = sorted(rows, key=lambda row: (*(row[k] for k in STAT_KEY), row["kind"], row["reason"]))
    if not rows:
        return
    insert = insert_for(connection)
    statement = insert(InvalidStat)
    statement = statement.on_conflict_do_update(
        index_elements=[*STAT_KEY, "kind", "reason"],
        set_={"count": InvalidStat.count + statement.excluded.count},
    )
    connection.execute(statement, rows)
    days = _Days(connection)
    summed: dict[tuple[Any, ...], int] = {}
    for row in rows:
        key = (
            days.of(row["hour"], row["site_id"]),
            *(row[k] for k in STAT_KEY[1:]),
            row["kind"],
            row["reason"],
        )
        summed[key] = summed.get(key, 0) + row["count"]
    daily = insert(InvalidDaily)
    daily = daily.on_conflict_do_update(
        index_elements=[*DAY_KEY, "kind", "reason"],
        set_={"count": InvalidDaily.count + daily.excluded.count},
    )
    connection.execute(
        daily,
        [
            {**dict(zip((*DAY_KEY, "kind", "reason"), key, strict=True)), "count": n}
            for key, n in sorted(summed.items())
        ],
    )

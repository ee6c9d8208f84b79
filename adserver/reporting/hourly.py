"""Atomic increments of the hourly statistics (per site-local hour, see ``core.clock``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Connection

from adserver.core.db import insert_for
from adserver.core.models import InvalidStat

STAT_KEY = ("hour", "site_id", "slot_id", "campaign_id", "creative_id")
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
    """Add rows of ``STAT_KEY`` then ``COUNTERS`` values to the hourly statistics.

    One upsert run by the driver itself for every row (executemany): SQLAlchemy's per-row
    parameter handling cost more than the upsert, and a flush of the delivery counters or a
    tally batch brings thousands of rows, holding the GIL while decisions wait for it.
    """
    if not rows:
        return
    # Sorted by key, so concurrent upserts (counters from several processes, the tally) lock
    # shared rows in one order and cannot deadlock on PostgreSQL.
    rows.sort()
    connection.exec_driver_sql(_HOURLY_UPSERT[connection.dialect.paramstyle], rows)


def _hourly_upsert(mark: str) -> str:
    keys = ", ".join(STAT_KEY)
    return (
        f"INSERT INTO hourly_stat ({keys}, {', '.join(COUNTERS)}) "
        f"VALUES ({', '.join([mark] * (len(STAT_KEY) + len(COUNTERS)))}) "
        f"ON CONFLICT ({keys}) DO UPDATE SET "
        + ", ".join(f"{c} = hourly_stat.{c} + excluded.{c}" for c in COUNTERS)
    )


#: By the driver's parameter style (sqlite3: qmark, psycopg: pyformat).
_HOURLY_UPSERT = {
    p: _hourly_upsert("?" if p == "qmark" else "%s") for p in ("qmark", "format", "pyformat")
}


def add_invalid(connection: Connection, rows: Iterable[Mapping[str, Any]]) -> None:
    """Add invalid-event counts per hour, kind and reason (one upsert, executemany), in key
    order like ``add_counts`` so concurrent writers cannot deadlock."""
    rows = sorted(rows, key=lambda row: (*(row[k] for k in STAT_KEY), row["kind"], row["reason"]))
    if not rows:
        return
    statement = insert_for(connection)(InvalidStat)
    statement = statement.on_conflict_do_update(
        index_elements=[*STAT_KEY, "kind", "reason"],
        set_={"count": InvalidStat.count + statement.excluded.count},
    )
    connection.execute(statement, rows)

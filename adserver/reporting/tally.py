"""Roll raw events into the hourly statistics, exactly once.

Each batch claims pending events (``tally_batch IS NULL``) and adds their sums to the statistics
in one transaction, so an event counts exactly when its claim commits. An event committed by a
writer after the claim simply waits for the next batch: there is no id watermark (on PostgreSQL a
lower id can commit after a higher one).

- SQLite has one writer at a time. The batch starts by writing (taking that lock), then reads the
  pending rows up to a rowid cut-off and marks the very same rows: nothing can change between.
- PostgreSQL: one statement picks pending rows, marks them and returns them to a ``GROUP BY``.
  Rows a concurrent writer has not committed are invisible to it, so they wait for the next
  batch; the ``UPDATE`` re-checks ``tally_batch IS NULL`` on any row another transaction changed
  meanwhile, so no row is claimed twice.

Batch numbers come from a counter in ``meta`` incremented in the batch's own transaction, which
also makes concurrent tallies (the scheduler and ``adserver tally``) take turns. (So the pick
takes no ``FOR UPDATE SKIP LOCKED``: it would only add a row lock per event, ~20% slower.)

Abuse rules over readers (``tracking/abuse.py``: ``click-flood``, ``burst``) are judged in the
same transaction as the claim, over the stored events of every process: an event that breaks one
is marked invalid with that reason before it is added up.

Spend, in nano-units of the site's currency: CPM bills valid impressions (``price_micros`` per
1,000, i.e. ``price_micros`` nanos each), CPC valid clicks, flat its price once per site-local day
it delivers (booked in ``flat_booking`` when the day's first valid impression is tallied), house
nothing. The price is the campaign's price when the events are tallied.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, select, text

from adserver.core.clock import UTC_ZONE, local_day
from adserver.core.db import insert_for
from adserver.core.models import Campaign, FlatBooking, Site, table
from adserver.reporting.hourly import DELIVERED, STAT_KEY, TALLIED, add_counts, add_invalid
from adserver.tracking import abuse

DEFAULT_BATCH_SIZE = 50_000
BATCH_COUNTER = "tally_batch"

#: Which hourly counter an event adds to, by (kind, valid).
COUNTER_FOR = {
    ("imp", True): "impressions",
    ("view", True): "viewable",
    ("click", True): "clicks",
    ("imp", False): "invalid_impressions",
    ("view", False): "invalid_views",
    ("click", False): "invalid_clicks",
}

_GROUP = "hour, site_id, slot_id, campaign_id, creative_id, kind, valid, reason"

_ANY_PENDING = text("SELECT 1 FROM event WHERE tally_batch IS NULL LIMIT 1")
_RETURNED = ", ".join(f"event.{c.strip()}" for c in _GROUP.split(","))
_SQLITE_CUTOFF = text(
    "SELECT max(rowid) FROM (SELECT rowid FROM event WHERE tally_batch IS NULL "
    "ORDER BY rowid LIMIT :n)"
)
_SQLITE_GROUPS = text(
    f"SELECT {_GROUP}, count(*) AS n FROM event "
    f"WHERE tally_batch IS NULL AND rowid <= :cut GROUP BY {_GROUP}"
)
_SQLITE_MARK = text(
    "UPDATE event SET tally_batch = :batch WHERE tally_batch IS NULL AND rowid <= :cut"
)


def _judged(candidates: str) -> str:
    """Each stored event of the readers among ``candidates`` (pending events, as SQL) since
    ``:oldest`` (the oldest candidate's time) less each rule's window, with the abuse rule it
    breaks, if any (``abuse.py``): its place among its reader's clicks in the flood window, or
    among all its reader's events in the burst window, counting in (time, id) order. Peers in
    the same second are ranked by id, so a reader's first events count and only the excess is
    marked. Only clicks are read back over the long flood window; every kind over the short
    burst window."""
    flood, burst = abuse.CLICK_FLOOD_WINDOW, abuse.BURST_WINDOW
    return f"""
        SELECT id, CASE
            WHEN kind = 'click' AND clicks - click_peers + click_rank > {abuse.CLICK_FLOOD_LIMIT}
                THEN 'click-flood'
            WHEN recent - peers + peer_rank > {abuse.BURST_LIMIT} THEN 'burst'
        END AS abuse
        FROM (
            SELECT id, kind,
                count(*) OVER (PARTITION BY reader, kind ORDER BY at
                    RANGE BETWEEN {flood} PRECEDING AND CURRENT ROW) AS clicks,
                count(*) OVER (PARTITION BY reader, kind, at) AS click_peers,
                row_number() OVER (PARTITION BY reader, kind, at ORDER BY id) AS click_rank,
                count(*) OVER (PARTITION BY reader ORDER BY at
                    RANGE BETWEEN {burst} PRECEDING AND CURRENT ROW) AS recent,
                count(*) OVER (PARTITION BY reader, at) AS peers,
                row_number() OVER (PARTITION BY reader, at ORDER BY id) AS peer_rank
            FROM event
            WHERE reader <> '' AND at >= :oldest - {flood}
              AND (kind = 'click' OR at >= :oldest - {burst})
              AND reader IN (SELECT reader FROM event WHERE reader <> '' AND {candidates})
        ) AS windows
    """


_SQLITE_OLDEST = text(
    "SELECT min(at) FROM event WHERE tally_batch IS NULL AND rowid <= :cut AND reader <> ''"
)
_SQLITE_JUDGE = text(
    f"""
    UPDATE event SET valid = 0, reason = judged.abuse
    FROM ({_judged("tally_batch IS NULL AND rowid <= :cut")}) AS judged
    WHERE event.id = judged.id AND judged.abuse IS NOT NULL
      AND event.tally_batch IS NULL AND event.valid AND event.rowid <= :cut
    """
)
# One statement, so the rules judge exactly the rows it claims, in one snapshot: a row committed
# meanwhile is neither judged nor claimed, and waits for the next batch.
_POSTGRES_CLAIM = text(
    f"""
    WITH picked AS (
        SELECT id, reader, at FROM event WHERE tally_batch IS NULL LIMIT :n
    ), judged AS (
        {
        _judged("id IN (SELECT id FROM picked)").replace(":oldest", "(SELECT min(at) FROM picked)")
    }
    ), claimed AS (
        UPDATE event SET tally_batch = :batch,
            valid = event.valid AND judged.abuse IS NULL,
            reason = CASE WHEN event.valid AND judged.abuse IS NOT NULL
                THEN judged.abuse ELSE event.reason END
        FROM picked LEFT JOIN judged ON judged.id = picked.id
        WHERE event.id = picked.id AND event.tally_batch IS NULL
        RETURNING {_RETURNED}
    )
    SELECT {_GROUP}, count(*) AS n FROM claimed GROUP BY {_GROUP}
    """
)

Key = tuple[int, int, int, int, int]

#: The delivery counters, which the tally adds 0 to.
_DELIVERED_ZEROS = (0,) * len(DELIVERED)
_SLOT = {column: n for n, column in enumerate(TALLIED)}
_INDEX = {kind_valid: _SLOT[column] for kind_valid, column in COUNTER_FOR.items()}
_IMPRESSIONS, _CLICKS, _SPEND = _SLOT["impressions"], _SLOT["clicks"], _SLOT["spend_nanos"]


def run_tally(engine: Engine, *, batch_size: int = DEFAULT_BATCH_SIZE) -> int:
    """Roll every pending event into the statistics; returns how many were rolled up.

    Safe to run from several processes at once and while events are being inserted: each event
    is added exactly once. Stops when a batch comes back short, so it ends under steady load.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    total = 0
    while True:
        with engine.connect() as connection:
            # A read first, so an idle tally never takes SQLite's write lock.
            if connection.execute(_ANY_PENDING).first() is None:
                return total
        with engine.begin() as connection:
            claimed = tally_batch(connection, batch_size=batch_size)
        total += claimed
        if claimed < batch_size:
            return total


def tally_batch(connection: Connection, *, batch_size: int) -> int:
    """Claim up to ``batch_size`` pending events and add them up, inside the caller's
    transaction (the claim and the sums must commit together)."""
    batch = _next_batch(connection)
    if connection.dialect.name == "postgresql":
        groups = connection.execute(_POSTGRES_CLAIM, {"n": batch_size, "batch": batch}).all()
    else:
        cut = connection.execute(_SQLITE_CUTOFF, {"n": batch_size}).scalar()
        if cut is None:
            return 0
        # The batch holds SQLite's write lock: nothing changes between judging and claiming.
        oldest = connection.execute(_SQLITE_OLDEST, {"cut": cut}).scalar()
        if oldest is not None:
            connection.execute(_SQLITE_JUDGE, {"cut": cut, "oldest": oldest})
        groups = connection.execute(_SQLITE_GROUPS, {"cut": cut}).all()
        connection.execute(_SQLITE_MARK, {"batch": batch, "cut": cut})
    if not groups:
        return 0
    _add_groups(connection, groups)
    return sum(int(g.n) for g in groups)


def _next_batch(connection: Connection) -> int:
    """A new batch number; the row lock it takes makes concurrent tallies take turns."""
    connection.execute(
        text("INSERT INTO meta (key, value) VALUES (:k, 0) ON CONFLICT (key) DO NOTHING"),
        {"k": BATCH_COUNTER},
    )
    value = connection.execute(
        text("UPDATE meta SET value = value + 1 WHERE key = :k RETURNING value"),
        {"k": BATCH_COUNTER},
    ).scalar_one()
    return int(value)


def _add_groups(connection: Connection, groups: Sequence[Any]) -> None:
    hourly: dict[Key, list[int]] = {}
    invalid: dict[tuple[Key, str, str], int] = defaultdict(int)
    for hour, site_id, slot_id, campaign_id, creative_id, kind, valid, reason, n in groups:
        key: Key = (hour, site_id, slot_id, campaign_id, creative_id)
        counts = hourly.get(key)
        if counts is None:
            counts = hourly[key] = [0] * len(TALLIED)
        counts[_INDEX[(kind, bool(valid))]] += n
        if not valid:
            invalid[(key, kind, reason or "unknown")] += n
    _add_spend(connection, hourly)
    add_counts(connection, [(*key, *_DELIVERED_ZEROS, *counts) for key, counts in hourly.items()])
    add_invalid(
        connection,
        [
            {**dict(zip(STAT_KEY, key, strict=True)), "kind": kind, "reason": reason, "count": n}
            for (key, kind, reason), n in invalid.items()
        ],
    )


def _add_spend(connection: Connection, hourly: dict[Key, list[int]]) -> None:
    campaign_ids = sorted({key[3] for key in hourly if key[3]})
    if not campaign_ids:
        return
    campaigns = table(Campaign)
    prices = {
        row.id: (row.pricing, int(row.price_micros or 0))
        for row in connection.execute(
            select(campaigns.c.id, campaigns.c.pricing, campaigns.c.price_micros).where(
                campaigns.c.id.in_(campaign_ids)
            )
        )
    }
    flat_days: dict[tuple[int, str], Key] = {}
    zones = _site_zones(connection, {key[1] for key in hourly})
    for key, counts in hourly.items():
        pricing, price = prices.get(key[3], ("house", 0))
        if pricing == "cpm":
            counts[_SPEND] += counts[_IMPRESSIONS] * price
        elif pricing == "cpc":
            counts[_SPEND] += counts[_CLICKS] * price * 1000
        elif pricing == "flat" and price and counts[_IMPRESSIONS]:
            day = local_day(key[0], zones.get(key[1], UTC_ZONE))
            first = flat_days.get((key[3], day))
            if first is None or key < first:
                flat_days[(key[3], day)] = key
    for (campaign_id, _day), key in _book_flat_days(connection, flat_days):
        hourly[key][_SPEND] += prices[campaign_id][1] * 1000


def _book_flat_days(
    connection: Connection, days: dict[tuple[int, str], Key]
) -> Iterable[tuple[tuple[int, str], Key]]:
    """The (campaign, day)s booked now for the first time, with the row that pays for each."""
    if not days:
        return []
    insert = insert_for(connection)
    bookings = table(FlatBooking)
    booked = connection.execute(
        insert(bookings)
        .values([{"campaign_id": c, "day": d} for c, d in sorted(days)])
        .on_conflict_do_nothing()
        .returning(bookings.c.campaign_id, bookings.c.day)
    ).all()
    return [((int(c), str(d)), days[(int(c), str(d))]) for c, d in booked]


def _site_zones(connection: Connection, site_ids: set[int]) -> dict[int, ZoneInfo]:
    sites = table(Site)
    rows = connection.execute(
        select(sites.c.id, sites.c.timezone).where(sites.c.id.in_(sorted(site_ids)))
    )
    return {int(row.id): ZoneInfo(row.timezone) for row in rows}

"""Site-local hour buckets and the hourly statistics' upserts."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, text

from adserver.hourly import HourCache, add_invalid, local_hour_start
from tests.seed import add_hourly

LONDON = ZoneInfo("Europe/London")
KOLKATA = ZoneInfo("Asia/Kolkata")


def utc(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp())  # type: ignore[misc]


@pytest.mark.parametrize(
    ("at", "zone", "hour"),
    [
        (utc(2026, 6, 1, 12, 34, 56), ZoneInfo("UTC"), utc(2026, 6, 1, 12)),
        # Kolkata is UTC+05:30: its hours begin at half past the UTC hour.
        (utc(2026, 10, 24, 18, 29, 59), KOLKATA, utc(2026, 10, 24, 17, 30)),
        (utc(2026, 10, 24, 18, 30), KOLKATA, utc(2026, 10, 24, 18, 30)),
        (utc(2026, 10, 24, 18, 59), KOLKATA, utc(2026, 10, 24, 18, 30)),
        # London in summer time (UTC+1) ...
        (utc(2026, 10, 24, 23, 15), LONDON, utc(2026, 10, 24, 23)),
        # ... then 01:00-02:00 local twice on 25 October: first in BST, then in GMT.
        (utc(2026, 10, 25, 0, 30), LONDON, utc(2026, 10, 25, 0)),
        (utc(2026, 10, 25, 1, 30), LONDON, utc(2026, 10, 25, 1)),
        (utc(2026, 10, 25, 2, 0), LONDON, utc(2026, 10, 25, 2)),
        # Spring forward, 29 March: 01:00 GMT jumps to 02:00 BST.
        (utc(2026, 3, 29, 0, 59, 59), LONDON, utc(2026, 3, 29, 0)),
        (utc(2026, 3, 29, 1, 0), LONDON, utc(2026, 3, 29, 1)),
        # Nepal is UTC+05:45.
        (utc(2026, 1, 1, 0, 0), ZoneInfo("Asia/Kathmandu"), utc(2025, 12, 31, 23, 15)),
    ],
)
def test_local_hour_start(at: int, zone: ZoneInfo, hour: int) -> None:
    assert local_hour_start(at, zone) == hour
    assert HourCache().hour(at, zone, 1) == hour


def test_hour_cache_moves_on_at_each_local_hour_across_a_dst_change() -> None:
    cache = HourCache()
    start = utc(2026, 10, 24, 22)
    for second in range(0, 5 * 3600, 60):
        assert cache.hour(start + second, LONDON, 7) == local_hour_start(start + second, LONDON)
    # Sites are cached apart, whatever their zones.
    assert cache.hour(start, KOLKATA, 8) == local_hour_start(start, KOLKATA)
    assert cache.hour(start, LONDON, 7) == local_hour_start(start, LONDON)


def test_add_hourly_and_add_invalid_accumulate(engine: Engine) -> None:
    key = {"hour": utc(2026, 1, 1), "site_id": 1, "slot_id": 2, "campaign_id": 3, "creative_id": 4}
    other = {**key, "creative_id": 5}
    with engine.begin() as connection:
        add_hourly(connection, [{**key, "requests": 2, "served": 1}])
        add_hourly(connection, [{**key, "served": 4, "impressions": 3}, {**other, "requests": 1}])
        add_invalid(connection, [{**key, "kind": "imp", "reason": "bot", "count": 2}])
        add_invalid(
            connection,
            [
                {**key, "kind": "imp", "reason": "bot", "count": 1},
                {**key, "kind": "click", "reason": "bot", "count": 1},
            ],
        )
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT creative_id, requests, served, impressions, clicks FROM hourly_stat "
                "ORDER BY creative_id"
            )
        ).all()
        invalid = connection.execute(
            text("SELECT kind, reason, count FROM invalid_stat ORDER BY kind")
        ).all()
    assert [tuple(r) for r in rows] == [(4, 2, 5, 3, 0), (5, 1, 0, 0, 0)]
    assert [tuple(r) for r in invalid] == [("click", "bot", 1), ("imp", "bot", 3)]

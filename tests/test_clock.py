"""Site-local hour buckets, across zones with odd offsets and DST changes."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from adserver.core.clock import HourCache, local_hour_start

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

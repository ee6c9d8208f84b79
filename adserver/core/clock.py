"""Site-local time: hour buckets, local days and their bounds.

Statistics are kept per hour of the site's own clock (stored as the UTC instant the local hour
starts), so a local day is a whole number of rows even in zones such as Asia/Kolkata (+05:30)
where a UTC hour would straddle midnight.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

UTC_ZONE = ZoneInfo("UTC")


def local_hour_start(at: float, zone: ZoneInfo) -> int:
    """The UTC instant at which the site-local hour holding ``at`` began."""
    local = datetime.fromtimestamp(at, UTC).astimezone(zone)
    return int(local.replace(minute=0, second=0, microsecond=0).timestamp())


def local_day(hour: int, zone: ZoneInfo) -> str:
    """The site-local date (YYYY-MM-DD) of a site-local hour bucket."""
    return datetime.fromtimestamp(hour, UTC).astimezone(zone).date().isoformat()


def local_day_bounds(now: float, zone: ZoneInfo) -> tuple[str, int, int]:
    """(local date, UTC epoch of its first moment, of the next day's first moment)."""
    today = datetime.fromtimestamp(now, UTC).astimezone(zone).date()
    start = datetime.combine(today, time(), tzinfo=zone)
    end = datetime.combine(today + timedelta(days=1), time(), tzinfo=zone)
    return today.isoformat(), int(start.timestamp()), int(end.timestamp())


class HourCache:
    """``local_hour_start`` for "now", computed once per site per hour on the hot path."""

    def __init__(self) -> None:
        self._cache: dict[tuple[int, str], tuple[int, int]] = {}

    def hour(self, at: float, zone: ZoneInfo, site_id: int) -> int:
        key = (site_id, zone.key)
        cached = self._cache.get(key)
        if cached is not None and cached[0] <= at < cached[1]:
            return cached[0]
        start = local_hour_start(at, zone)
        self._cache[key] = (start, start + 3600)
        return start


def flight_instant(wall: datetime | None, offset: int | None, zone: ZoneInfo) -> float | None:
    """A campaign's start or end as a UNIX time on a site in ``zone``: booked with a UTC offset
    (minutes), that instant everywhere; without one, the site's own wall clock."""
    if wall is None:
        return None
    if offset is not None:
        return wall.replace(tzinfo=timezone(timedelta(minutes=offset))).timestamp()
    return wall.replace(tzinfo=zone).timestamp()

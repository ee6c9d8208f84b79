"""Report periods (whole calendar days, weeks and months) and when a schedule falls due.

A period is a range of local dates, start..end inclusive, handed to ``run_stats`` exactly as
``/v1/stats?from=..&to=..`` would be: each site's own days, so a Kolkata week runs Monday 00:00
to Sunday 24:00 Kolkata time and a London month spans its DST change whole.

A schedule is due at ``hour`` o'clock of its own zone. A local time that does not exist (the
hour skipped when clocks go forward) resolves, as ``fold=0`` does, to the first valid instant
after the gap, and a repeated one (clocks go back) to its first occurrence: either way one
instant per scheduled day, so the report goes out once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

PERIODS = ("day", "week", "month")


@dataclass(frozen=True)
class Period:
    kind: str
    start: date
    end: date

    @property
    def label(self) -> str:
        if self.kind == "day":
            return self.start.strftime("%a %-d %b %Y")
        if self.kind == "month":
            return self.start.strftime("%B %Y")
        return f"{self.start:%-d %b} to {self.end:%-d %b %Y}"

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=n) for n in range((self.end - self.start).days + 1)]

    def previous(self) -> Period:
        return period_containing(self.start - timedelta(days=1), self.kind)


def period_containing(day: date, kind: str) -> Period:
    """The day, the Monday-to-Sunday week or the calendar month holding ``day``."""
    if kind == "day":
        return Period(kind, day, day)
    if kind == "week":
        start = day - timedelta(days=day.weekday())
        return Period(kind, start, start + timedelta(days=6))
    if kind == "month":
        start = day.replace(day=1)
        following = (start + timedelta(days=31)).replace(day=1)
        return Period(kind, start, following - timedelta(days=1))
    raise ValueError(f"period must be one of {', '.join(PERIODS)}, not {kind!r}")


def last_complete_period(today: date, kind: str) -> Period:
    """The latest whole period that ended before ``today``."""
    return period_containing(today, kind).previous()


def local_instant(day: date, hour: int, zone: ZoneInfo) -> datetime:
    """``hour`` o'clock on ``day`` in ``zone`` as a UTC instant (see the module note on gaps)."""
    return datetime.combine(day, time(hour), tzinfo=zone).astimezone(UTC)


@dataclass(frozen=True)
class Occurrence:
    """A scheduled sending: when it was due, and the period it reports."""

    due: datetime
    period: Period


def latest_occurrence(
    *, period: str, hour: int, zone: ZoneInfo, now: datetime, weekday: int | None, day: int | None
) -> Occurrence:
    """The most recent time at or before ``now`` the schedule was due, and its period: the
    last whole period before that day."""
    local_today = now.astimezone(zone).date()
    candidate = _scheduled_day_on_or_before(local_today, period, weekday, day)
    due = local_instant(candidate, hour, zone)
    if due > now:
        candidate = _scheduled_day_on_or_before(candidate - timedelta(days=1), period, weekday, day)
        due = local_instant(candidate, hour, zone)
    return Occurrence(due, last_complete_period(candidate, period))


def _scheduled_day_on_or_before(
    today: date, period: str, weekday: int | None, day: int | None
) -> date:
    if period == "day":
        return today
    if period == "week":
        return today - timedelta(days=(today.weekday() - (weekday or 0)) % 7)
    if period == "month":
        wanted = day or 1
        if today.day >= wanted:
            return today.replace(day=wanted)
        return (today.replace(day=1) - timedelta(days=1)).replace(day=wanted)
    raise ValueError(f"period must be one of {', '.join(PERIODS)}, not {period!r}")

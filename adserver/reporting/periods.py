"""Date ranges of the dashboards: the presets, a custom range, and the previous period.

A range is a span of site-local days, as ``/v1/stats`` reads them; it lives in the URL
(``?range=7d`` or ``?range=custom&from=...&to=...``) so a view can be bookmarked.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta

from adserver.reporting.stats import BadQuery, parse_date

#: Preset name -> label, in the order the page offers them.
PRESETS = {
    "today": "Today",
    "yesterday": "Yesterday",
    "7d": "Last 7 days",
    "30d": "Last 30 days",
    "month": "This month",
    "last-month": "Last month",
    "custom": "Custom",
}
DEFAULT_PRESET = "30d"
#: A custom range longer than this is refused: the page would be a wall of rows.
MAX_DAYS = 400
#: Ranges of at most this many days are charted by hour, longer ones by day.
HOURLY_UP_TO = 2


@dataclass(frozen=True)
class Period:
    """Local days ``start``..``end`` inclusive, chosen by ``preset``."""

    preset: str
    start: date
    end: date

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def hourly(self) -> bool:
        return self.days <= HOURLY_UP_TO

    @property
    def label(self) -> str:
        if self.start == self.end:
            return self.start.isoformat()
        return f"{self.start.isoformat()} to {self.end.isoformat()}"

    def previous(self) -> Period:
        """The period of the same length just before this one."""
        length = timedelta(days=self.days)
        return Period("previous", self.start - length, self.end - length)

    def each_day(self) -> list[date]:
        return [self.start + timedelta(days=n) for n in range(self.days)]

    def query(self) -> dict[str, str]:
        """The URL parameters that select this period again."""
        if self.preset == "custom":
            return {"range": "custom", "from": self.start.isoformat(), "to": self.end.isoformat()}
        return {"range": self.preset}


def period_from_params(params: Mapping[str, str], today: date) -> Period:
    """The period a page's URL asks for (default: the last 30 days); BadQuery names what is
    wrong."""
    preset = params.get("range", "").strip() or DEFAULT_PRESET
    if preset not in PRESETS:
        raise BadQuery(f"'range' must be one of {', '.join(PRESETS)}, not {preset!r}")
    if preset == "custom":
        start, end = parse_date(params, "from"), parse_date(params, "to")
        if start > end:
            raise BadQuery(f"'from' ({start}) is after 'to' ({end})")
        if (end - start).days + 1 > MAX_DAYS:
            raise BadQuery(f"a custom range may span at most {MAX_DAYS} days")
        return Period("custom", start, end)
    return preset_period(preset, today)


def preset_period(preset: str, today: date) -> Period:
    if preset == "today":
        return Period(preset, today, today)
    if preset == "yesterday":
        day = today - timedelta(days=1)
        return Period(preset, day, day)
    if preset in ("7d", "30d"):
        return Period(preset, today - timedelta(days=int(preset[:-1]) - 1), today)
    first = today.replace(day=1)
    if preset == "month":
        return Period(preset, first, today)
    if preset == "last-month":
        end = first - timedelta(days=1)
        return Period(preset, end.replace(day=1), end)
    raise ValueError(f"not a preset with fixed days: {preset}")

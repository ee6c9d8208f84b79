"""Delivery statistics for a date range, grouped by any of the report dimensions.

The hourly statistics are kept per site-local hour (see ``core/clock.py``), so a local day is a
whole number of rows, and beside them their sums per site-local day (``daily_stat``, written in
the same transactions, see ``hourly.py``). A query grouped by hour sums the hourly rows in SQL per
site and hour over each site's own local-day window; any other query sums the daily rows of the
same days, a 24th of the rows. Python folds those sums into local hours or days and the other
dimensions. Billable figures come from ``hourly_stat``/``daily_stat``, the invalid breakdown by
reason from ``invalid_stat``/``invalid_daily``. Names are looked up after aggregation, once per
id.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Connection, Table, func, select

from adserver.core.clock import UTC_ZONE
from adserver.core.enums import INVALID_REASONS
from adserver.core.models import (
    Advertiser,
    Campaign,
    Creative,
    DailyStat,
    HourlyStat,
    InvalidDaily,
    InvalidStat,
    Site,
    Slot,
    table,
)
from adserver.core.money import money
from adserver.reporting import hourly

DIMENSIONS = ("hour", "day", "site", "slot", "advertiser", "campaign", "creative")
FORMATS = ("json", "csv")
DEFAULT_BY = ("day",)
#: Counters summed from ``hourly_stat``, in output order (spend is shown as money, apart).
COUNTERS = tuple(c for c in hourly.COUNTERS if c != "spend_nanos")
#: Where the sums start in a row of ``_statement``: the counters, then spend, come last.
_FIRST_SUM = -(len(COUNTERS) + 1)
#: Figures only an admin sees: they belong to the publisher's slots, not to an advertiser.
DELIVERY_COUNTS = ("requests", "served")

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_HOURLY = table(HourlyStat)
_INVALID = table(InvalidStat)
_DAILY = table(DailyStat)
_INVALID_DAILY = table(InvalidDaily)
_CAMPAIGNS = table(Campaign)
#: Entity dimensions: (table, id column on the statistics, label column).
_ENTITIES: dict[str, tuple[Table, str, str]] = {
    "site": (table(Site), "site_id", "key"),
    "slot": (table(Slot), "slot_id", "name"),
    "advertiser": (table(Advertiser), "advertiser_id", "name"),
    "campaign": (_CAMPAIGNS, "campaign_id", "name"),
    "creative": (table(Creative), "creative_id", "name"),
}


class BadQuery(ValueError):
    """A parameter is missing or malformed; the message names it."""


@dataclass(frozen=True)
class StatsQuery:
    """A validated request: local days ``start``..``end`` inclusive, grouped by ``by``."""

    start: date
    end: date
    by: tuple[str, ...] = DEFAULT_BY
    site: str | None = None
    advertiser: int | None = None
    campaign: int | None = None
    #: Only sites billed in this currency (money is never summed across currencies).
    currency: str | None = None
    format: str = "json"

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> StatsQuery:
        start = parse_date(params, "from")
        end = parse_date(params, "to")
        if start > end:
            raise BadQuery(f"'from' ({start}) is after 'to' ({end})")
        by = tuple(dict.fromkeys(p.strip() for p in params.get("by", "").split(",") if p.strip()))
        unknown = [name for name in by if name not in DIMENSIONS]
        if unknown:
            raise BadQuery(
                f"'by' has unknown dimension {unknown[0]!r}; choose from {', '.join(DIMENSIONS)}"
            )
        output = params.get("format", "json").strip().lower() or "json"
        if output not in FORMATS:
            raise BadQuery(f"'format' must be json or csv, not {params['format']!r}")
        return cls(
            start=start,
            end=end,
            by=by or DEFAULT_BY,
            site=params.get("site", "").strip() or None,
            advertiser=_id(params, "advertiser"),
            campaign=_id(params, "campaign"),
            currency=params.get("currency", "").strip().upper() or None,
            format=output,
        )

    def for_advertiser(self, advertiser: int | None) -> StatsQuery:
        return replace(self, advertiser=advertiser)


def parse_date(params: Mapping[str, str], name: str) -> date:
    """The ``YYYY-MM-DD`` parameter ``name``; BadQuery names it when missing or malformed."""
    raw = params.get(name, "").strip()
    if not raw:
        raise BadQuery(f"'{name}' is required, as YYYY-MM-DD")
    try:
        if not _DATE.fullmatch(raw):
            raise ValueError(raw)
        day = date.fromisoformat(raw)
    except ValueError:
        raise BadQuery(f"'{name}' must be a date as YYYY-MM-DD, not {raw!r}") from None
    if not date(1970, 1, 2) <= day < date(9999, 12, 31):
        raise BadQuery(f"'{name}' is out of range: {raw}")
    return day


def _id(params: Mapping[str, str], name: str) -> int | None:
    raw = params.get(name, "").strip()
    if not raw:
        return None
    # ASCII digits only (``str.isdigit`` also takes "²", which ``int`` refuses), and within
    # the database's id columns (32 bits on PostgreSQL).
    if not (raw.isascii() and raw.isdigit() and len(raw) < 11 and 0 < int(raw) < 2**31):
        raise BadQuery(f"'{name}' must be a numeric {name} id, not {raw!r}")
    return int(raw)


@dataclass
class Figures:
    """Summed counters of one row (or of the totals)."""

    counts: Counter[str] = field(default_factory=Counter)
    spend_nanos: int = 0
    invalid: Counter[str] = field(default_factory=Counter)

    def add(self, other: Figures) -> None:
        # Written out: Counter.update costs several times more, and pages add thousands.
        counts = self.counts
        for name, n in other.counts.items():
            counts[name] += n
        self.spend_nanos += other.spend_nanos
        if other.invalid:
            invalid = self.invalid
            for reason, n in other.invalid.items():
                invalid[reason] += n

    def as_dict(self, *, delivery_counts: bool) -> dict[str, Any]:
        counts = {c: self.counts[c] for c in COUNTERS}
        if not delivery_counts:
            for name in DELIVERY_COUNTS:
                del counts[name]
        impressions = counts["impressions"]
        return {
            **counts,
            "ctr": _ratio(counts["clicks"], impressions),
            "viewability": _ratio(counts["viewable"], impressions),
            "spend": money(self.spend_nanos),
            "ecpm": None if not impressions else money(_ecpm_nanos(self.spend_nanos, impressions)),
            "invalid": dict(sorted((r, n) for r, n in self.invalid.items() if n)),
        }


def fold(
    rows: Iterable[tuple[tuple[Any, ...], Figures]], key: Callable[[tuple[Any, ...]], Any]
) -> dict[Any, Figures]:
    """The figures of ``rows`` summed per ``key(dimension values)``: coarser groupings of one
    result (pages show several of them), with exactly the sums a query grouped that way gives."""
    folded: dict[Any, Figures] = {}
    for values, figures in rows:
        folded.setdefault(key(values), Figures()).add(figures)
    return folded


@dataclass
class StatsResult:
    query: StatsQuery
    currency: str | None
    #: (dimension values in ``query.by`` order, figures), sorted by the dimensions.
    rows: list[tuple[tuple[Any, ...], Figures]]
    totals: Figures
    #: Labels by dimension and id (site key, slot name, ...).
    labels: dict[str, dict[int, str]]


@dataclass(frozen=True)
class _SiteInfo:
    key: str | None
    zone: ZoneInfo
    currency: str | None


def run_stats(connection: Connection, query: StatsQuery) -> StatsResult:
    """Sum the statistics ``query`` asks for; raises BadQuery for an unknown site or a range
    spanning sites billed in different currencies."""
    sites, figures = _collect(connection, query)
    currencies = {sites[key[0]].currency for key in figures if key[0]} - {None}
    if len(currencies) > 1:
        raise BadQuery(
            f"'site': these figures span sites billed in {', '.join(sorted(map(str, currencies)))}"
            "; ask for one site at a time"
        )
    result = _result(query, next(iter(currencies), None), figures)
    result.labels = _labels(connection, query.by, [key for key, _ in result.rows])
    return result


def run_stats_per_currency(connection: Connection, query: StatsQuery) -> dict[str, StatsResult]:
    """The same sums as :func:`run_stats`, in one pass, split by the currency of each figure's
    site (never added across currencies); figures of no site (forged events) under ""."""
    sites, figures = _collect(connection, query)
    split: dict[str, dict[tuple[Any, ...], Figures]] = {}
    for key, value in figures.items():
        split.setdefault(sites[key[0]].currency or "", {})[key] = value
    results = {c: _result(query, c or None, f) for c, f in sorted(split.items())}
    labels = _labels(connection, query.by, [k for r in results.values() for k, _ in r.rows])
    for result in results.values():
        result.labels = labels
    return results


def _collect(
    connection: Connection, query: StatsQuery
) -> tuple[dict[int, _SiteInfo], dict[tuple[Any, ...], Figures]]:
    """The sites in scope, and the figures per site and asked dimensions."""
    sites = _sites(connection, query.site, query.currency)
    hourly = "hour" in query.by
    # Hours are read over one range spanning every site's days, then each row is kept only
    # within its own site's days: one simple range scan instead of a window per site.
    windows = {site_id: _window(query, site.zone) for site_id, site in sites.items()}
    every_site = query.site is None and query.currency is None
    campaigns = None
    if query.advertiser is not None:
        # The advertiser's campaigns as a list of ids, not a subquery: with a list the planners
        # know how few rows the campaign index gives and take it over a range of every row.
        campaign_ids = select(_CAMPAIGNS.c.id).where(_CAMPAIGNS.c.advertiser_id == query.advertiser)
        campaigns = sorted(int(i) for i in connection.execute(campaign_ids).scalars())

    def within(row: Any) -> bool:
        window = windows.get(int(row.site_id))
        if window is None:  # a site deleted since (read only when no filter names sites)
            return False
        return not hourly or bool(window[0] <= row.hour < window[1])

    figures: dict[tuple[Any, ...], Figures] = {}
    billable = _HOURLY if hourly else _DAILY
    for row in connection.execute(_statement(billable, query, windows, every_site, campaigns)):
        if within(row):
            target = _figures_for(figures, query, sites, row)
            counts = target.counts
            for name, n in zip(COUNTERS, row[_FIRST_SUM:], strict=False):
                if n:
                    counts[name] += int(n)
            target.spend_nanos += int(row.spend_nanos or 0)
    invalid = _INVALID if hourly else _INVALID_DAILY
    for row in connection.execute(_statement(invalid, query, windows, every_site, campaigns)):
        if within(row):
            _figures_for(figures, query, sites, row).invalid[row.reason] += int(row.n or 0)
    return sites, figures


def _result(
    query: StatsQuery, currency: str | None, figures: dict[tuple[Any, ...], Figures]
) -> StatsResult:
    """Figures per site and dimensions folded into rows of the dimensions, and their totals
    (labels are added by the caller)."""
    folded: dict[tuple[Any, ...], Figures] = {}
    totals = Figures()
    for (_site_id, *values), value in figures.items():
        totals.add(value)
        key = tuple(values)
        # The first figures of a key are taken as they are (``figures`` is not used again);
        # only keys that several sites share are added up.
        seen = folded.get(key)
        if seen is None:
            folded[key] = value
        else:
            seen.add(value)
    rows = sorted(folded.items(), key=lambda item: tuple((v is None, v) for v in item[0]))
    return StatsResult(query=query, currency=currency, rows=rows, totals=totals, labels={})


def _sites(connection: Connection, key: str | None, currency: str | None) -> dict[int, _SiteInfo]:
    """The sites in scope by id; without a site or currency filter, also site 0 (events whose
    token was forged belong to no site and are bucketed by UTC hour)."""
    columns = table(Site).c
    statement = select(columns.id, columns.key, columns.timezone, columns.currency)
    if key is not None:
        statement = statement.where(columns.key == key)
    if currency is not None:
        statement = statement.where(columns.currency == currency)
    sites = {
        int(row.id): _SiteInfo(row.key, ZoneInfo(row.timezone), row.currency)
        for row in connection.execute(statement)
    }
    if key is not None and not sites:
        raise BadQuery(f"'site': there is no site {key!r}")
    if key is None and currency is None:
        sites[0] = _SiteInfo(None, UTC_ZONE, None)
    return sites


def _statement(
    stats: Table,
    query: StatsQuery,
    windows: Mapping[int, tuple[int, int]],
    every_site: bool,
    campaigns: list[int] | None,
) -> Any:
    """Sums of ``stats`` per site (and hour or day, and the asked dimensions) over the query's
    days: the daily rows of those days, or the hourly rows from the first site's first hour to
    the last site's last (``run_stats`` keeps each site's own)."""
    c = stats.c
    daily = stats is _DAILY or stats is _INVALID_DAILY
    advertiser = _CAMPAIGNS.c.advertiser_id
    groups: list[Any] = [c.site_id]
    if "hour" in query.by or "day" in query.by:
        groups.append(c.day if daily else c.hour)
    for name in query.by:
        if name in ("slot", "campaign", "creative"):
            groups.append(c[f"{name}_id"])
        elif name == "advertiser":
            groups.append(advertiser)
    if stats is _INVALID or stats is _INVALID_DAILY:
        groups.append(c.reason)
        sums: list[Any] = [func.sum(c["count"]).label("n")]
    else:
        sums = [func.sum(c[n]).label(n) for n in (*COUNTERS, "spend_nanos")]
    source: Any = stats
    if "advertiser" in query.by:
        source = stats.outerjoin(_CAMPAIGNS, _CAMPAIGNS.c.id == c.campaign_id)
    conditions: list[ColumnElement[bool]] = []
    if not every_site:
        conditions.append(c.site_id.in_(sorted(windows)))
    if daily:
        # Days are each site's own local days already: one range for every site.
        conditions += [c.day >= query.start.isoformat(), c.day <= query.end.isoformat()]
    else:
        conditions += [
            c.hour >= min((first for first, _ in windows.values()), default=0),
            c.hour < max((after for _, after in windows.values()), default=0),
        ]
    if campaigns is not None:
        conditions.append(c.campaign_id.in_(campaigns))
    if query.campaign is not None:
        conditions.append(c.campaign_id == query.campaign)
    return select(*groups, *sums).select_from(source).where(*conditions).group_by(*groups)


def _window(query: StatsQuery, zone: ZoneInfo) -> tuple[int, int]:
    """UTC epochs of local midnight starting ``query.start`` and ending ``query.end``."""

    def midnight(day: date) -> int:
        return int(datetime.combine(day, time(0), tzinfo=zone).timestamp())

    return midnight(query.start), midnight(query.end + timedelta(days=1))


def _figures_for(
    figures: dict[tuple[Any, ...], Figures],
    query: StatsQuery,
    sites: Mapping[int, _SiteInfo],
    row: Any,
) -> Figures:
    site = sites[int(row.site_id)]
    values: list[Any] = [int(row.site_id)]
    for name in query.by:
        if name == "hour":
            values.append((int(row.hour), site.zone.key))
        elif name == "day":
            if "hour" in query.by:
                values.append(datetime.fromtimestamp(int(row.hour), site.zone).date())
            else:
                values.append(date.fromisoformat(row.day))
        elif name == "site":
            values.append(int(row.site_id) or None)
        else:
            raw = getattr(row, _ENTITIES[name][1])
            values.append(int(raw) if raw else None)
    return figures.setdefault(tuple(values), Figures())


def _labels(
    connection: Connection, by: Sequence[str], keys: Iterable[tuple[Any, ...]]
) -> dict[str, dict[int, str]]:
    keys = list(keys)
    labels: dict[str, dict[int, str]] = {}
    for position, name in enumerate(by):
        if name not in _ENTITIES:
            continue
        entity, _, label = _ENTITIES[name]
        ids = sorted({key[position] for key in keys if key[position] is not None})
        labels[name] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            statement = select(entity.c.id, entity.c[label]).where(entity.c.id.in_(chunk))
            labels[name].update({int(i): str(v) for i, v in connection.execute(statement)})
    return labels


def _ecpm_nanos(spend_nanos: int, impressions: int) -> int:
    """Spend per 1,000 impressions, rounded to whole micro-units (as nanos)."""
    micros = (Decimal(spend_nanos) / impressions).quantize(Decimal(1), ROUND_HALF_EVEN)
    return int(micros) * 1000


def _ratio(part: int, whole: int) -> float | None:
    return None if not whole else round(part / whole, 6)


# -- output -------------------------------------------------------------------------------


def _dimension_fields(result: StatsResult, key: tuple[Any, ...]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name, value in zip(result.query.by, key, strict=True):
        if name == "hour":
            epoch, zone = value
            fields["hour"] = datetime.fromtimestamp(epoch, ZoneInfo(zone)).isoformat()
        elif name == "day":
            fields["day"] = value.isoformat()
        elif name == "site":
            fields["site"] = None if value is None else result.labels["site"].get(value)
        else:
            fields[name] = value
            fields[f"{name}_name"] = None if value is None else result.labels[name].get(value)
    return fields


def as_json(result: StatsResult, *, delivery_counts: bool) -> dict[str, Any]:
    """The /v1/stats JSON document (see docs/api.md)."""
    query = result.query
    return {
        "from": query.start.isoformat(),
        "to": query.end.isoformat(),
        "by": list(query.by),
        "currency": result.currency,
        "rows": [
            {
                **_dimension_fields(result, key),
                **figures.as_dict(delivery_counts=delivery_counts),
            }
            for key, figures in result.rows
        ],
        "totals": result.totals.as_dict(delivery_counts=delivery_counts),
    }


def as_csv(result: StatsResult, *, delivery_counts: bool) -> str:
    """One header row, then one row per result row; invalid counts get a column per reason."""
    document = as_json(result, delivery_counts=delivery_counts)
    reasons = list(INVALID_REASONS)
    reasons += sorted({r for row in document["rows"] for r in row["invalid"]} - set(reasons))
    dimensions: list[str] = []
    for name in result.query.by:
        dimensions += [name] if name in ("hour", "day", "site") else [name, f"{name}_name"]
    figures = [n for n in document["totals"] if n != "invalid"]
    header = [*dimensions, *figures, "currency"]
    header += [f"invalid_{r.replace('-', '_')}" for r in reasons]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    for row in document["rows"]:
        writer.writerow(
            [
                *(_cell(row[n]) for n in [*dimensions, *figures]),
                result.currency or "",
                *(row["invalid"].get(r, 0) for r in reasons),
            ]
        )
    return out.getvalue()


def _cell(value: Any) -> Any:
    """A CSV cell; text that a spreadsheet would run as a formula is quoted with ``'``."""
    if value is None:
        return ""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value

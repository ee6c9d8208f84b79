"""The advertiser's dashboard: top line, chart and breakdowns for a period, from ``run_stats``.

Every figure comes from :func:`adserver.reporting.stats.run_stats`, the function behind
``/v1/stats``: one query per currency over the period and the one before it, grouped by day,
site, slot, campaign and creative, then folded here into the top line and the tables (hours are
asked for apart, only for the chart of a one- or two-day period). Money is never added across
currencies: each gets its own columns.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, select

from adserver.core.clock import UTC_ZONE, flight_instant
from adserver.core.models import (
    Advertiser,
    Campaign,
    CampaignDelivery,
    CampaignSlot,
    Creative,
    Site,
    Slot,
    table,
)
from adserver.delivery.render import asset_url
from adserver.reporting import charts
from adserver.reporting.periods import Period, period_from_params
from adserver.reporting.stats import (
    Figures,
    StatsQuery,
    fold,
    run_stats_per_currency,
)
from adserver.reporting.tables import Column, Table, percent

BY = ("day", "site", "slot", "campaign", "creative")
_DAY, _SITE, _SLOT, _CAMPAIGN, _CREATIVE = range(len(BY))
#: A campaign below this share of its expected delivery is behind its pace.
BEHIND_PACE = Decimal("0.9")

_SITES, _SLOTS, _CAMPAIGNS = table(Site), table(Slot), table(Campaign)
_LINKS, _CREATIVES = table(CampaignSlot), table(Creative)


class NotFound(LookupError):
    """No such advertiser or campaign (or not one the caller may see)."""


@dataclass(frozen=True)
class Headline:
    """One top-line figure against the previous period."""

    key: str
    label: str
    kind: str
    value: Any
    previous: Any
    #: Relative change (0.25 = +25 %); None when the previous period had nothing to compare.
    change: float | None
    currency: str | None = None


@dataclass
class Scope:
    """Whose figures: an advertiser's campaigns, or one campaign of it."""

    advertiser_id: int
    advertiser_name: str
    campaign_id: int | None
    campaigns: dict[int, Any]
    creatives: dict[int, Any]
    zone: ZoneInfo
    #: The currencies of the sites its campaigns run on.
    currencies: list[str]
    #: The sizes of the slots its campaigns are booked on (what a new creative may have).
    sizes: list[str] = field(default_factory=list)


@dataclass
class Dashboard:
    scope: Scope
    period: Period
    previous: Period
    today: date
    currencies: list[str]
    headlines: list[Headline]
    chart: charts.LineChart
    #: The same chart drawn for a phone's width.
    narrow_chart: charts.LineChart
    chart_table: Table
    tables: dict[str, Table] = field(default_factory=dict)


def load_scope(
    connection: Connection, *, advertiser_id: int | None = None, campaign_id: int | None = None
) -> Scope:
    """The advertiser (and campaign) a dashboard shows; NotFound for an unknown id, and for a
    campaign of another advertiser than ``advertiser_id`` when both are given."""
    campaigns = _CAMPAIGNS.c
    if campaign_id is not None:
        owner = connection.execute(
            select(campaigns.advertiser_id).where(campaigns.id == campaign_id)
        ).scalar()
        if owner is None or (advertiser_id is not None and owner != advertiser_id):
            raise NotFound(f"there is no campaign {campaign_id}")
        advertiser_id = int(owner)
    advertisers = table(Advertiser).c
    name = connection.execute(
        select(advertisers.name).where(advertisers.id == advertiser_id)
    ).scalar()
    if advertiser_id is None or name is None:
        raise NotFound(f"there is no advertiser {advertiser_id}")
    statement = select(_CAMPAIGNS).where(campaigns.advertiser_id == advertiser_id)
    if campaign_id is not None:
        statement = statement.where(campaigns.id == campaign_id)
    rows = {int(row.id): row for row in connection.execute(statement.order_by(campaigns.id))}
    creatives = {
        int(row.id): row
        for row in connection.execute(
            # Never the image itself (up to 300 KB each): only whether there is one.
            select(*(c for c in _CREATIVES.c if c.name != "image"))
            .where(_CREATIVES.c.campaign_id.in_(sorted(rows)))
            .order_by(_CREATIVES.c.id)
        )
    }
    sites = connection.execute(
        select(_SITES.c.id, _SITES.c.timezone, _SITES.c.currency)
        .select_from(_SITES.join(_SLOTS, _SLOTS.c.site_id == _SITES.c.id))
        .join(_LINKS, _LINKS.c.slot_id == _SLOTS.c.id)
        .where(_LINKS.c.campaign_id.in_(sorted(rows)))
        .distinct()
        .order_by(_SITES.c.id)
    ).all()
    if not sites:
        sites = connection.execute(
            select(_SITES.c.id, _SITES.c.timezone, _SITES.c.currency).order_by(_SITES.c.id)
        ).all()
    zone = ZoneInfo(sites[0].timezone) if sites else UTC_ZONE
    sizes = {
        size
        for (slot_sizes,) in connection.execute(
            select(_SLOTS.c.sizes)
            .join(_LINKS, _LINKS.c.slot_id == _SLOTS.c.id)
            .where(_LINKS.c.campaign_id.in_(sorted(rows)))
        )
        for size in slot_sizes
        if size != "fluid"
    }
    return Scope(
        advertiser_id=int(advertiser_id),
        advertiser_name=str(name),
        campaign_id=campaign_id,
        campaigns=rows,
        creatives=creatives,
        zone=zone,
        currencies=sorted({str(s.currency) for s in sites}),
        sizes=sorted(sizes, key=lambda size: [int(n) for n in size.split("x")]),
    )


def build_dashboard(
    connection: Connection, scope: Scope, params: Mapping[str, str], *, now: datetime
) -> Dashboard:
    """The dashboard of ``scope`` for the period ``params`` ask for (BadQuery if malformed)."""
    today = now.astimezone(scope.zone).date()
    period = period_from_params(params, today)
    previous = period.previous()
    # Two questions, each summed by the database: every day of both periods, and every place
    # (site, slot, campaign, creative) of this one. The top line, the chart and the tables are
    # folded from those few rows.
    by_day = run_stats_per_currency(connection, _query(scope, previous.start, period.end, ("day",)))
    by_place = run_stats_per_currency(
        connection, _query(scope, period.start, period.end, BY[_SITE:])
    )
    currencies = sorted((set(by_day) | set(by_place) | set(scope.currencies)) - {""})
    labels: dict[str, dict[int, str]] = {}
    for result in by_place.values():
        for name, values in result.labels.items():
            labels.setdefault(name, {}).update(values)
    days = {c: {k[0]: f for k, f in by_day[c].rows} if c in by_day else {} for c in currencies}

    def on_days(p: Period) -> dict[str, list[tuple[tuple[Any, ...], Figures]]]:
        return {
            c: [((d,), f) for d, f in in_currency.items() if p.start <= d <= p.end]
            for c, in_currency in days.items()
        }

    places = {
        c: [((None, *key), figures) for key, figures in by_place[c].rows] if c in by_place else []
        for c in currencies
    }
    now_rows, before_rows = on_days(period), on_days(previous)
    dashboard = Dashboard(
        scope=scope,
        period=period,
        previous=previous,
        today=today,
        currencies=currencies,
        headlines=_headlines(now_rows, before_rows, currencies),
        chart=charts.line_chart("Impressions", [], [], []),
        narrow_chart=charts.line_chart("Impressions", [], [], []),
        chart_table=Table("chart", "Impressions over time", []),
    )
    if period.hourly:
        _hourly_chart(connection, dashboard)
    else:
        _daily_chart(dashboard, now_rows, before_rows)
    lifetime = _lifetime(connection, scope)
    dashboard.tables = {
        "campaigns": _campaign_table(scope, places, currencies, lifetime, now),
        "slots": _slot_table(places, currencies, labels),
        "creatives": _creative_table(scope, places, currencies),
        "days": _day_table(period, now_rows, currencies),
    }
    return dashboard


def _query(scope: Scope, start: date, end: date, by: tuple[str, ...]) -> StatsQuery:
    return StatsQuery(
        start=start, end=end, by=by, advertiser=scope.advertiser_id, campaign=scope.campaign_id
    )


# -- top line -----------------------------------------------------------------------------


def _total(rows: Mapping[str, list[tuple[tuple[Any, ...], Figures]]]) -> dict[str, Figures]:
    """Figures per currency, and under "" the counts of all currencies together (counts may be
    added up, money may not)."""
    totals = {c: fold(r, lambda _: None).get(None, Figures()) for c, r in rows.items()}
    together = Figures()
    for figures in totals.values():
        together.add(figures)
    return {"": together, **totals}


def _headlines(
    now_rows: Mapping[str, list[tuple[tuple[Any, ...], Figures]]],
    before_rows: Mapping[str, list[tuple[tuple[Any, ...], Figures]]],
    currencies: list[str],
) -> list[Headline]:
    now, before = _total(now_rows), _total(before_rows)
    current = now[""].as_dict(delivery_counts=False)
    past = before[""].as_dict(delivery_counts=False)
    lines = [
        _headline("impressions", "Impressions", "count", current, past),
        _headline("viewability", "Viewable rate", "percent", current, past),
        _headline("clicks", "Clicks", "count", current, past),
        _headline("ctr", "CTR", "percent", current, past),
    ]
    for currency in currencies:
        here = now[currency].as_dict(delivery_counts=False)
        there = before[currency].as_dict(delivery_counts=False)
        lines.append(_headline("spend", "Spend", "money", here, there, currency))
        lines.append(_headline("ecpm", "eCPM", "money", here, there, currency))
    return lines


def _headline(
    key: str,
    label: str,
    kind: str,
    current: Mapping[str, Any],
    past: Mapping[str, Any],
    currency: str | None = None,
) -> Headline:
    value, previous = current[key], past[key]
    if kind == "percent":
        value, previous = percent(value), percent(previous)
    return Headline(key, label, kind, value, previous, _change(value, previous), currency)


def _change(value: Any, previous: Any) -> float | None:
    if value is None or previous is None or Decimal(previous) == 0:
        return None
    return float((Decimal(value) - Decimal(previous)) / Decimal(previous))


# -- chart --------------------------------------------------------------------------------


def _daily_chart(
    dashboard: Dashboard,
    now_rows: Mapping[str, list[tuple[tuple[Any, ...], Figures]]],
    before_rows: Mapping[str, list[tuple[tuple[Any, ...], Figures]]],
) -> None:
    period, previous = dashboard.period, dashboard.previous
    current = _counts_by(now_rows, lambda k: k[_DAY])
    past = _counts_by(before_rows, lambda k: k[_DAY])
    days, earlier = period.each_day(), previous.each_day()
    _set_chart(
        dashboard,
        labels=[d.strftime("%b %-d") for d in days],
        names=[d.isoformat() for d in days],
        previous_names=[d.isoformat() for d in earlier],
        current=[current.get(d, Figures()) for d in days],
        past=[past.get(d, Figures()) for d in earlier],
        unit="Day",
    )


def _hourly_chart(connection: Connection, dashboard: Dashboard) -> None:
    """Per hour of the dashboard's zone (sites in other zones fall into the hour that holds
    theirs)."""
    scope, period, previous = dashboard.scope, dashboard.period, dashboard.previous
    zone = scope.zone
    first = int(datetime.combine(previous.start, time(0), tzinfo=zone).timestamp())
    middle = int(datetime.combine(period.start, time(0), tzinfo=zone).timestamp())
    after = int(datetime.combine(period.end + timedelta(days=1), time(0), tzinfo=zone).timestamp())
    buckets: dict[int, Figures] = {}
    query = _query(scope, previous.start, period.end, ("hour",))
    for result in run_stats_per_currency(connection, query).values():
        for (hour,), figures in result.rows:
            buckets.setdefault(_hour_start(int(hour[0]), zone), Figures()).add(figures)
    hours = _hours(middle, after, zone)
    earlier = _hours(first, middle, zone)
    # Summer time can make the two periods a few hours apart in length: pad the shorter one.
    earlier = (earlier + [-1] * len(hours))[: len(hours)]
    _set_chart(
        dashboard,
        labels=[_hour_label(h, zone, len(hours) > 24) for h in hours],
        names=[_hour_name(h, zone) for h in hours],
        previous_names=[_hour_name(h, zone) if h >= 0 else "" for h in earlier],
        current=[buckets.get(h, Figures()) for h in hours],
        past=[buckets.get(h, Figures()) for h in earlier],
        unit="Hour",
    )


def _hour_start(epoch: int, zone: ZoneInfo) -> int:
    local = datetime.fromtimestamp(epoch, UTC).astimezone(zone)
    return int(local.replace(minute=0, second=0).timestamp())


def _hours(first: int, after: int, zone: ZoneInfo) -> list[int]:
    hours, at = [], first
    while at < after:
        hours.append(_hour_start(at, zone))
        at += 3600
    return sorted(set(hours))


def _hour_name(epoch: int, zone: ZoneInfo) -> str:
    """A local hour with its offset, as a table cell: 2026-03-29 02:00+01:00."""
    return datetime.fromtimestamp(epoch, zone).isoformat(timespec="minutes").replace("T", " ")


def _hour_label(epoch: int, zone: ZoneInfo, with_day: bool) -> str:
    local = datetime.fromtimestamp(epoch, zone)
    return local.strftime("%a %H:00" if with_day else "%H:00")


def _set_chart(
    dashboard: Dashboard,
    *,
    labels: list[str],
    names: list[str],
    previous_names: list[str],
    current: list[Figures],
    past: list[Figures],
    unit: str,
) -> None:
    values = [f.counts["impressions"] for f in current]
    before = [f.counts["impressions"] for f in past]
    dashboard.chart = charts.line_chart("Impressions", labels, values, before)
    dashboard.narrow_chart = charts.line_chart(
        "Impressions",
        labels,
        values,
        before,
        width=charts.NARROW_WIDTH,
        height=charts.NARROW_HEIGHT,
        max_labels=charts.NARROW_LABELS,
    )
    dashboard.chart_table = Table(
        "chart",
        f"Impressions by {unit.lower()}",
        [
            Column("time", unit),
            Column("impressions", "Impressions", "count"),
            Column("clicks", "Clicks", "count"),
            Column("previous_time", f"Previous {unit.lower()}"),
            Column("previous_impressions", "Previous impressions", "count"),
        ],
        [
            {
                "time": name,
                "impressions": now.counts["impressions"],
                "clicks": now.counts["clicks"],
                "previous_time": before_name,
                "previous_impressions": before.counts["impressions"],
            }
            for name, before_name, now, before in zip(
                names, previous_names, current, past, strict=True
            )
        ],
    )


def _counts_by(
    rows: Mapping[str, list[tuple[tuple[Any, ...], Figures]]], key: Any
) -> dict[Any, Figures]:
    """Figures of every currency per ``key`` (counts only are meant to be read from them)."""
    merged: dict[Any, Figures] = {}
    for currency_rows in rows.values():
        for group, figures in fold(currency_rows, key).items():
            merged.setdefault(group, Figures()).add(figures)
    return merged


# -- tables -------------------------------------------------------------------------------


def figure_columns(currencies: list[str]) -> list[Column]:
    columns = [
        Column("impressions", "Impressions", "count"),
        Column("viewability", "Viewable rate", "percent"),
        Column("clicks", "Clicks", "count"),
        Column("ctr", "CTR", "percent"),
    ]
    for currency in currencies:
        columns.append(Column(f"spend_{currency}", f"Spend ({currency})", "money", currency))
        columns.append(Column(f"ecpm_{currency}", f"eCPM ({currency})", "money", currency))
    return columns


def figure_cells(by_currency: Mapping[str, Figures]) -> dict[str, Any]:
    """A row's figures: counts and rates over every currency, money per currency."""
    together = Figures()
    for figures in by_currency.values():
        together.add(figures)
    shown = together.as_dict(delivery_counts=False)
    cells: dict[str, Any] = {
        "impressions": shown["impressions"],
        "viewability": percent(shown["viewability"]),
        "clicks": shown["clicks"],
        "ctr": percent(shown["ctr"]),
    }
    for currency, figures in by_currency.items():
        money = figures.as_dict(delivery_counts=False)
        cells[f"spend_{currency}"] = money["spend"]
        cells[f"ecpm_{currency}"] = money["ecpm"]
    return cells


def _grouped(
    rows: Mapping[str, list[tuple[tuple[Any, ...], Figures]]], key: Any
) -> dict[Any, dict[str, Figures]]:
    """Per ``key``, the figures of each currency that has some."""
    grouped: dict[Any, dict[str, Figures]] = {}
    for currency, currency_rows in rows.items():
        for group, figures in fold(currency_rows, key).items():
            grouped.setdefault(group, {})[currency] = figures
    return grouped


def _lifetime(connection: Connection, scope: Scope) -> dict[int, Figures]:
    """Each campaign's delivery so far, as the decision engine paces it (``campaign_delivery``,
    refreshed from the statistics by the pacing job every minute)."""
    delivery = table(CampaignDelivery)
    lifetime: dict[int, Figures] = {}
    for row in connection.execute(
        select(delivery).where(delivery.c.campaign_id.in_(sorted(scope.campaigns)))
    ):
        figures = Figures(spend_nanos=int(row.spend_nanos))
        figures.counts.update(impressions=int(row.impressions), clicks=int(row.clicks))
        lifetime[int(row.campaign_id)] = figures
    return lifetime


@dataclass(frozen=True)
class Pace:
    """Delivery against a goal: ``expected`` is what an even pace would have delivered by now."""

    goal: int
    kind: str
    delivered: int
    expected: int | None
    #: delivered / expected, as a percentage with two decimals.
    pace: Decimal | None
    days_left: int | None

    @property
    def behind(self) -> bool:
        return self.pace is not None and self.pace < BEHIND_PACE * 100


def pace_of(campaign: Any, delivered: Figures, now: datetime, zone: ZoneInfo) -> Pace | None:
    """A campaign's pace (the Google Ad Manager way: delivered against the share of its goal
    due by now, flight times in the site's wall clock); None without a total goal."""
    days_left = _days_left(campaign, now, zone)
    if not campaign.goal_total:
        return None
    kind = campaign.goal_kind or "impressions"
    count = delivered.counts["clicks" if kind == "clicks" else "impressions"]
    expected: int | None = None
    pace: Decimal | None = None
    start, end = flight(campaign, zone)
    if start is not None and end is not None:
        at = now.timestamp()
        if end > start and at > start:
            elapsed = min(1.0, (at - start) / (end - start))
            expected = round(campaign.goal_total * elapsed)
            if expected:
                pace = percent(round(count / expected, 6))
    return Pace(campaign.goal_total, kind, count, expected, pace, days_left)


def flight(campaign: Any, zone: ZoneInfo) -> tuple[float | None, float | None]:
    """A campaign's start and end as UNIX times on a site in ``zone``."""
    return (
        flight_instant(campaign.starts_at, campaign.starts_offset, zone),
        flight_instant(campaign.ends_at, campaign.ends_offset, zone),
    )


def _days_left(campaign: Any, now: datetime, zone: ZoneInfo) -> int | None:
    end = flight(campaign, zone)[1]
    if end is None:
        return None
    return max(0, -(-int(end - now.timestamp()) // 86400))


def _campaign_table(
    scope: Scope,
    rows: Mapping[str, list[tuple[tuple[Any, ...], Figures]]],
    currencies: list[str],
    lifetime: dict[int, Figures],
    now: datetime,
) -> Table:
    grouped = _grouped(rows, lambda k: k[_CAMPAIGN])
    table_rows = []
    for campaign_id, campaign in scope.campaigns.items():
        if campaign.status == "archived" and campaign_id not in grouped:
            continue
        pace = pace_of(campaign, lifetime.get(campaign_id, Figures()), now, scope.zone)
        table_rows.append(
            {
                "id": campaign_id,
                "campaign": campaign.name,
                "status": campaign.status,
                **figure_cells(grouped.get(campaign_id, {})),
                "goal": None if pace is None else f"{pace.goal:,} {pace.kind}",
                "delivered": None if pace is None else pace.delivered,
                "pace": None if pace is None else pace.pace,
                "days_left": _days_left(campaign, now, scope.zone),
            }
        )
    return Table(
        "campaigns",
        "By campaign",
        [
            Column("campaign", "Campaign"),
            Column("status", "Status"),
            *figure_columns(currencies),
            Column("goal", "Goal"),
            Column("delivered", "Delivered to date", "count"),
            Column("pace", "Pace", "percent"),
            Column("days_left", "Days left", "count"),
        ],
        table_rows,
    )


def _slot_table(
    rows: Mapping[str, list[tuple[tuple[Any, ...], Figures]]],
    currencies: list[str],
    labels: dict[str, dict[int, str]],
) -> Table:
    grouped = _grouped(rows, lambda k: (k[_SITE], k[_SLOT]))
    table_rows = [
        {
            "site": labels.get("site", {}).get(site) if site else None,
            "slot": labels.get("slot", {}).get(slot) if slot else None,
            **figure_cells(figures),
        }
        for (site, slot), figures in sorted(grouped.items(), key=lambda item: _sort_key(item[0]))
    ]
    return Table(
        "slots",
        "By slot",
        [Column("site", "Site"), Column("slot", "Slot"), *figure_columns(currencies)],
        table_rows,
    )


def _creative_table(
    scope: Scope, rows: Mapping[str, list[tuple[tuple[Any, ...], Figures]]], currencies: list[str]
) -> Table:
    grouped = _grouped(rows, lambda k: k[_CREATIVE])
    table_rows = []
    for creative_id, creative in scope.creatives.items():
        if creative.status == "archived" and creative_id not in grouped:
            continue
        campaign = scope.campaigns.get(int(creative.campaign_id))
        version = int(creative.updated_at.timestamp()) if creative.updated_at else 0
        table_rows.append(
            {
                "id": creative_id,
                "thumbnail": asset_url("", creative_id, version) if creative.image_type else None,
                "creative": creative.name,
                #: Shown instead of a thumbnail for a creative without an image.
                "kind": {"html": "HTML", "text": "text"}.get(creative.kind, creative.kind),
                "campaign": campaign.name if campaign is not None else None,
                "size": f"{creative.width}x{creative.height}"
                if creative.width and creative.height
                else "fluid",
                "status": creative.status,
                "review_note": creative.review_note,
                **figure_cells(grouped.get(creative_id, {})),
            }
        )
    return Table(
        "creatives",
        "By creative",
        [
            Column("thumbnail", "Preview", "image"),
            Column("creative", "Creative"),
            Column("campaign", "Campaign"),
            Column("size", "Size"),
            Column("status", "Status"),
            *figure_columns(currencies),
        ],
        table_rows,
    )


def _day_table(
    period: Period, rows: Mapping[str, list[tuple[tuple[Any, ...], Figures]]], currencies: list[str]
) -> Table:
    grouped = _grouped(rows, lambda k: k[_DAY])
    return Table(
        "days",
        "By day",
        [Column("day", "Day"), *figure_columns(currencies)],
        [{"day": d.isoformat(), **figure_cells(grouped.get(d, {}))} for d in period.each_day()],
    )


def _sort_key(values: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple((v is None, v or 0) for v in values)


def dashboard_for(
    connection: Connection,
    *,
    params: Mapping[str, str],
    now: datetime,
    advertiser_id: int | None = None,
    campaign_id: int | None = None,
) -> Dashboard:
    """The dashboard of an advertiser, or of one campaign (of ``advertiser_id`` when given),
    for the period ``params`` ask for: NotFound or BadQuery when it cannot be shown."""
    scope = load_scope(connection, advertiser_id=advertiser_id, campaign_id=campaign_id)
    return build_dashboard(connection, scope, params, now=now)


def advertiser_choices(connection: Connection) -> list[tuple[int, str]]:
    """Every advertiser by name, for an admin choosing whose dashboard to open."""
    advertisers = table(Advertiser).c
    rows = connection.execute(
        select(advertisers.id, advertisers.name).order_by(advertisers.name, advertisers.id)
    )
    return [(int(row.id), str(row.name)) for row in rows]

"""The figures of a report, from ``run_stats``: the same function, and so the same numbers, as
``/v1/stats`` for the same period and advertiser.

Money in different currencies is never added up: when an advertiser's campaigns run on sites
billed in different currencies, the report has one section per currency (each exactly
``/v1/stats?currency=C&advertiser=ID``); otherwise a single section covers every site, exactly
``/v1/stats?advertiser=ID``. The publisher's summary has a section per site.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select

from adserver.core.models import (
    Advertiser,
    Campaign,
    CampaignSlot,
    Outbox,
    Site,
    Slot,
    table,
)
from adserver.reporting.report_pacing import CampaignStanding, campaign_standings
from adserver.reporting.report_periods import Period
from adserver.reporting.stats import (
    BadQuery,
    Figures,
    StatsQuery,
    StatsResult,
    as_csv,
    as_json,
    run_stats,
)

#: The top-line figures, each shown against the previous period.
TOP_LINE = ("impressions", "viewability", "clicks", "ctr", "spend", "ecpm")
#: By default a campaign is behind pace when it is short of what even delivery would have
#: reached by more than this share (``ADSERVER_PACE_MARGIN``).
BEHIND_MARGIN = 0.2
ENDING_SOON_DAYS = 7


@dataclass
class Section:
    """The figures of one scope: every site, the sites of one currency, or one site."""

    site: str | None
    site_name: str | None
    currency: str | None
    #: Set when the section is one currency of several (the advertiser's report).
    split_by_currency: bool
    totals: dict[str, Any]
    previous: dict[str, Any]
    days: list[dict[str, Any]]
    campaigns: list[dict[str, Any]]
    slots: list[dict[str, Any]]
    creatives: list[dict[str, Any]]
    csv: str
    #: Rows per local hour, for a one-day period's chart.
    hours: list[dict[str, Any]] = field(default_factory=list)

    @property
    def invalid_share(self) -> float | None:
        """Invalid impressions as a share of all impressions (valid and invalid)."""
        invalid = _invalid(self.totals)
        whole = int(self.totals["impressions"]) + invalid
        return None if not whole else invalid / whole


def _invalid(totals: dict[str, Any]) -> int:
    return int(totals.get("invalid_impressions", 0))


@dataclass
class ReportContent:
    """Everything a report shows; rendered to HTML, text and CSV by ``report_render``."""

    kind: str  # "advertiser" or "publisher"
    title: str
    period: Period
    publisher: str
    logo_url: str | None
    dashboard_url: str
    generated_at: datetime
    sections: list[Section]
    advertiser_id: int | None = None
    advertiser_name: str | None = None
    #: (label, impressions, clicks) per day (or per hour for a one-day report), for the chart.
    series: list[tuple[str, int, int]] = field(default_factory=list)
    #: The publisher's summary only.
    behind: list[CampaignStanding] = field(default_factory=list)
    ending: list[CampaignStanding] = field(default_factory=list)
    stuck: list[CampaignStanding] = field(default_factory=list)
    failed_mail: list[dict[str, Any]] = field(default_factory=list)

    @property
    def csv(self) -> str:
        if not self.sections:
            return ""
        if len(self.sections) == 1:
            return self.sections[0].csv
        header, *_ = self.sections[0].csv.splitlines(keepends=True)
        return header + "".join("".join(s.csv.splitlines(keepends=True)[1:]) for s in self.sections)


def _query(period: Period, by: tuple[str, ...], **filters: Any) -> StatsQuery:
    return StatsQuery(start=period.start, end=period.end, by=by, **filters)


def _currencies(connection: Connection, advertiser_id: int) -> list[str]:
    """The currencies of the sites the advertiser's campaigns are assigned to."""
    sites, slots, links, campaigns = table(Site), table(Slot), table(CampaignSlot), table(Campaign)
    return sorted(
        str(c)
        for c in connection.execute(
            select(sites.c.currency)
            .distinct()
            .join(slots, slots.c.site_id == sites.c.id)
            .join(links, links.c.slot_id == slots.c.id)
            .join(campaigns, campaigns.c.id == links.c.campaign_id)
            .where(campaigns.c.advertiser_id == advertiser_id)
        ).scalars()
    )


def _section(
    connection: Connection,
    period: Period,
    site: str | None,
    site_name: str | None,
    *,
    delivery_counts: bool,
    standings: dict[int, CampaignStanding],
    currency: str | None = None,
    keep_empty: bool = False,
    **filters: Any,
) -> Section | None:
    def query(by: tuple[str, ...], when: Period = period) -> StatsQuery:
        return _query(when, by, site=site, currency=currency, **filters)

    def document(result: StatsResult) -> dict[str, Any]:
        return as_json(result, delivery_counts=delivery_counts)

    # One call for every table: its rows are folded into each table's grouping below, exactly
    # as run_stats folds rows itself, so each table equals /v1/stats?by=THAT for the period.
    tables = ("campaign", "slot") if delivery_counts else ("campaign", "slot", "creative")
    full = run_stats(connection, query(("day", *tables)))
    by_day = project(full, ("day",))
    days = document(by_day)
    if (site is not None or currency is not None) and not days["rows"] and not keep_empty:
        return None  # a site, or a currency, with nothing in this period
    campaigns = document(project(full, ("campaign",)))["rows"]
    for row in campaigns:
        row["standing"] = standings.get(row["campaign"])
    previous = run_stats(connection, query((), period.previous()))
    return Section(
        site=site,
        site_name=site_name,
        currency=days["currency"] or currency,
        split_by_currency=currency is not None,
        totals=days["totals"],
        previous=document(previous)["totals"],
        days=days["rows"],
        campaigns=campaigns,
        slots=document(project(full, ("slot",)))["rows"],
        creatives=document(project(full, ("creative",)))["rows"] if not delivery_counts else [],
        csv=as_csv(by_day, delivery_counts=delivery_counts),
        hours=document(run_stats(connection, query(("hour",))))["rows"]
        if period.kind == "day"
        else [],
    )


def project(result: StatsResult, by: tuple[str, ...]) -> StatsResult:
    """``result`` grouped by fewer of its dimensions, rows folded and ordered as ``run_stats``
    folds and orders them."""
    positions = [result.query.by.index(name) for name in by]
    folded: dict[tuple[Any, ...], Figures] = {}
    for key, figures in result.rows:
        folded.setdefault(tuple(key[p] for p in positions), Figures()).add(figures)
    rows = sorted(folded.items(), key=lambda item: tuple((v is None, v) for v in item[0]))
    return StatsResult(
        query=replace(result.query, by=by),
        currency=result.currency,
        rows=rows,
        totals=result.totals,
        labels={name: result.labels[name] for name in by if name in result.labels},
    )


def default_timezone(connection: Connection, advertiser_id: int | None) -> str:
    """The zone of the advertiser's first site (by id), else of the first site, else UTC."""
    sites, slots, links, campaigns = table(Site), table(Slot), table(CampaignSlot), table(Campaign)
    first = select(sites.c.timezone).order_by(sites.c.id).limit(1)
    if advertiser_id is not None:
        zone = connection.execute(
            first.join(slots, slots.c.site_id == sites.c.id)
            .join(links, links.c.slot_id == slots.c.id)
            .join(campaigns, campaigns.c.id == links.c.campaign_id)
            .where(campaigns.c.advertiser_id == advertiser_id)
        ).scalar()
        if zone:
            return str(zone)
    return str(connection.execute(first).scalar() or "UTC")


def _all_sites(connection: Connection) -> list[Any]:
    sites = table(Site)
    return list(
        connection.execute(select(sites.c.key, sites.c.name, sites.c.currency).order_by(sites.c.id))
    )


def _publisher(connection: Connection, advertiser_id: int | None) -> tuple[str, str | None]:
    """The publisher's name and logo: the advertiser's first site (else the first site)."""
    sites, slots, links = table(Site), table(Slot), table(CampaignSlot)
    statement = select(sites.c.name, sites.c.logo_url).order_by(sites.c.id).limit(1)
    if advertiser_id is not None:
        campaigns = table(Campaign)
        first = connection.execute(
            statement.join(slots, slots.c.site_id == sites.c.id)
            .join(links, links.c.slot_id == slots.c.id)
            .join(campaigns, campaigns.c.id == links.c.campaign_id)
            .where(campaigns.c.advertiser_id == advertiser_id)
        ).first()
        if first is not None:
            return first.name, first.logo_url
    row = connection.execute(statement).first()
    return (row.name, row.logo_url) if row is not None else ("adserver", None)


def _series(sections: list[Section], period: Period) -> list[tuple[str, int, int]]:
    """Impressions and clicks per day of the period (per local hour of a one-day period),
    across sections: counts, never money."""
    if period.kind == "day":
        totals = {f"{hour:02d}:00": [0, 0] for hour in range(24)}
        rows = [(row["hour"][11:16], row) for s in sections for row in s.hours]
    else:
        totals = {day.isoformat(): [0, 0] for day in period.days}
        rows = [(row["day"], row) for s in sections for row in s.days]
    for label, row in rows:
        pair = totals.setdefault(label, [0, 0])
        pair[0] += int(row["impressions"])
        pair[1] += int(row["clicks"])
    return [(label, pair[0], pair[1]) for label, pair in sorted(totals.items())]


def build_advertiser_report(
    connection: Connection,
    *,
    advertiser_id: int,
    period: Period,
    now: datetime,
    base_url: str,
) -> ReportContent:
    """The advertiser's report for ``period``; raises LookupError for an unknown advertiser."""
    advertisers = table(Advertiser)
    advertiser = connection.execute(
        select(advertisers.c.name).where(advertisers.c.id == advertiser_id)
    ).first()
    if advertiser is None:
        raise LookupError(f"there is no advertiser {advertiser_id}")
    standings = {
        s.id: s for s in campaign_standings(connection, now=now, advertiser_id=advertiser_id)
    }

    def section(currency: str | None, keep_empty: bool = False) -> Section | None:
        return _section(
            connection,
            period,
            None,
            None,
            delivery_counts=False,
            standings=standings,
            currency=currency,
            keep_empty=keep_empty,
            advertiser=advertiser_id,
        )

    currencies = _currencies(connection, advertiser_id)
    one = None
    if len(currencies) <= 1:
        try:
            one = section(None)
        except BadQuery:  # figures on a site the campaigns have since left, in another currency
            currencies = sorted({str(row.currency) for row in _all_sites(connection)})
    if one is not None:
        sections = [one]
    else:
        sections = [s for c in currencies if (s := section(c)) is not None]
        if not sections:  # nothing anywhere: one empty section still says so, with a CSV header
            sections = [s for s in [section(currencies[0], keep_empty=True)] if s is not None]
    publisher, logo = _publisher(connection, advertiser_id)
    return ReportContent(
        kind="advertiser",
        title=f"{advertiser.name}: {period.label}",
        period=period,
        publisher=publisher,
        logo_url=logo,
        dashboard_url=f"{base_url}/dashboard",
        generated_at=now,
        sections=sections,
        advertiser_id=advertiser_id,
        advertiser_name=advertiser.name,
        series=_series(sections, period),
    )


def build_publisher_summary(
    connection: Connection,
    *,
    period: Period,
    now: datetime,
    base_url: str,
    behind_margin: float = BEHIND_MARGIN,
) -> ReportContent:
    """The publisher's summary: revenue, fill rate by slot, invalid traffic per site, the
    campaigns that need attention, and mail that failed to go out during the period."""
    sections = []
    for row in _all_sites(connection):
        section = _section(
            connection, period, row.key, row.name, delivery_counts=True, standings={}
        )
        if section is not None:
            sections.append(section)
    standings = [s for s in campaign_standings(connection, now=now) if s.status == "active"]
    live = [s for s in standings if s.started(now) and not s.ended(now)]
    outbox = table(Outbox)
    since = now - timedelta(days=(period.end - period.start).days + 2)
    failed = [
        {"subject": r.subject, "recipients": r.recipients, "status": r.status, "detail": r.detail}
        for r in connection.execute(
            select(outbox.c.subject, outbox.c.recipients, outbox.c.status, outbox.c.detail)
            .where(
                (outbox.c.status == "failed")
                | ((outbox.c.status == "pending") & outbox.c.detail.is_not(None)),
                outbox.c.created_at >= since,
            )
            .order_by(outbox.c.id)
        )
    ]
    publisher, logo = _publisher(connection, None)
    return ReportContent(
        kind="publisher",
        title=f"{publisher} daily summary: {period.label}"
        if period.kind == "day"
        else f"{publisher} summary: {period.label}",
        period=period,
        publisher=publisher,
        logo_url=logo,
        dashboard_url=f"{base_url}/admin",
        generated_at=now,
        sections=sections,
        series=_series(sections, period),
        behind=[s for s in live if s.pace is not None and s.pace < 1 - behind_margin],
        ending=[s for s in live if s.days_left is not None and s.days_left <= ENDING_SOON_DAYS],
        stuck=[s for s in live if not s.fits],
        failed_mail=failed,
    )

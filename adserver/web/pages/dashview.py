"""What the dashboard pages share: the template context of a dashboard and its CSV answers
(the advertiser's /dashboard and the read-only /share/TOKEN render the same body)."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlencode

from starlette.responses import Response

from adserver.reporting.dashboard import Dashboard
from adserver.reporting.periods import PRESETS, preset_period
from adserver.reporting.tables import as_csv

#: The tables a dashboard offers as CSV, by the name in their URL.
CSV_TABLES = ("chart", "campaigns", "slots", "creatives", "days")
PRIVATE = {"Cache-Control": "private, no-store"}


def url(path: str, params: Mapping[str, str]) -> str:
    return f"{path}?{urlencode(params)}" if params else path


def context(
    dashboard: Dashboard, *, path: str, csv_path: str, keep: Mapping[str, str]
) -> dict[str, object]:
    """The template context of ``_body.html``: range links and CSV links keep ``keep`` (e.g. the
    admin's advertiser) and the period."""
    period = dashboard.period
    links = []
    for name, label in PRESETS.items():
        if name == "custom":
            continue
        current = name == period.preset or (
            period.preset == "custom" and preset_period(name, dashboard.today) == period
        )
        links.append((label, url(path, {**keep, "range": name}), current))
    chosen = {**keep, **period.query()}
    return {
        "dashboard": dashboard,
        "range_links": links,
        "action": path,
        "keep": dict(keep),
        "csv_urls": {name: url(csv_path.format(table=name), chosen) for name in CSV_TABLES},
    }


def csv_answer(dashboard: Dashboard, table: str, filename: str) -> Response | None:
    """One of the dashboard's tables as a CSV download; None for an unknown table."""
    if table == "chart":
        chosen = dashboard.chart_table
    elif table in dashboard.tables:
        chosen = dashboard.tables[table]
    else:
        return None
    name = f"{filename}-{table}-{dashboard.period.start}-{dashboard.period.end}.csv"
    return Response(
        as_csv(chosen),
        media_type="text/csv; charset=utf-8",
        headers={**PRIVATE, "Content-Disposition": f'attachment; filename="{name}"'},
    )

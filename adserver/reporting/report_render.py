"""A report's content as mail clients read it: an HTML part with inline styles (tables, no
stylesheet, no script, the chart as an inline PNG), a plain-text part and the CSV of daily rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import cache
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from adserver.core.resources import resource_dir
from adserver.reporting.report_build import TOP_LINE, ReportContent, Section
from adserver.reporting.report_pacing import CampaignStanding

#: The publisher's top line: what the sites earned and how full their slots were.
SUMMARY_LINE = ("spend", "impressions", "requests", "served", "clicks", "ecpm")
LABELS = {
    "requests": "Requests",
    "served": "Served",
    "impressions": "Impressions",
    "viewability": "Viewable rate",
    "clicks": "Clicks",
    "ctr": "CTR",
    "spend": "Spend",
    "ecpm": "eCPM",
}
#: Shown where a figure has no value (a rate with nothing to divide by).
NONE = "\u2013"
RATIOS = ("viewability", "ctr")
MONEY = ("spend", "ecpm")


@cache
def _environment() -> Environment:
    environment = Environment(
        loader=FileSystemLoader(str(resource_dir("templates") / "mail")),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters.update(num=number, pct=percent, money=money_text)
    environment.globals.update(text_table=text_table)
    return environment


def number(value: Any) -> str:
    return NONE if value is None else f"{int(value):,}"


def percent(value: Any, digits: int = 2) -> str:
    return NONE if value is None else f"{float(value) * 100:.{digits}f}%"


def money_text(value: Any, currency: str | None = None) -> str:
    """A decimal string of currency units as ``1,234.50 USD`` (never summed across currencies)."""
    if value is None:
        return NONE
    amount = Decimal(str(value)).quantize(Decimal("0.01"))
    return f"{amount:,}" + (f" {currency}" if currency else "")


def figure(name: str, value: Any, currency: str | None) -> str:
    if name in RATIOS:
        return percent(value)
    if name in MONEY:
        return money_text(value, currency)
    return number(value)


@dataclass(frozen=True)
class TopLine:
    label: str
    value: str
    previous: str
    #: "+12.5%", "-3.0%", "new" or "" (nothing to compare).
    change: str
    #: "up", "down" or "" (for colour only; the sign says it in words too).
    direction: str


def top_line(section: Section, kind: str = "advertiser") -> list[TopLine]:
    """Each top-line figure of the period against the previous period."""
    items = []
    for name in SUMMARY_LINE if kind == "publisher" else TOP_LINE:
        now, before = section.totals.get(name), section.previous.get(name)
        change, direction = "", ""
        if now is not None and before is not None:
            current, previous = Decimal(str(now)), Decimal(str(before))
            if previous:
                ratio = (current - previous) / previous * 100
                change = f"{ratio:+.1f}%"
                direction = "up" if ratio > 0 else "down" if ratio < 0 else ""
            elif current:
                change, direction = "new", "up"
        label = "Revenue" if kind == "publisher" and name == "spend" else LABELS[name]
        items.append(
            TopLine(
                label,
                figure(name, now, section.currency),
                figure(name, before, section.currency),
                change,
                direction,
            )
        )
    return items


Table = tuple[str, list[str], list[list[str]]]


def _goal(standing: CampaignStanding | None) -> str:
    if standing is None or standing.goal_total is None:
        return "no goal"
    text = f"{number(standing.delivered)} of {number(standing.goal_total)}"
    text += " clicks" if standing.goal_kind == "clicks" else ""
    if standing.pace is not None:
        text += f" ({percent(standing.pace, 0)} of even pace)"
    return text


def _days_left(standing: CampaignStanding | None) -> str:
    if standing is None or standing.days_left is None:
        return NONE
    return str(standing.days_left)


def tables(section: Section, kind: str) -> list[Table]:
    """The section's tables, every cell formatted: the same for the HTML and text parts."""
    cur = section.currency
    if kind == "publisher":
        return [
            (
                "Fill rate and revenue by slot",
                ["Slot", "Requests", "Served", "Fill rate", "Impressions", "Clicks", "Revenue"],
                [
                    [
                        r["slot_name"] or "(none)",
                        number(r["requests"]),
                        number(r["served"]),
                        percent(_ratio(r["served"], r["requests"]), 1),
                        number(r["impressions"]),
                        number(r["clicks"]),
                        money_text(r["spend"], cur),
                    ]
                    for r in section.slots
                ],
            ),
            (
                "Revenue by campaign",
                ["Campaign", "Impressions", "Clicks", "CTR", "Revenue"],
                [
                    [
                        r["campaign_name"] or "(none)",
                        number(r["impressions"]),
                        number(r["clicks"]),
                        percent(r["ctr"]),
                        money_text(r["spend"], cur),
                    ]
                    for r in section.campaigns
                    if r["campaign"] is not None
                ],
            ),
        ]
    return [
        (
            "By day",
            ["Day", "Impressions", "Clicks", "CTR", "Spend"],
            [
                [
                    _day(r["day"]),
                    number(r["impressions"]),
                    number(r["clicks"]),
                    percent(r["ctr"]),
                    money_text(r["spend"], cur),
                ]
                for r in section.days
            ],
        ),
        (
            "By campaign",
            ["Campaign", "Impressions", "Clicks", "CTR", "Spend", "Goal", "Days left"],
            [
                [
                    r["campaign_name"] or "(none)",
                    number(r["impressions"]),
                    number(r["clicks"]),
                    percent(r["ctr"]),
                    money_text(r["spend"], cur),
                    _goal(r.get("standing")),
                    _days_left(r.get("standing")),
                ]
                for r in section.campaigns
            ],
        ),
        (
            "By placement",
            ["Slot", "Impressions", "Viewable", "Clicks", "CTR", "Spend"],
            [
                [
                    r["slot_name"] or "(none)",
                    number(r["impressions"]),
                    percent(r["viewability"], 1),
                    number(r["clicks"]),
                    percent(r["ctr"]),
                    money_text(r["spend"], cur),
                ]
                for r in section.slots
            ],
        ),
        (
            "By creative",
            ["Creative", "Impressions", "Viewable", "Clicks", "CTR"],
            [
                [
                    r["creative_name"] or "(none)",
                    number(r["impressions"]),
                    percent(r["viewability"], 1),
                    number(r["clicks"]),
                    percent(r["ctr"]),
                ]
                for r in section.creatives
            ],
        ),
    ]


def text_table(title: str, columns: list[str], rows: list[list[str]]) -> str:
    """A table for the plain-text part: aligned columns, the first to the left."""
    lines = [title, "-" * len(title)]
    if not rows:
        return "\n".join([*lines, "Nothing in this period.", ""])
    widths = [max(len(str(row[i])) for row in [columns, *rows]) for i in range(len(columns))]
    for row in [columns, *rows]:
        cells = [str(row[0]).ljust(widths[0])]
        cells += [str(cell).rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join([*lines, ""])


def _day(iso: str) -> str:
    """``Mon 9 Mar``: the period's year is in the heading, and a phone has little width."""
    return date.fromisoformat(iso).strftime("%a %-d %b")


def _ratio(part: Any, whole: Any) -> float | None:
    return None if not whole else int(part) / int(whole)


def _context(content: ReportContent, **extra: Any) -> dict[str, Any]:
    return {
        "report": content,
        "sections": [
            (section, top_line(section, content.kind), tables(section, content.kind))
            for section in content.sections
        ],
        **extra,
    }


def render_html(
    content: ReportContent, *, chart_src: str, unsubscribe_url: str | None = None
) -> str:
    """The HTML part; ``chart_src`` is ``cid:...`` in mail, a data: URL in the archive."""
    template = "summary.html" if content.kind == "publisher" else "report.html"
    return (
        _environment()
        .get_template(template)
        .render(_context(content, chart_src=chart_src, unsubscribe_url=unsubscribe_url))
    )


def render_text(content: ReportContent, *, unsubscribe_url: str | None = None) -> str:
    template = "summary.txt" if content.kind == "publisher" else "report.txt"
    return (
        _environment()
        .get_template(template)
        .render(_context(content, unsubscribe_url=unsubscribe_url))
    )

"""Tables as the pages show them, and the same tables as CSV.

A table's cells hold the figures already rounded as shown (counts as integers, rates as
percentages with two decimals, money as exact decimal strings), so the page and its CSV
download cannot disagree: the template only adds thousands separators and units.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

#: Column kinds: how a template shows a cell.
KINDS = ("text", "count", "percent", "money", "image", "link")


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    kind: str = "text"
    #: For money: the currency of the column.
    currency: str | None = None


@dataclass
class Table:
    name: str
    title: str
    columns: list[Column]
    rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def csv_columns(self) -> list[Column]:
        """What a download carries: every column but pictures."""
        return [c for c in self.columns if c.kind != "image"]


def percent(ratio: float | None) -> Decimal | None:
    """A /v1/stats ratio as the percentage shown, two decimals."""
    if ratio is None:
        return None
    return (Decimal(str(ratio)) * 100).quantize(Decimal("0.01"), ROUND_HALF_EVEN)


def as_csv(table: Table) -> str:
    """One header row of the column labels, then the rows' cells as shown (no separators);
    text that a spreadsheet would run as a formula is quoted with ``'``."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    columns = table.csv_columns
    writer.writerow([_header(c) for c in columns])
    for row in table.rows:
        writer.writerow([_cell(row.get(c.key)) for c in columns])
    return out.getvalue()


def _header(column: Column) -> str:
    return f"{column.label} (%)" if column.kind == "percent" else column.label


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value

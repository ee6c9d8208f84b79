"""dashboard2: the daily rollups without a rowid on SQLite

Their rows then live in the primary key's tree, so a range of days (the admin overview's month,
every whole-day report) is read in one pass instead of an index lookup and a table lookup per
row. PostgreSQL has no rowid: nothing changes there.

Revision ID: dashboard2
Revises: engine
Create Date: 2026-12-03 08:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "dashboard2"
down_revision: str | None = "engine"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEY = "day, site_id, slot_id, campaign_id, creative_id"
COUNTERS = (
    "requests, served, impressions, viewable, clicks, invalid_impressions, invalid_views, "
    "invalid_clicks, spend_nanos"
)
TABLES = {
    "daily_stat": (
        "day VARCHAR(10) NOT NULL, site_id INTEGER NOT NULL, slot_id INTEGER NOT NULL, "
        "campaign_id INTEGER NOT NULL, creative_id INTEGER NOT NULL, "
        + ", ".join(f"{c.strip()} BIGINT NOT NULL" for c in COUNTERS.split(","))
        + f", PRIMARY KEY ({KEY})"
    ),
    "invalid_daily": (
        "day VARCHAR(10) NOT NULL, site_id INTEGER NOT NULL, slot_id INTEGER NOT NULL, "
        "campaign_id INTEGER NOT NULL, creative_id INTEGER NOT NULL, kind VARCHAR(8) NOT NULL, "
        f"reason VARCHAR(16) NOT NULL, count BIGINT NOT NULL, PRIMARY KEY ({KEY}, kind, reason)"
    ),
}


def _rebuild(rowid: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    suffix = "" if rowid else " WITHOUT ROWID"
    op.drop_index("ix_daily_stat_campaign_day", table_name="daily_stat")
    for name, columns in TABLES.items():
        op.execute(f"CREATE TABLE {name}_new ({columns}){suffix}")
        op.execute(f"INSERT INTO {name}_new SELECT * FROM {name}")
        op.execute(f"DROP TABLE {name}")
        op.execute(f"ALTER TABLE {name}_new RENAME TO {name}")
    op.create_index("ix_daily_stat_campaign_day", "daily_stat", ["campaign_id", "day"])


def upgrade() -> None:
    _rebuild(rowid=False)


def downgrade() -> None:
    _rebuild(rowid=True)

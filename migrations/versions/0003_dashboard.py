"""dashboard: daily rollups beside the hourly statistics, share links

Revision ID: dashboard
Revises: 0002
Create Date: 2026-12-03 08:00:00
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
import sqlmodel
from alembic import op

import adserver.core.models

revision: str = "dashboard"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEY = ("site_id", "slot_id", "campaign_id", "creative_id")
COUNTERS = (
    "requests",
    "served",
    "impressions",
    "viewable",
    "clicks",
    "invalid_impressions",
    "invalid_views",
    "invalid_clicks",
    "spend_nanos",
)


def upgrade() -> None:
    op.create_table(
        "daily_stat",
        sa.Column("day", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        *(sa.Column(c, sa.Integer(), nullable=False) for c in KEY),
        *(sa.Column(c, sa.BigInteger(), nullable=False) for c in COUNTERS),
        sa.PrimaryKeyConstraint("day", *KEY),
    )
    op.create_index("ix_daily_stat_campaign_day", "daily_stat", ["campaign_id", "day"])
    op.create_table(
        "invalid_daily",
        sa.Column("day", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        *(sa.Column(c, sa.Integer(), nullable=False) for c in KEY),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("day", *KEY, "kind", "reason"),
    )
    op.create_table(
        "share_link",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("salt", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("expires_at", adserver.core.models.UTCDateTime(), nullable=True),
        sa.Column("revoked_at", adserver.core.models.UTCDateTime(), nullable=True),
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("created_at", adserver.core.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaign.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_share_link_campaign_id", "share_link", ["campaign_id"])
    _backfill()


def _backfill() -> None:
    """Sum the statistics already kept into site-local days (the code that writes them keeps
    the rollups from now on)."""
    bind = op.get_bind()
    zones = {int(i): ZoneInfo(z) for i, z in bind.execute(sa.text("SELECT id, timezone FROM site"))}
    ids = ", ".join(KEY)
    prefixed = ", ".join(f"h.{c}" for c in KEY)
    for hourly, daily, extra, sums in (
        ("hourly_stat", "daily_stat", "", COUNTERS),
        ("invalid_stat", "invalid_daily", ", kind, reason", ("count",)),
    ):
        spans = bind.execute(
            sa.text(f"SELECT site_id, min(hour), max(hour) FROM {hourly} GROUP BY site_id")
        ).all()
        for site_id, first, last in spans:
            zone = zones.get(int(site_id), ZoneInfo("UTC"))
            day = datetime.fromtimestamp(first, UTC).astimezone(zone).date()
            end = datetime.fromtimestamp(last, UTC).astimezone(zone).date()
            values = []
            while day <= end:
                lo = int(datetime.combine(day, time(0), tzinfo=zone).timestamp())
                day_after = day + timedelta(days=1)
                hi = int(datetime.combine(day_after, time(0), tzinfo=zone).timestamp())
                values.append(f"('{day.isoformat()}', {lo}, {hi})")
                day = day_after
            bind.execute(
                sa.text(
                    f"WITH d(day, lo, hi) AS (VALUES {', '.join(values)}) "
                    f"INSERT INTO {daily} (day, {ids}{extra}, {', '.join(sums)}) "
                    f"SELECT d.day, {prefixed}{extra.replace(', ', ', h.')}, "
                    + ", ".join(f"sum(h.{c})" for c in sums)
                    + f" FROM {hourly} h JOIN d ON h.hour >= d.lo AND h.hour < d.hi "
                    f"WHERE h.site_id = :s GROUP BY d.day, {prefixed}"
                    f"{extra.replace(', ', ', h.')}"
                ),
                {"s": int(site_id)},
            )


def downgrade() -> None:
    op.drop_index("ix_share_link_campaign_id", table_name="share_link")
    op.drop_table("share_link")
    op.drop_table("invalid_daily")
    op.drop_index("ix_daily_stat_campaign_day", table_name="daily_stat")
    op.drop_table("daily_stat")

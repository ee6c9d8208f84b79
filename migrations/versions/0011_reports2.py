"""reports2: a schedule's report is unique per period kind and start (a schedule changed from
weekly to monthly may start both on the same Monday)

Revision ID: reports2
Revises: dashboard2
Create Date: 2026-12-03 08:55:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "reports2"
down_revision: str | None = "dashboard2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("report") as batch:
        batch.drop_index("ix_report_schedule_period")
        batch.create_index(
            "ix_report_schedule_period", ["schedule_id", "period", "period_start"], unique=True
        )


def downgrade() -> None:
    with op.batch_alter_table("report") as batch:
        batch.drop_index("ix_report_schedule_period")
        batch.create_index(
            "ix_report_schedule_period", ["schedule_id", "period_start"], unique=True
        )

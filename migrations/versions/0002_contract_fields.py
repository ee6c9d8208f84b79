"""contract fields: statuses for archiving, labels, utm, trackers, review notes, active users

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 15:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import adserver.core.models

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Existing rows get the creation time, or the epoch where there is none.
EPOCH = "1970-01-01 00:00:00"


def _status(table: str) -> None:
    with op.batch_alter_table(table) as batch:
        batch.add_column(
            sa.Column(
                "status",
                sqlmodel.sql.sqltypes.AutoString(),
                nullable=False,
                server_default="active",
            )
        )


def _timestamp(table: str, name: str, *, copy_from: str | None = None) -> None:
    with op.batch_alter_table(table) as batch:
        batch.add_column(
            sa.Column(
                name,
                adserver.core.models.UTCDateTime(),
                nullable=False,
                server_default=EPOCH,
            )
        )
    if copy_from is not None:
        op.execute(f"UPDATE {table} SET {name} = {copy_from}")


def upgrade() -> None:
    for table in ("site", "slot", "advertiser"):
        _status(table)
    _timestamp("site", "updated_at", copy_from="created_at")
    _timestamp("slot", "updated_at")
    _timestamp("advertiser", "updated_at", copy_from="created_at")
    _timestamp("creative", "created_at", copy_from="updated_at")
    _timestamp("app_user", "updated_at", copy_from="created_at")
    with op.batch_alter_table("campaign") as batch:
        batch.add_column(sa.Column("labels", sa.JSON(), nullable=False, server_default="[]"))
        batch.add_column(sa.Column("utm", sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table("creative") as batch:
        batch.add_column(
            sa.Column("review_note", sqlmodel.sql.sqltypes.AutoString(), nullable=True)
        )
        batch.add_column(
            sa.Column("impression_trackers", sa.JSON(), nullable=False, server_default="[]")
        )
    with op.batch_alter_table("app_user") as batch:
        batch.add_column(
            sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true())
        )


def downgrade() -> None:
    with op.batch_alter_table("app_user") as batch:
        batch.drop_column("active")
        batch.drop_column("updated_at")
    with op.batch_alter_table("creative") as batch:
        batch.drop_column("impression_trackers")
        batch.drop_column("review_note")
        batch.drop_column("created_at")
    with op.batch_alter_table("campaign") as batch:
        batch.drop_column("utm")
        batch.drop_column("labels")
    for table in ("site", "slot", "advertiser"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("updated_at")
            batch.drop_column("status")

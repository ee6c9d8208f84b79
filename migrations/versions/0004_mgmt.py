"""management: entity versions (ETag / If-Match), flight offsets, change history

Revision ID: mgmt
Revises: dashboard
Create Date: 2026-12-03 07:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import adserver.core.models

revision: str = "mgmt"
down_revision: str | None = "dashboard"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

VERSIONED = ("site", "slot", "advertiser", "campaign", "creative")


def upgrade() -> None:
    for name in VERSIONED:
        with op.batch_alter_table(name) as batch:
            batch.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="1"))
    with op.batch_alter_table("campaign") as batch:
        batch.add_column(sa.Column("starts_offset", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("ends_offset", sa.Integer(), nullable=True))
    op.create_table(
        "change",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", adserver.core.models.UTCDateTime(), nullable=False),
        sa.Column("actor_kind", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("actor_name", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("entity", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("entity_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("action", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_change_entity", "change", ["entity", "entity_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_change_entity", table_name="change")
    op.drop_table("change")
    with op.batch_alter_table("campaign") as batch:
        batch.drop_column("ends_offset")
        batch.drop_column("starts_offset")
    for name in VERSIONED:
        with op.batch_alter_table(name) as batch:
            batch.drop_column("version")

"""access: versions (ETag / If-Match) for users and API tokens

Revision ID: access_versions
Revises: reports
Create Date: 2026-12-03 07:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import adserver.core.models

revision: str = "access_versions"
down_revision: str | None = "reports"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for name in ("app_user", "api_token"):
        with op.batch_alter_table(name) as batch:
            batch.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="1"))
    with op.batch_alter_table("api_token") as batch:
        batch.add_column(
            sa.Column(
                "updated_at",
                adserver.core.models.UTCDateTime(),
                nullable=False,
                server_default="1970-01-01 00:00:00",
            )
        )
    op.execute("UPDATE api_token SET updated_at = created_at")


def downgrade() -> None:
    with op.batch_alter_table("api_token") as batch:
        batch.drop_column("updated_at")
    for name in ("app_user", "api_token"):
        with op.batch_alter_table(name) as batch:
            batch.drop_column("version")

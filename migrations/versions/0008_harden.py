"""reader key on events, for the abuse rules the tally applies

Revision ID: harden
Revises: access_versions
Create Date: 2026-12-03 08:05:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "harden"
down_revision: str | None = "access_versions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Events stored before have no reader key: the rules about readers leave them alone.
    with op.batch_alter_table("event") as batch:
        batch.add_column(
            sa.Column("reader", sa.String(length=24), nullable=False, server_default="")
        )


def downgrade() -> None:
    with op.batch_alter_table("event") as batch:
        batch.drop_column("reader")

"""access: sessions, login failures, invitation and reset links, token revocation and last use

Revision ID: access
Revises: mgmt
Create Date: 2026-12-03 07:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import adserver.core.models

revision: str = "access"
down_revision: str | None = "mgmt"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "user_session",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", adserver.core.models.UTCDateTime(), nullable=False),
        sa.Column("seen_at", adserver.core.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["app_user.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_user_session_user_id", "user_session", ["user_id"])
    op.create_table(
        "login_failure",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("address", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("email", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_login_failure_address", "login_failure", ["address", "at"])
    op.create_index("ix_login_failure_email", "login_failure", ["email", "at"])
    op.create_table(
        "account_link",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("purpose", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("created_at", adserver.core.models.UTCDateTime(), nullable=False),
        sa.Column("expires_at", adserver.core.models.UTCDateTime(), nullable=False),
        sa.Column("used_at", adserver.core.models.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["app_user.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_index("ix_account_link_user_id", "account_link", ["user_id"])
    with op.batch_alter_table("api_token") as batch:
        batch.add_column(sa.Column("revoked_at", adserver.core.models.UTCDateTime(), nullable=True))
        batch.add_column(
            sa.Column("last_used_at", adserver.core.models.UTCDateTime(), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("api_token") as batch:
        batch.drop_column("last_used_at")
        batch.drop_column("revoked_at")
    op.drop_index("ix_account_link_user_id", table_name="account_link")
    op.drop_table("account_link")
    op.drop_index("ix_login_failure_email", table_name="login_failure")
    op.drop_index("ix_login_failure_address", table_name="login_failure")
    op.drop_table("login_failure")
    op.drop_index("ix_user_session_user_id", table_name="user_session")
    op.drop_table("user_session")

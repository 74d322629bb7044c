"""Control limits on check results, and column profiles stored with versions.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("check_results") as batch:
        batch.add_column(sa.Column("lower", sa.Float, nullable=True))
        batch.add_column(sa.Column("upper", sa.Float, nullable=True))
    op.create_table(
        "profiles",
        sa.Column("version_id", sa.String(32), primary_key=True),
        sa.Column("asset", sa.String(200), nullable=False),
        sa.Column("partition", sa.String(200), nullable=False),
        sa.Column("rows", sa.BigInteger, nullable=False),
        sa.Column("profile", sa.Text, nullable=False),
        sa.Column("seconds", sa.Float, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_profiles_asset", "profiles", ["asset", "created_at"])


def downgrade() -> None:
    op.drop_table("profiles")
    with op.batch_alter_table("check_results") as batch:
        batch.drop_column("upper")
        batch.drop_column("lower")

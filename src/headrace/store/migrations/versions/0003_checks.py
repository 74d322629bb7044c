"""Check results per version, and the quarantine of versions that failed them.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "check_results",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("version_id", sa.String(32), nullable=False),
        sa.Column("asset", sa.String(200), nullable=False),
        sa.Column("partition", sa.String(200), nullable=False),
        sa.Column("run_id", sa.String(32), nullable=True),
        sa.Column("check_name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("columns", sa.Text, nullable=False),
        sa.Column("severity", sa.String(8), nullable=False),
        sa.Column("passed", sa.Boolean, nullable=False),
        sa.Column("observed", sa.Text, nullable=True),
        sa.Column("threshold", sa.Text, nullable=False),
        sa.Column("failing_rows", sa.BigInteger, nullable=True),
        sa.Column("failing_fraction", sa.Float, nullable=True),
        sa.Column("sample", sa.Text, nullable=True),
        sa.Column("message", sa.Text, nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_check_results_version", "check_results", ["version_id"])
    op.create_index(
        "ix_check_results_history", "check_results", ["asset", "check_name", "created_at"]
    )
    op.create_table(
        "quarantine",
        sa.Column("version_id", sa.String(32), primary_key=True),
        sa.Column("branch", sa.String(200), nullable=False),
        sa.Column("asset", sa.String(200), nullable=False),
        sa.Column("partition", sa.String(200), nullable=False),
        sa.Column("run_id", sa.String(32), nullable=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("decided_at", sa.Float, nullable=True),
        sa.Column("decided_by", sa.String(200), nullable=True),
    )
    op.create_index("ix_quarantine_status", "quarantine", ["status", "branch"])


def downgrade() -> None:
    op.drop_table("quarantine")
    op.drop_table("check_results")

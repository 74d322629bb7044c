"""Branches, their fork bases, the history of every head move; version stats and keys.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    branches = op.create_table(
        "branches",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("from_branch", sa.String(200), nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=True),
        sa.Column("description", sa.Text, nullable=True),
    )
    op.bulk_insert(
        branches,
        [
            {
                "name": "main",
                "from_branch": None,
                "created_at": time.time(),
                "created_by": None,
                "description": "the default branch",
            }
        ],
    )
    # Heads already written on any branch become branches of their own (created from main).
    op.execute(
        "INSERT INTO branches (name, from_branch, created_at, created_by, description) "
        "SELECT DISTINCT branch, 'main', MIN(updated_at), NULL, NULL FROM branch_heads "
        "WHERE branch <> 'main' GROUP BY branch"
    )
    op.create_table(
        "branch_bases",
        sa.Column("branch", sa.String(200), primary_key=True),
        sa.Column("asset", sa.String(200), primary_key=True),
        sa.Column("partition", sa.String(200), primary_key=True),
        sa.Column("version_id", sa.String(32), nullable=False),
    )
    op.create_table(
        "branch_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("branch", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("asset", sa.String(200), nullable=False),
        sa.Column("partition", sa.String(200), nullable=False),
        sa.Column("old_version_id", sa.String(32), nullable=True),
        sa.Column("new_version_id", sa.String(32), nullable=True),
        sa.Column("run_id", sa.String(32), nullable=True),
        sa.Column("actor", sa.String(200), nullable=True),
        sa.Column("message", sa.Text, nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index(
        "ix_branch_events_head", "branch_events", ["branch", "asset", "partition", "created_at"]
    )
    op.create_index("ix_branch_events_created_at", "branch_events", ["created_at"])
    # The history so far: each current head counts as moved when it was last updated.
    op.execute(
        "INSERT INTO branch_events (branch, kind, asset, partition, old_version_id, "
        "new_version_id, run_id, actor, message, created_at) "
        "SELECT branch, 'materialize', asset, partition, NULL, version_id, run_id, NULL, "
        "'recorded before branch history existed', updated_at FROM branch_heads"
    )
    with op.batch_alter_table("asset_versions") as batch:
        batch.add_column(sa.Column("stats", sa.Text, nullable=True))
        batch.add_column(sa.Column("primary_key", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("asset_versions") as batch:
        batch.drop_column("primary_key")
        batch.drop_column("stats")
    op.drop_table("branch_events")
    op.drop_table("branch_bases")
    op.drop_table("branches")

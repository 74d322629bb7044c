"""Runs, steps, logs, asset versions, their inputs and branch heads.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("selection", sa.Text, nullable=False),
        sa.Column("params", sa.Text, nullable=False),
        sa.Column("partitions", sa.Text, nullable=True),
        sa.Column("branch", sa.String(200), nullable=False),
        sa.Column("trigger", sa.String(32), nullable=False),
        sa.Column("executor", sa.String(16), nullable=False),
        sa.Column("max_concurrency", sa.Integer, nullable=False),
        sa.Column("force", sa.Boolean, nullable=False),
        sa.Column("host", sa.String(255), nullable=True),
        sa.Column("pid", sa.Integer, nullable=True),
        sa.Column("plan", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("started_at", sa.Float, nullable=True),
        sa.Column("ended_at", sa.Float, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
    )
    op.create_index("ix_runs_created_at", "runs", ["created_at"])
    op.create_index("ix_runs_status", "runs", ["status"])
    op.create_table(
        "steps",
        sa.Column("run_id", sa.String(32), primary_key=True),
        sa.Column("key", sa.String(512), primary_key=True),
        sa.Column("asset", sa.String(200), nullable=False),
        sa.Column("partition", sa.String(200), nullable=True),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("started_at", sa.Float, nullable=True),
        sa.Column("ended_at", sa.Float, nullable=True),
        sa.Column("duration_s", sa.Float, nullable=True),
        sa.Column("version_id", sa.String(32), nullable=True),
        sa.Column("cache_key", sa.String(64), nullable=True),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("traceback", sa.Text, nullable=True),
    )
    op.create_index("ix_steps_asset", "steps", ["asset"])
    op.create_table(
        "step_logs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("step_key", sa.String(512), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("stream", sa.String(8), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
    )
    op.create_index("ix_step_logs_run", "step_logs", ["run_id", "step_key"])
    op.create_table(
        "asset_versions",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("asset", sa.String(200), nullable=False),
        sa.Column("partition", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("format", sa.String(16), nullable=False),
        sa.Column("flavor", sa.String(16), nullable=False),
        sa.Column("blob", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("row_count", sa.BigInteger, nullable=True),
        sa.Column("schema", sa.Text, nullable=True),
        sa.Column("run_id", sa.String(32), nullable=True),
        sa.Column("step_key", sa.String(512), nullable=True),
        sa.Column("code_version", sa.String(64), nullable=True),
        sa.Column("params", sa.Text, nullable=True),
        sa.Column("cache_key", sa.String(64), nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index(
        "ix_asset_versions_asset", "asset_versions", ["asset", "partition", "created_at"]
    )
    op.create_index("ix_asset_versions_blob", "asset_versions", ["blob"])
    op.create_table(
        "version_inputs",
        sa.Column("version_id", sa.String(32), primary_key=True),
        sa.Column("input_version_id", sa.String(32), primary_key=True),
        sa.Column("parameter", sa.String(200), primary_key=True),
    )
    op.create_index("ix_version_inputs_input", "version_inputs", ["input_version_id"])
    op.create_table(
        "branch_heads",
        sa.Column("branch", sa.String(200), primary_key=True),
        sa.Column("asset", sa.String(200), primary_key=True),
        sa.Column("partition", sa.String(200), primary_key=True),
        sa.Column("version_id", sa.String(32), nullable=False),
        sa.Column("run_id", sa.String(32), nullable=True),
        sa.Column("updated_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    for table in ("branch_heads", "version_inputs", "asset_versions", "step_logs", "steps", "runs"):
        op.drop_table(table)

"""Automation: the durable run queue, the state of schedules, sensors and freshness
policies, the files sensors handled, and failure notifications.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "run_queue",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("pipeline", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("selection", sa.Text, nullable=True),
        sa.Column("exclude", sa.Text, nullable=True),
        sa.Column("params", sa.Text, nullable=False),
        sa.Column("partitions", sa.Text, nullable=True),
        sa.Column("branch", sa.String(200), nullable=False),
        sa.Column("tags", sa.Text, nullable=False),
        sa.Column("trigger", sa.String(300), nullable=False),
        sa.Column("dedupe_key", sa.String(500), nullable=True, unique=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("max_attempts", sa.Integer, nullable=False),
        sa.Column("enqueued_at", sa.Float, nullable=False),
        sa.Column("not_before", sa.Float, nullable=False),
        sa.Column("started_at", sa.Float, nullable=True),
        sa.Column("ended_at", sa.Float, nullable=True),
        sa.Column("worker", sa.String(300), nullable=True),
        sa.Column("lease_until", sa.Float, nullable=True),
        sa.Column("heartbeat_at", sa.Float, nullable=True),
        sa.Column("run_id", sa.String(32), nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("waiting", sa.Text, nullable=True),
        sa.Column("details", sa.Text, nullable=False),
    )
    op.create_index("ix_run_queue_status", "run_queue", ["status", "priority", "enqueued_at"])
    op.create_table(
        "automation_state",
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("enabled", sa.Boolean, nullable=True),
        sa.Column("cursor", sa.Text, nullable=True),
        sa.Column("evaluated_at", sa.Float, nullable=True),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_table(
        "sensor_files",
        sa.Column("sensor", sa.String(200), primary_key=True),
        sa.Column("path", sa.String(2000), primary_key=True),
        sa.Column("fingerprint", sa.String(300), nullable=False),
        sa.Column("seen_at", sa.Float, nullable=False),
    )
    op.create_table(
        "notifications",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(500), nullable=False),
        sa.Column("dedupe_key", sa.String(500), nullable=True, unique=True),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("channels", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.Float, nullable=False),
        sa.Column("outcomes", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("sent_at", sa.Float, nullable=True),
    )
    op.create_index("ix_notifications_status", "notifications", ["status", "next_attempt_at"])


def downgrade() -> None:
    op.drop_index("ix_notifications_status", table_name="notifications")
    op.drop_table("notifications")
    op.drop_table("sensor_files")
    op.drop_table("automation_state")
    op.drop_index("ix_run_queue_status", table_name="run_queue")
    op.drop_table("run_queue")

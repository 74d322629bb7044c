"""Monitoring: the classifier's score beside each logged prediction, monitor results per
window, alerts, and the reference profiles monitors compare against.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("predictions") as batch:
        batch.add_column(sa.Column("score", sa.Float, nullable=True))
    op.create_table(
        "monitor_windows",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("monitor", sa.String(200), nullable=False),
        sa.Column("model", sa.String(200), nullable=True),
        sa.Column("version", sa.Integer, nullable=True),
        sa.Column("asset_version", sa.String(64), nullable=True),
        sa.Column("start", sa.Float, nullable=False),
        sa.Column("end", sa.Float, nullable=False),
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column("labeled", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("drift_share", sa.Float, nullable=True),
        sa.Column("evaluated_at", sa.Float, nullable=False),
        sa.Column("reference", sa.Text, nullable=True),
    )
    op.create_index("ix_monitor_windows", "monitor_windows", ["monitor", "end"])
    op.create_table(
        "monitor_results",
        sa.Column("window_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("method", sa.String(32), nullable=True),
        sa.Column("value", sa.Float, nullable=True),
        sa.Column("p_value", sa.Float, nullable=True),
        sa.Column("threshold", sa.Float, nullable=True),
        sa.Column("baseline", sa.Float, nullable=True),
        sa.Column("breached", sa.Boolean, nullable=False),
        sa.Column("estimated", sa.Boolean, nullable=False),
        sa.PrimaryKeyConstraint("window_id", "kind", "name"),
    )
    op.create_table(
        "monitor_alerts",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("monitor", sa.String(200), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("window_id", sa.String(64), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("suppressed", sa.Boolean, nullable=False),
        sa.Column("outcomes", sa.Text, nullable=False),
    )
    op.create_index("ix_monitor_alerts", "monitor_alerts", ["monitor", "key", "created_at"])
    op.create_table(
        "monitor_references",
        sa.Column("monitor", sa.String(200), nullable=False),
        sa.Column("reference", sa.String(300), nullable=False),
        sa.Column("profile", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("monitor", "reference"),
    )


def downgrade() -> None:
    op.drop_table("monitor_references")
    op.drop_table("monitor_alerts")
    op.drop_table("monitor_results")
    op.drop_table("monitor_windows")
    with op.batch_alter_table("predictions") as batch:
        batch.drop_column("score")

"""The prediction log: every scored row, its model version, latency and, later, its label.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "predictions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("row", sa.Integer, nullable=False),
        sa.Column("key", sa.String(200), nullable=True),
        sa.Column("inputs", sa.Text, nullable=False),
        sa.Column("output", sa.Text, nullable=False),
        sa.Column("latency_ms", sa.Float, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("label", sa.Text, nullable=True),
        sa.Column("labeled_at", sa.Float, nullable=True),
    )
    op.create_index("ix_predictions_model", "predictions", ["model", "created_at"])
    op.create_index("ix_predictions_request", "predictions", ["request_id"])
    op.create_index("ix_predictions_key", "predictions", ["model", "key"])


def downgrade() -> None:
    op.drop_table("predictions")

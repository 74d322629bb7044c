"""Logged models: what an MLflow 3 client logs with ``log_model`` before (or without)
registering it: a model id, its experiment and run, a status, params and tags. Its files
are rows of ``run_artifacts`` under the model's id.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "logged_models",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("experiment_id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("run_id", sa.String(32), nullable=True),
        sa.Column("model_type", sa.String(200), nullable=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("params", sa.Text, nullable=False),
        sa.Column("tags", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_index("ix_logged_models_experiment", "logged_models", ["experiment_id"])


def downgrade() -> None:
    op.drop_index("ix_logged_models_experiment", "logged_models")
    op.drop_table("logged_models")

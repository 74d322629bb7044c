"""What the MLflow API keeps beyond runs: experiment, registered-model and
model-version tags, and deleted (restorable) experiments and tracked runs.

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "experiment_tags",
        sa.Column("experiment_id", sa.String(32), primary_key=True),
        sa.Column("key", sa.String(250), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "model_tags",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("key", sa.String(250), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "model_version_tags",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("key", sa.String(250), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    with op.batch_alter_table("experiments") as batch:
        batch.add_column(sa.Column("deleted_at", sa.Float, nullable=True))
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("deleted_at", sa.Float, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("deleted_at")
    with op.batch_alter_table("experiments") as batch:
        batch.drop_column("deleted_at")
    op.drop_table("model_version_tags")
    op.drop_table("model_tags")
    op.drop_table("experiment_tags")

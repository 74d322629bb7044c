"""External lineage: OpenLineage events other producers (Airflow, Spark, dbt) post to the
team server, kept as jobs, datasets, runs and the datasets each run read and wrote,
beside the raw events.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "lineage_jobs",
        sa.Column("namespace", sa.String(500), primary_key=True),
        sa.Column("name", sa.String(500), primary_key=True),
        sa.Column("producer", sa.String(1000), nullable=True),
        sa.Column("facets", sa.Text, nullable=False),
        sa.Column("first_seen", sa.Float, nullable=False),
        sa.Column("last_seen", sa.Float, nullable=False),
    )
    op.create_table(
        "lineage_datasets",
        sa.Column("namespace", sa.String(500), primary_key=True),
        sa.Column("name", sa.String(500), primary_key=True),
        sa.Column("facets", sa.Text, nullable=False),
        sa.Column("first_seen", sa.Float, nullable=False),
        sa.Column("last_seen", sa.Float, nullable=False),
    )
    op.create_table(
        "lineage_runs",
        sa.Column("run_id", sa.String(64), primary_key=True),
        sa.Column("job_namespace", sa.String(500), nullable=False),
        sa.Column("job_name", sa.String(500), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("started_at", sa.Float, nullable=True),
        sa.Column("ended_at", sa.Float, nullable=True),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_index("ix_lineage_runs_job", "lineage_runs", ["job_namespace", "job_name"])
    op.create_table(
        "lineage_io",
        sa.Column("job_namespace", sa.String(500), primary_key=True),
        sa.Column("job_name", sa.String(500), primary_key=True),
        sa.Column("direction", sa.String(3), primary_key=True),
        sa.Column("dataset_namespace", sa.String(500), primary_key=True),
        sa.Column("dataset_name", sa.String(500), primary_key=True),
        sa.Column("last_run_id", sa.String(64), nullable=True),
        sa.Column("last_seen", sa.Float, nullable=False),
    )
    op.create_index("ix_lineage_io_dataset", "lineage_io", ["dataset_namespace", "dataset_name"])
    op.create_table(
        "lineage_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(64), nullable=True),
        sa.Column("event_type", sa.String(16), nullable=True),
        sa.Column("event_time", sa.String(64), nullable=False),
        sa.Column("received_at", sa.Float, nullable=False),
        sa.Column("received_by", sa.String(200), nullable=True),
        sa.Column("body", sa.Text, nullable=False),
    )
    op.create_index("ix_lineage_events_run", "lineage_events", ["run_id"])


def downgrade() -> None:
    op.drop_index("ix_lineage_events_run", "lineage_events")
    op.drop_table("lineage_events")
    op.drop_index("ix_lineage_io_dataset", "lineage_io")
    op.drop_table("lineage_io")
    op.drop_index("ix_lineage_runs_job", "lineage_runs")
    op.drop_table("lineage_runs")
    op.drop_table("lineage_datasets")
    op.drop_table("lineage_jobs")

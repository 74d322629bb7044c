"""The run queue found by pipeline run: ``GET /runs/{id}`` answers for a run that the
server queued and no worker has started yet.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_run_queue_run", "run_queue", ["run_id"])


def downgrade() -> None:
    op.drop_index("ix_run_queue_run", table_name="run_queue")

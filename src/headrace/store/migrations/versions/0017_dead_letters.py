"""Dead letters: rows the prediction log or a tracked run could not write because the
database refused them, kept with the reason.

Revision ID: 0017
Revises: 0015
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dead_letters",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("writer", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_dead_letters_writer", "dead_letters", ["writer", "id"])


def downgrade() -> None:
    op.drop_index("ix_dead_letters_writer", table_name="dead_letters")
    op.drop_table("dead_letters")

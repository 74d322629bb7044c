"""Dialect-aware INSERT ... ON CONFLICT DO UPDATE."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table


def _dialect(name: str) -> Any:
    # Imported on use: the PostgreSQL dialect costs start-up time SQLite users never need.
    if name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql
    from sqlalchemy.dialects import sqlite

    return sqlite


def head_upsert(dialect: str) -> Any:
    """Point a branch at a version (insert or move the head), with bound parameters."""
    from sqlalchemy import bindparam

    from headrace.store.schema import branch_heads

    module = _dialect(dialect)
    columns = ("branch", "asset", "partition", "version_id", "run_id", "updated_at")
    statement = module.insert(branch_heads).values({c: bindparam(c) for c in columns})
    return statement.on_conflict_do_update(
        index_elements=["branch", "asset", "partition"],
        set_={c: statement.excluded[c] for c in ("version_id", "run_id", "updated_at")},
    )


def insert_ignore(dialect: str, table: Table) -> Any:
    """INSERT that does nothing for a row whose primary key exists (bound parameters)."""
    return _dialect(dialect).insert(table).on_conflict_do_nothing()


def upsert_statement(
    dialect: str, table: Table, keys: Sequence[str], columns: Sequence[str]
) -> Any:
    """An upsert with bound parameters named after ``columns`` (for executemany)."""
    from sqlalchemy import bindparam

    statement = _dialect(dialect).insert(table).values({c: bindparam(c) for c in columns})
    return statement.on_conflict_do_update(
        index_elements=list(keys),
        set_={c: statement.excluded[c] for c in columns if c not in keys},
    )

"""Automatic, race-safe schema migration on first use and on upgrade."""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import alembic.command
import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import Engine, create_engine, inspect, text

import headrace.store.engine as engine_module
from headrace.store import open_store
from headrace.store.errors import SchemaTooNewError, StoreError
from headrace.store.schema import SCHEMA_HEAD, metadata

from .builders import make_run
from .workers import open_at_once

TABLES = set(metadata.tables)
MIGRATIONS = Path(engine_module.__file__).parent / "migrations"


@contextmanager
def raw_engine(url: str) -> Iterator[Engine]:
    engine = create_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()


def tables(url: str) -> set[str]:
    with raw_engine(url) as engine:
        return set(inspect(engine).get_table_names())


def revisions(url: str) -> list[str]:
    with raw_engine(url) as engine, engine.connect() as connection:
        rows = connection.execute(text("SELECT version_num FROM alembic_version")).all()
    return [row[0] for row in rows]


def schema_drift(url: str) -> list[Any]:
    """Differences between the migrated database and ``schema.metadata``."""
    with raw_engine(url) as engine, engine.connect() as connection:
        return list(compare_metadata(MigrationContext.configure(connection), metadata))


def run_alembic(url: str, command: str, revision: str, script_location: Path = MIGRATIONS) -> None:
    config = Config()
    config.set_main_option("script_location", str(script_location))
    with raw_engine(url) as engine, engine.begin() as connection:
        config.attributes["connection"] = connection
        getattr(alembic.command, command)(config, revision)


class UpgradeCalled(Exception):
    pass


def forbid_upgrade(monkeypatch: pytest.MonkeyPatch) -> None:
    def upgrade(*_args: Any, **_kwargs: Any) -> None:
        raise UpgradeCalled

    monkeypatch.setattr(alembic.command, "upgrade", upgrade)


def test_first_open_creates_the_whole_schema_at_head(store_url: str) -> None:
    untouched = open_store(store_url, migrate_schema=False)
    untouched.close()
    assert tables(store_url) == set()

    store = open_store(store_url)
    store.close()

    assert tables(store_url) == TABLES | {"alembic_version"}
    assert revisions(store_url) == [SCHEMA_HEAD]
    assert schema_drift(store_url) == []


def test_reopening_a_current_store_runs_no_migration(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as patch:
        forbid_upgrade(patch)
        with pytest.raises(UpgradeCalled):  # the guard sees a migration when there is one
            open_store(store_url)
    assert tables(store_url) == set()

    store = open_store(store_url)
    run = make_run()
    store.runs.create(run, [("a", "a", None)])
    store.close()

    forbid_upgrade(monkeypatch)
    for _ in range(2):
        reopened = open_store(store_url)
        try:
            assert reopened.runs.get(run.id) == run
        finally:
            reopened.close()
    assert revisions(store_url) == [SCHEMA_HEAD]


def test_a_store_downgraded_to_base_is_recreated_on_open(store_url: str) -> None:
    open_store(store_url).close()
    run_alembic(store_url, "downgrade", "base")
    assert tables(store_url) == {"alembic_version"}
    assert revisions(store_url) == []

    store = open_store(store_url)
    try:
        assert store.runs.list() == []
    finally:
        store.close()
    assert tables(store_url) == TABLES | {"alembic_version"}
    assert revisions(store_url) == [SCHEMA_HEAD]
    assert schema_drift(store_url) == []


def test_a_store_without_tables_but_with_the_version_table_is_migrated(store_url: str) -> None:
    with raw_engine(store_url) as engine, engine.begin() as connection:
        connection.execute(
            text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)")
        )
    open_store(store_url).close()
    assert revisions(store_url) == [SCHEMA_HEAD]
    assert tables(store_url) == TABLES | {"alembic_version"}


NEXT = f"{int(SCHEMA_HEAD) + 1:04d}"

NEXT_REVISION = '''
"""A revision newer than the shipped head, for upgrade tests."""

import sqlalchemy as sa
from alembic import op

revision = "{next}"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("runs", sa.Column("note", sa.Text, nullable=True))
    op.create_table("test_extra", sa.Column("id", sa.Integer, primary_key=True))


def downgrade() -> None:
    op.drop_table("test_extra")
    op.drop_column("runs", "note")
'''


@pytest.fixture
def next_migrations(tmp_path: Path) -> Path:
    """The shipped migrations plus one revision on top."""
    folder = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS, folder, ignore=shutil.ignore_patterns("__pycache__"))
    source = NEXT_REVISION.replace("{next}", NEXT).replace("{head}", SCHEMA_HEAD)
    (folder / "versions" / f"{NEXT}_next.py").write_text(textwrap.dedent(source))
    return folder


def test_an_older_schema_is_upgraded_in_place_keeping_its_data(
    store_url: str, next_migrations: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_store(store_url)
    run = make_run()
    store.runs.create(run, [("a", "a", None)])
    store.close()

    with monkeypatch.context() as newer:  # a newer headrace, one revision ahead
        newer.setattr(engine_module, "_MIGRATIONS", next_migrations)
        newer.setattr(engine_module, "SCHEMA_HEAD", NEXT)
        upgraded = open_store(store_url)
        try:
            assert upgraded.runs.get(run.id) == run
            assert [s.key for s in upgraded.runs.steps(run.id)] == ["a"]
        finally:
            upgraded.close()

    assert revisions(store_url) == [NEXT]
    assert "test_extra" in tables(store_url)
    with raw_engine(store_url) as engine:
        assert "note" in {c["name"] for c in inspect(engine).get_columns("runs")}

    # This headrace now meets a database migrated by a newer one.
    with pytest.raises(SchemaTooNewError, match=rf"revision {NEXT}.*upgrade headrace"):
        open_store(store_url)
    assert revisions(store_url) == [NEXT]


def test_an_unknown_newer_revision_is_refused_untouched(store_url: str) -> None:
    open_store(store_url).close()
    with raw_engine(store_url) as engine, engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = 'ffff9999'"))

    with pytest.raises(SchemaTooNewError) as caught:
        open_store(store_url)
    assert isinstance(caught.value, StoreError)
    assert "ffff9999" in str(caught.value)
    assert SCHEMA_HEAD in str(caught.value)
    assert revisions(store_url) == ["ffff9999"]
    assert tables(store_url) == TABLES | {"alembic_version"}

    # Opting out of migration skips the check (for tools that only inspect).
    open_store(store_url, migrate_schema=False).close()


@pytest.mark.parametrize(
    "url",
    ["mysql://root@localhost/db", "metadata.sqlite", "", "postgres//nope", "oracle+cx://x"],
)
def test_unsupported_urls_are_refused_with_the_supported_forms(url: str) -> None:
    with pytest.raises(StoreError, match=r"not supported.*sqlite:///PATH.*postgresql\+psycopg"):
        open_store(url)


@pytest.mark.integration
def test_processes_racing_to_open_a_fresh_store_migrate_it_exactly_once(
    store_url: str, tmp_path: Path, run_processes: Any
) -> None:
    marker = tmp_path / "migrations.log"
    results = run_processes(open_at_once, [(store_url, str(marker))] * 4)

    assert results == [[SCHEMA_HEAD]] * 4
    assert len(marker.read_text().splitlines()) == 1
    assert revisions(store_url) == [SCHEMA_HEAD]
    assert schema_drift(store_url) == []
    store = open_store(store_url)
    try:
        assert len(store.runs.list()) == 4
    finally:
        store.close()

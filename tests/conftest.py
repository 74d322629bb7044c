"""Shared fixtures: one metadata-store URL per database, and real worker processes."""

from __future__ import annotations

import multiprocessing
import queue
import shutil
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from headrace.store import MetadataStore, open_store
from headrace.store.schema import metadata

PG_HOST = "127.0.0.1"
PG_PORT = 5432
PG_USER = "postgres"
_PG_ADMIN = f"host={PG_HOST} port={PG_PORT} user={PG_USER} dbname=postgres"


def _pg_admin() -> Any:
    import psycopg

    return psycopg.connect(_PG_ADMIN, autocommit=True, connect_timeout=2)


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The admin conninfo of the local PostgreSQL server; skips when none answers.

    Checked once per session, so a missing server costs one 2-second timeout at most.
    """
    try:
        with _pg_admin() as connection:
            connection.execute("SELECT 1")
    except Exception as exc:  # ImportError, OperationalError, ...
        reason = " ".join(str(exc).split())
        pytest.skip(f"no PostgreSQL server answers at {PG_HOST}:{PG_PORT}: {reason}")
    return _PG_ADMIN


def _create_database() -> str:
    name = f"headrace_test_{uuid.uuid4().hex[:16]}"
    with _pg_admin() as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return name


def _drop_database(name: str) -> None:
    with _pg_admin() as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _pg_url(name: str) -> str:
    return f"postgresql+psycopg://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A fresh, empty, uniquely named PostgreSQL database, dropped afterwards."""
    name = _create_database()
    try:
        yield _pg_url(name)
    finally:
        _drop_database(name)


@pytest.fixture(scope="session")
def _migrated_postgres_url(postgres_server: str) -> Iterator[str]:
    """One PostgreSQL database migrated once per session; ``store`` empties it per test.

    Creating and migrating a database per test costs ~0.4 s; emptying one costs ~5 ms.
    """
    name = _create_database()
    try:
        open_store(_pg_url(name)).close()
        yield _pg_url(name)
    finally:
        _drop_database(name)


@pytest.fixture(scope="session")
def _migrated_sqlite_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite store migrated once per session; ``store`` starts from a copy of it."""
    path = tmp_path_factory.mktemp("template") / "metadata.sqlite"
    open_store(f"sqlite:///{path}").close()
    assert not Path(f"{path}-wal").exists()  # closed cleanly: the file holds everything
    return path


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    ]
)
def backend(request: pytest.FixtureRequest) -> str:
    """The database a shared store test runs against: ``sqlite`` or ``postgresql``."""
    name: str = request.param
    return name


@pytest.fixture
def store_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty, never migrated store URL: a new SQLite file or a new PostgreSQL database."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'metadata.sqlite'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def store(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MetadataStore]:
    """An open metadata store at schema head holding no rows, closed afterwards."""
    if backend == "sqlite":
        path = tmp_path / "store.sqlite"
        shutil.copyfile(request.getfixturevalue("_migrated_sqlite_file"), path)
        url = f"sqlite:///{path}"
    else:
        url = request.getfixturevalue("_migrated_postgres_url")
    opened = open_store(url)
    try:
        if backend != "sqlite":
            with opened.write() as connection:
                for table in reversed(metadata.sorted_tables):
                    connection.execute(table.delete())
        yield opened
    finally:
        opened.close()


RunProcesses = Callable[..., list[Any]]


@pytest.fixture
def run_processes() -> RunProcesses:
    """Run ``target(barrier, results, *args)`` in one spawned process per ``args``.

    The processes start their work together (``barrier.wait()``), each puts what it
    wants to report on ``results``; the call fails unless every process exits with 0.
    ``target`` must be a module-level function of an importable test module.
    """

    def run(
        target: Callable[..., None],
        args_per_process: Sequence[tuple[Any, ...]],
        timeout: float = 120,
    ) -> list[Any]:
        context = multiprocessing.get_context("spawn")
        barrier = context.Barrier(len(args_per_process))
        results = context.Queue()
        processes = [
            context.Process(target=target, args=(barrier, results, *args), daemon=True)
            for args in args_per_process
        ]
        for process in processes:
            process.start()
        out: list[Any] = []
        deadline = time.monotonic() + timeout
        try:
            # Drain the queue while the processes run: a child blocks on exit until what
            # it put has been read.
            while time.monotonic() < deadline:
                try:
                    out.append(results.get(timeout=0.1))
                    continue
                except queue.Empty:
                    pass
                if not any(p.is_alive() for p in processes):
                    try:
                        while True:
                            out.append(results.get(timeout=0.05))
                    except queue.Empty:
                        break
            for process in processes:
                process.join(timeout=max(0.0, deadline - time.monotonic()))
        finally:
            for process in processes:
                if process.is_alive():
                    process.kill()
                    process.join()
            results.close()
        codes = [p.exitcode for p in processes]
        assert codes == [0] * len(processes), f"worker exit codes {codes}; results {out}"
        return out

    return run


@pytest.fixture(autouse=True)
def _policies_stay_in_their_test() -> Iterator[None]:
    """Promotion policies are declared process-wide when a project is imported, and a
    guarded alias is judged by them: one test's policies must not judge another's."""
    from headrace.core.policies import POLICIES

    saved = dict(POLICIES)
    yield
    POLICIES.clear()
    POLICIES.update(saved)

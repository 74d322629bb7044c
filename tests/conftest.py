"""Shared fixtures: one metadata-store URL per database, and real worker processes."""

from __future__ import annotations

import multiprocessing
import queue
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from headrace.store import MetadataStore, open_store

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
        pytest.skip(f"no PostgreSQL server answers at {PG_HOST}:{PG_PORT}: {exc}")
    return _PG_ADMIN


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A fresh, uniquely named PostgreSQL database, dropped afterwards."""
    name = f"headrace_test_{uuid.uuid4().hex[:16]}"
    with _pg_admin() as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        with _pg_admin() as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    ]
)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty metadata store URL: a fresh SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'metadata.sqlite'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def store(store_url: str) -> Iterator[MetadataStore]:
    """The metadata store at ``store_url``, migrated to head."""
    opened = open_store(store_url)
    try:
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
        target: Callable[..., None], args_per_process: Sequence[tuple[Any, ...]], timeout: float = 120
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
                            out.append(results.get(timeout=0.5))
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

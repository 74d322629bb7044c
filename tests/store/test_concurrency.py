"""Concurrent writers: several processes share one store without 'database is locked'."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text

from headrace.store import MetadataStore, open_store
from headrace.store.schema import asset_versions, step_logs, version_inputs

from .builders import make_run
from .workers import RUNS_PER_PROCESS, write_runs

PROCESSES = 4


def count(store: MetadataStore, table: Any) -> int:
    with store.read() as c:
        return int(c.execute(select(func.count()).select_from(table)).scalar_one())


@pytest.mark.integration
def test_processes_writing_at_once_all_succeed_and_every_row_lands(
    store_url: str, run_processes: Any
) -> None:
    open_store(store_url).close()  # the migration race has its own test
    results = run_processes(write_runs, [(store_url, w) for w in range(PROCESSES)])

    assert sorted(results) == [("ok", w, RUNS_PER_PROCESS) for w in range(PROCESSES)]
    store = open_store(store_url)
    try:
        total = PROCESSES * RUNS_PER_PROCESS
        runs = store.runs.list(limit=total + 1)
        assert len(runs) == total
        assert {r.status for r in runs} == {"success"}
        counts = store.runs.step_counts(r.id for r in runs)
        assert all(c == {"success": 2} for c in counts.values())
        assert count(store, asset_versions) == 2 * total
        assert count(store, version_inputs) == total
        assert count(store, step_logs) == 3 * total
        last = RUNS_PER_PROCESS - 1
        for w in range(PROCESSES):
            assert store.versions.head("a", branch=f"w{w}").id == f"w{w}v{last:05d}a"
            assert len(store.versions.list("a", limit=total)) == total
        finals = {f"w{w}v{last:05d}b" for w in range(PROCESSES)}
        assert store.versions.head("b", branch="shared").id in finals
    finally:
        store.close()


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'm.sqlite'}")
    try:
        with store.read() as c:
            assert c.execute(text("PRAGMA journal_mode")).scalar_one() == "wal"
            assert c.execute(text("PRAGMA busy_timeout")).scalar_one() >= 10_000
            assert c.execute(text("PRAGMA foreign_keys")).scalar_one() == 1
    finally:
        store.close()


def test_an_open_read_does_not_block_a_writer(store: MetadataStore) -> None:
    store.runs.create(make_run("before"), [])
    finished = threading.Event()

    def write() -> None:
        store.runs.create(make_run("during"), [])
        finished.set()

    with store.read() as c:
        assert c.execute(text("SELECT count(*) FROM runs")).scalar_one() == 1
        writer = threading.Thread(target=write)
        writer.start()
        assert finished.wait(timeout=10), "the writer waited on an open read transaction"
    writer.join()
    assert {r.id for r in store.runs.list()} == {"before", "during"}


def test_a_second_sqlite_writer_waits_for_the_first_instead_of_failing(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'm.sqlite'}")
    released_at: list[float] = []
    second_done_at: list[float] = []
    errors: list[BaseException] = []

    def second() -> None:
        try:
            store.runs.create(make_run("second"), [])
            second_done_at.append(time.monotonic())
        except BaseException as exc:  # reported below
            errors.append(exc)

    try:
        with store.write() as c:
            c.execute(text("SELECT 1"))
            thread = threading.Thread(target=second)
            thread.start()
            time.sleep(0.3)
            assert not second_done_at, "the second writer did not wait for the write lock"
            released_at.append(time.monotonic())
        thread.join(timeout=30)
        assert errors == []
        assert second_done_at and second_done_at[0] >= released_at[0]
        assert store.runs.get("second").id == "second"
    finally:
        store.close()

"""Functions the store tests run in spawned processes.

Kept apart from the test modules so that each child imports only what it needs.
"""

from __future__ import annotations

import os
import time
from typing import Any

from sqlalchemy import text

from headrace.store import open_store

from .builders import make_run, make_version, success

RUNS_PER_PROCESS = 40  # five write transactions each: 200 per process


def open_at_once(barrier: Any, results: Any, url: str, marker: str) -> None:
    """Open the store together with the others; log every migration actually run."""
    import alembic.command

    original = alembic.command.upgrade

    def recording_upgrade(*args: Any, **kwargs: Any) -> None:
        with open(marker, "a") as handle:
            handle.write(f"{os.getpid()}\n")
        original(*args, **kwargs)

    alembic.command.upgrade = recording_upgrade
    barrier.wait(timeout=60)
    store = open_store(url)
    try:
        with store.read() as connection:
            revision = connection.execute(text("SELECT version_num FROM alembic_version")).all()
        store.runs.create(make_run(), [("a", "a", None)])
    finally:
        store.close()
    results.put([row[0] for row in revision])


def write_runs(barrier: Any, results: Any, url: str, worker: int) -> None:
    """Record whole runs (create, start, two finished steps, status) as fast as possible."""
    store = open_store(url)
    written = 0
    try:
        barrier.wait(timeout=60)
        for i in range(RUNS_PER_PROCESS):
            run = make_run(f"w{worker}r{i:05d}", created_at=time.time())
            store.runs.create(run, [("a", "a", None), ("b", "b", None)])
            store.runs.step_started(run.id, "a", 1, time.time())
            a = make_version("a", version_id=f"w{worker}v{i:05d}a")
            logs = [("stdout", time.time(), f"{run.id} a {n}") for n in range(3)]
            store.runs.step_finished(success(run.id, "a", a, logs=logs), branch=f"w{worker}")
            # Every process moves the same head: the most contended row.
            b = make_version("b", version_id=f"w{worker}v{i:05d}b", inputs=[("a", a.id)])
            store.runs.step_finished(success(run.id, "b", b), branch="shared")
            store.runs.set_status(run.id, "success", ended_at=time.time())
            if store.runs.get(run.id).status != "success":
                raise AssertionError(f"run {run.id} did not read back as a success")
            written += 1
    except Exception as exc:
        results.put(("error", worker, f"{type(exc).__name__}: {exc}"))
        raise
    finally:
        store.close()
    results.put(("ok", worker, written))

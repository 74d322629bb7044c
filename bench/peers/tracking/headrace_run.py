"""headrace's side of the tracking bench (project venv), on the SQLite default.

- ``log``: a fresh workspace (``init_workspace`` + ``open_workspace``, its store created
  and migrated: ``store_s``); each run is ``with hr.start_run(...)``, ``calls`` calls of
  ``hr.log_metric("loss", v, step=i)``, and the ``with`` block's exit, which writes what
  is still buffered and marks the run finished (``log_metric`` buffers values and writes
  them every 1,000 values or every second, inside the loop).
- ``populate``: the search workload's runs, each ``start_run(name=..., params=...)`` plus
  one ``hr.log_metrics`` of its five metrics.
- ``search``: ``hr.search_runs(filter, experiments=["bench-search"], order_by=...,
  max_results=..., workspace=ws)`` (a thin wrapper of ``ws.store.tracking.search``);
  opening (``open_s``) is ``open_workspace`` plus the store's first use (SQLAlchemy's
  import, the schema-version check).

``import_s`` is ``import headrace``, its workspace-settings module and ``headrace.api``
(imported when a public function is first resolved; it brings SQLAlchemy and the store's
modules), as the quality runner counts it; a new store imports Alembic and runs the
migrations (``store_s``), an existing one at the current revision does neither.
"""

from __future__ import annotations

import time

T0 = time.perf_counter()

import sys  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as w  # noqa: E402

started = time.perf_counter()
import headrace as hr  # noqa: E402
from headrace.workspace.settings import init_workspace  # noqa: E402

hr.search_runs  # noqa: B018 - resolving the lazy export imports headrace.api (as for quality)
IMPORT_S = time.perf_counter() - started


class Headrace:
    tool = "headrace"
    version = w.library_version("headrace")
    variants = ("log_metric",)
    cases = ("all", "filtered", "top100")

    def __init__(self) -> None:
        self.ws: Any = None

    def open(self, store: Path, *, create: bool) -> None:
        if create:
            init_workspace(store)
        self.ws = hr.open_workspace(store)
        self.ws.store  # noqa: B018 - the store opens (and is created) on first use

    def log_run(self, variant: str, calls: int) -> tuple[str, dict[str, float]]:
        t0 = time.perf_counter()
        with hr.start_run(w.LOG_EXPERIMENT, workspace=self.ws) as run:
            t1 = time.perf_counter()
            for i in range(calls):
                hr.log_metric(w.METRIC, w.metric_value(i), step=i)
            t2 = time.perf_counter()
        t3 = time.perf_counter()
        return run.id, {"start_s": t1 - t0, "loop_s": t2 - t1, "end_s": t3 - t2}

    def stored_values(self, run_id: str) -> int:
        return len(self.ws.store.tracking.metric_history([run_id], [w.METRIC]))

    def add_run(self, name: str, params: dict[str, str], metrics: dict[str, float]) -> None:
        with hr.start_run(w.SEARCH_EXPERIMENT, name=name, params=params, workspace=self.ws):
            hr.log_metrics(metrics)

    def search(self, case: str) -> list[str]:
        filter_, order_by, max_results = w.CASES[case]
        page = hr.search_runs(
            filter_,
            experiments=[w.SEARCH_EXPERIMENT],
            order_by=order_by,
            max_results=max_results,
            workspace=self.ws,
        )
        return [r.name for r in page.runs]


if __name__ == "__main__":
    w.main(Headrace, t0=T0, import_s=IMPORT_S)

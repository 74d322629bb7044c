"""MLflow (its own venv) on a fresh SQLite tracking store, ``sqlite:///DIR/mlflow.db``.

As in ``../shared/peers/tracking-serving/``: synchronous logging (MLflow's default;
``MLFLOW_ENABLE_ASYNC_LOGGING=false`` is set explicitly) and no telemetry.

- ``log``: the store is created and migrated by the first client call (``store_s``);
  each run is ``with mlflow.start_run(experiment_id=...)`` and either ``calls`` calls
  of ``mlflow.log_metric("loss", v, step=i)`` (variant ``log_metric``) or one
  ``MlflowClient.log_batch`` of ``calls`` ``Metric`` objects, built inside the timed
  block (variant ``log_batch``). The first run also creates the experiment, as
  headrace's first ``start_run`` does.
- ``populate``: per run ``create_run`` + one ``log_batch`` (5 params, 5 metrics) +
  ``set_terminated``, as ``search_bench.py`` does.
- With ``BENCH_SERVER_URI`` set (``bench/team_server.py``), the same client talks to a
  tracking server at that URL instead (``BENCH_SERVER_TOKEN``: its bearer token).
- ``search``: ``MlflowClient.search_runs([experiment_id], filter, order_by=...,
  max_results=...)``; case ``all_pandas`` is ``mlflow.search_runs([experiment_id])``
  (all runs as a pandas DataFrame). The experiment's id is looked up by name on the
  first call, inside the timed cold call (headrace's search takes names).
"""

from __future__ import annotations

import time

T0 = time.perf_counter()

import os  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as w  # noqa: E402

started = time.perf_counter()
import mlflow  # noqa: E402
from mlflow import MlflowClient  # noqa: E402
from mlflow.entities import Metric, Param  # noqa: E402

IMPORT_S = time.perf_counter() - started


class MLflow:
    tool = "mlflow"
    version = mlflow.__version__
    variants = ("log_metric", "log_batch")
    cases = ("all", "filtered", "top100", "all_pandas")

    def __init__(self) -> None:
        self.client: Any = None
        self._experiments: dict[str, str] = {}

    def open(self, store: Path, *, create: bool) -> None:
        store.mkdir(parents=True, exist_ok=True)
        uri = f"sqlite:///{store.resolve() / 'mlflow.db'}"
        if os.environ.get("BENCH_SERVER_URI"):  # bench/team_server.py: a tracking server
            uri = os.environ["BENCH_SERVER_URI"]
            if os.environ.get("BENCH_SERVER_TOKEN"):
                os.environ["MLFLOW_TRACKING_TOKEN"] = os.environ["BENCH_SERVER_TOKEN"]
        mlflow.set_tracking_uri(uri)
        self.client = MlflowClient(uri)
        # The SQLite store is built (tables created, migrations run) on first use.
        self.client.search_experiments(max_results=1)

    def _experiment(self, name: str) -> str:
        if name not in self._experiments:
            found = self.client.get_experiment_by_name(name)
            self._experiments[name] = (
                found.experiment_id if found else self.client.create_experiment(name)
            )
        return self._experiments[name]

    def log_run(self, variant: str, calls: int) -> tuple[str, dict[str, float]]:
        t0 = time.perf_counter()
        with mlflow.start_run(experiment_id=self._experiment(w.LOG_EXPERIMENT)) as run:
            t1 = time.perf_counter()
            if variant == "log_metric":
                for i in range(calls):
                    mlflow.log_metric(w.METRIC, w.metric_value(i), step=i)
            else:
                stamp = int(time.time() * 1000)
                metrics = [Metric(w.METRIC, w.metric_value(i), stamp, i) for i in range(calls)]
                self.client.log_batch(run.info.run_id, metrics=metrics)
            t2 = time.perf_counter()
        t3 = time.perf_counter()
        return run.info.run_id, {"start_s": t1 - t0, "loop_s": t2 - t1, "end_s": t3 - t2}

    def stored_values(self, run_id: str) -> int:
        return len(self.client.get_metric_history(run_id, w.METRIC))

    def add_run(self, name: str, params: dict[str, str], metrics: dict[str, float]) -> None:
        run = self.client.create_run(self._experiment(w.SEARCH_EXPERIMENT), run_name=name)
        stamp = int(time.time() * 1000)
        self.client.log_batch(
            run.info.run_id,
            params=[Param(k, v) for k, v in params.items()],
            metrics=[Metric(k, v, stamp, 0) for k, v in metrics.items()],
        )
        self.client.set_terminated(run.info.run_id)

    def search(self, case: str) -> list[str]:
        filter_, order_by, max_results = w.CASES[case]
        experiment = self._experiment(w.SEARCH_EXPERIMENT)
        if case == "all_pandas":
            frame = mlflow.search_runs([experiment])
            return [str(name) for name in frame["tags.mlflow.runName"]]
        found = self.client.search_runs(
            [experiment],
            filter_ or "",
            order_by=[order_by] if order_by else None,
            max_results=max_results,
        )
        return [r.info.run_name for r in found]


if __name__ == "__main__":
    w.main(MLflow, t0=T0, import_s=IMPORT_S)

"""The Airflow side of the orchestration bench: one DAG, shaped by environment variables.

Airflow 3's ``dag.test()`` re-parses the configured DAG bundle and refuses to run a DAG that
it did not find there, so the DAG lives in this folder (the bench's ``dags_folder``) rather
than in the runner script. ``HEADRACE_BENCH_MODE`` (``chain`` or ``fan``) and
``HEADRACE_BENCH_N`` pick the shape; both the runner and the parse inside ``dag.test()`` see
the same values because they run in one process.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

from airflow.sdk import dag, task

MODE = os.environ.get("HEADRACE_BENCH_MODE", "chain")
N = int(os.environ.get("HEADRACE_BENCH_N", "1"))
DAG_ID = f"headrace_bench_{MODE}_{N}"


@task
def step(x: int) -> int:
    return x + 1


@dag(
    dag_id=DAG_ID,
    schedule=None,
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
)
def headrace_bench() -> None:
    if MODE == "chain":
        value = step.override(task_id="t0")(0)
        for i in range(1, N):
            value = step.override(task_id=f"t{i}")(value)
    else:
        for i in range(N):
            step.override(task_id=f"t{i}")(i)


bench_dag = headrace_bench()

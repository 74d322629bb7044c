"""Airflow 3: the chain and fan-out workloads as one DAG of TaskFlow tasks, run by ``dag.test()``.

Usage: ``python airflow_run.py chain|fan N``. ``dag.test()`` runs every task in this process
(no executor, no scheduler) against the metadata database, so ``AIRFLOW_HOME`` must hold a
migrated one (the bench runs ``airflow db migrate`` once per home). Since Airflow 3 only runs
a DAG that its DAG bundle yields, the DAG is defined in ``airflow_dags/`` and this script
points ``[core] dags_folder`` there unless the caller already set it.
"""

from __future__ import annotations

import importlib.util
import os
import time
from pathlib import Path
from types import ModuleType
from typing import Any

from _common import emit, expected, parse_args

DAGS_FOLDER = Path(__file__).resolve().parent / "airflow_dags"
DAG_FILE = DAGS_FOLDER / "headrace_bench_dag.py"


def load_dag_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("headrace_bench_dag", DAG_FILE)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {DAG_FILE}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def final_value(dag_run: Any, mode: str, n: int) -> int | None:
    """The chain's last value or the fan-out's sum, read back from XCom (None if unreadable)."""
    try:
        by_task = {ti.task_id: ti for ti in dag_run.get_task_instances()}
        ids = [f"t{n - 1}"] if mode == "chain" else [f"t{i}" for i in range(n)]
        return sum(int(by_task[t].xcom_pull(task_ids=t)) for t in ids)
    except Exception:  # XCom access is a compatibility API in Airflow 3; the state still counts
        return None


def main() -> None:
    args = parse_args("airflow_run.py chain|fan N")
    os.environ["HEADRACE_BENCH_MODE"] = args.mode
    os.environ["HEADRACE_BENCH_N"] = str(args.n)
    os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(DAGS_FOLDER))
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

    t0 = time.perf_counter()
    import airflow.sdk  # noqa: F401  (timed import)

    import_s = time.perf_counter() - t0

    cpu0, wall0 = time.process_time(), time.perf_counter()
    dag = load_dag_module().bench_dag
    dag_run = dag.test()
    run_s, run_cpu_s = time.perf_counter() - wall0, time.process_time() - cpu0
    state = str(dag_run.state)
    result = final_value(dag_run, args.mode, args.n)
    ok = state == "success" and result in (None, expected(args.mode, args.n))
    emit(import_s=import_s, run_s=run_s, run_cpu_s=run_cpu_s, ok=ok, state=state, result=result)


if __name__ == "__main__":
    main()

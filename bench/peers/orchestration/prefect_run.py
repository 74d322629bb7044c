"""Prefect 3: the chain and fan-out workloads as one flow of trivial tasks.

Usage: ``python prefect_run.py chain|fan N``. Run without ``PREFECT_API_URL`` so that Prefect
starts its ephemeral (temporary, SQLite-backed) server; the bench points ``PREFECT_HOME`` at
its cache and turns analytics off. The fan-out uses ``Task.map`` on the default thread-pool
task runner.
"""

from __future__ import annotations

import time

from _common import emit, expected, parse_args

_t_import = time.perf_counter()
from prefect import flow, task  # noqa: E402  (timed import)

IMPORT_S = time.perf_counter() - _t_import


@task
def step(x: int) -> int:
    return x + 1


@flow
def chain_flow(n: int) -> int:
    value = 0
    for _ in range(n):
        value = step(value)
    return value


@flow
def fan_flow(n: int) -> int:
    futures = step.map(list(range(n)))
    return sum(f.result() for f in futures)


def main() -> None:
    args = parse_args("prefect_run.py chain|fan N")
    cpu0, wall0 = time.process_time(), time.perf_counter()
    result = chain_flow(args.n) if args.mode == "chain" else fan_flow(args.n)
    run_s, run_cpu_s = time.perf_counter() - wall0, time.process_time() - cpu0
    ok = result == expected(args.mode, args.n)
    emit(import_s=IMPORT_S, run_s=run_s, run_cpu_s=run_cpu_s, ok=ok, result=result)


if __name__ == "__main__":
    main()

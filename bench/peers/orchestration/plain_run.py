"""Floor: the chain and fan-out workloads as a plain Python loop (no orchestrator).

Usage: ``python plain_run.py chain|fan N``. The fan-out uses a thread pool, as Prefect's
default task runner does.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from _common import emit, expected, parse_args


def step(x: int) -> int:
    return x + 1


def run(mode: str, n: int) -> int:
    if mode == "chain":
        value = 0
        for _ in range(n):
            value = step(value)
        return value
    with ThreadPoolExecutor() as pool:
        return sum(pool.map(step, range(n)))


def main() -> None:
    args = parse_args("plain_run.py chain|fan N")
    cpu0, wall0 = time.process_time(), time.perf_counter()
    result = run(args.mode, args.n)
    run_s, run_cpu_s = time.perf_counter() - wall0, time.process_time() - cpu0
    ok = result == expected(args.mode, args.n)
    emit(import_s=0.0, run_s=run_s, run_cpu_s=run_cpu_s, ok=ok, result=result)


if __name__ == "__main__":
    main()

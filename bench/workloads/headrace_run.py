"""Run one orchestration workload with headrace in-process; print one JSON line.

Usage: python headrace_run.py MODE N WORKSPACE [plain]

With ``plain`` it runs the same functions in a plain Python loop (the floor the
overhead per step is measured against).
"""

from __future__ import annotations

import json
import os
import sys
import time

mode, n, workspace = sys.argv[1], int(sys.argv[2]), sys.argv[3]
plain = len(sys.argv) > 4 and sys.argv[4] == "plain"
os.environ["BENCH_MODE"], os.environ["BENCH_N"] = mode, str(n)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

t_import = time.perf_counter()
import headrace as hr  # noqa: E402

import_s = time.perf_counter() - t_import
setup_s = 0.0
if plain:
    import orchestration_project as project

    cpu0, t0 = time.process_time(), time.perf_counter()
    if mode == "chain":
        x = project._first()
        for _ in range(1, n):
            x = project._next(x)
    else:
        tables = [project.small_table(i) for i in range(n)]
    ok = True
else:
    # Start-up (opening the store, importing and validating the project) is reported
    # apart from the run, whose cost per step is what the overhead target is about.
    t_setup = time.perf_counter()
    ws = hr.open_workspace(workspace)
    ws.graph  # noqa: B018
    ws.store  # noqa: B018
    setup_s = time.perf_counter() - t_setup
    cpu0, t0 = time.process_time(), time.perf_counter()
    result = hr.materialize(workspace=ws)
    ok = result.success and len(result.materialized) == n
run_s, cpu_s = time.perf_counter() - t0, time.process_time() - cpu0
print(
    json.dumps(
        {"import_s": import_s, "setup_s": setup_s, "run_s": run_s, "run_cpu_s": cpu_s, "ok": ok}
    )
)

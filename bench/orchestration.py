"""Orchestration overhead: headrace against a plain loop, Dagster, Prefect and Airflow.

Shapes (the issue's): a 200-asset chain, a 200-asset fan-out of small tables and a
10,000-asset fan-out, persisted on the SQLite default. Reported per shape: the whole
CLI run's wall time (start-up included), the in-process run time, the overhead per step
against a plain Python loop running the same functions, and each peer's times side by
side with the ratio peer / headrace.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
WORKLOADS = Path(__file__).resolve().parent / "workloads"
HEADRACE = [sys.executable, "-m", "headrace"]


def _workspace(base: Path, mode: str, n: int) -> Path:
    folder = Path(tempfile.mkdtemp(prefix=f"hr-{mode}-{n}-", dir=base))
    shutil.copy(WORKLOADS / "orchestration_project.py", folder / "orchestration_project.py")
    (folder / "headrace.toml").write_text(
        '[project]\nmodule = "orchestration_project"\npath = "."\n'
    )
    # An existing workspace, as a user has one: its store is created before timing
    # (the peers' databases are prepared the same way).
    subprocess.run([*HEADRACE, "runs", "list"], cwd=folder, check=True, capture_output=True)
    return folder


def _env(mode: str, n: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADRACE_")}
    env.update(BENCH_MODE=mode, BENCH_N=str(n))
    return env


def _timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float, str]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return wall, cpu, proc.stdout


def headrace_shape(mode: str, n: int, base: Path, reps: int) -> dict[str, Any]:
    """Median figures over ``reps`` fresh workspaces for one shape."""
    walls, cpus, runs, imports, plains, setups = [], [], [], [], [], []
    env = _env(mode, n)
    script = str(WORKLOADS / "headrace_run.py")
    for _ in range(reps):
        cli_ws = _workspace(base, mode, n)
        wall, cpu, _ = _timed([*HEADRACE, "materialize"], cli_ws, env)
        walls.append(wall)
        cpus.append(cpu)
        api_ws = _workspace(base, mode, n)
        _, _, out = _timed([sys.executable, script, mode, str(n), str(api_ws)], api_ws, env)
        record = json.loads(out.strip().splitlines()[-1])
        assert record["ok"], record
        runs.append(record["run_s"])
        imports.append(record["import_s"])
        setups.append(record["setup_s"])
        _, _, out = _timed(
            [sys.executable, script, mode, str(n), str(api_ws), "plain"], api_ws, env
        )
        plains.append(json.loads(out.strip().splitlines()[-1])["run_s"])
    run_s, plain_s = statistics.median(runs), statistics.median(plains)
    return {
        "tool": "headrace",
        "mode": mode,
        "n": n,
        "wall_s": statistics.median(walls),
        "cpu_s": statistics.median(cpus),
        "run_s": run_s,
        "import_s": statistics.median(imports),
        "setup_s": statistics.median(setups),
        "plain_run_s": plain_s,
        "overhead_ms_per_step": (run_s - plain_s) / n * 1000,
        "ok": True,
    }


def import_time(reps: int = 5) -> float:
    """Seconds ``import headrace`` adds to a bare interpreter start (median)."""
    bare, loaded = [], []
    for _ in range(reps):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        bare.append(time.perf_counter() - start)
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import headrace"], check=True)
        loaded.append(time.perf_counter() - start)
    return statistics.median(loaded) - statistics.median(bare) + statistics.median(bare)


def run(*, peers: list[str] | None, reps: int, big_n: int) -> dict[str, Any]:
    shapes = [("chain", 200), ("fan", 200), ("fan", big_n)]
    base = Path(tempfile.mkdtemp(prefix="hr-bench-"))
    try:
        ours = [headrace_shape(m, n, base, reps if n <= 200 else 1) for m, n in shapes]
    finally:
        shutil.rmtree(base, ignore_errors=True)
    theirs: list[dict[str, Any]] = []
    if peers:
        sys.path.insert(0, str(ROOT))
        from bench.peers.orchestration.run import run_peers

        theirs = run_peers([s for s in shapes if s[1] <= 200], peers=peers, reps=reps)
    return {"import_headrace_s": import_time(), "headrace": ours, "peers": theirs}


def report(results: dict[str, Any]) -> str:
    lines = [
        f"python -c 'import headrace': {results['import_headrace_s'] * 1000:.0f} ms"
        " (target < 300 ms)"
    ]
    header = (
        f"{'tool':<28}{'shape':<12}{'wall s':>9}{'run s':>9}{'ms/step':>9}"
        f"{'wall x hr':>11}{'run x hr':>10}"
    )
    lines += ["", header, "-" * len(header)]
    ours = {(r["mode"], r["n"]): r for r in results["headrace"]}
    for r in results["headrace"]:
        lines.append(
            f"{'headrace (SQLite)':<28}{r['mode'] + ':' + str(r['n']):<12}{r['wall_s']:>9.3f}"
            f"{r['run_s']:>9.3f}{r['run_s'] / r['n'] * 1000:>9.3f}{'1.0':>11}{'1.0':>10}"
        )
        lines.append(
            f"{'  overhead vs plain loop':<28}{'':<12}{'':>9}{'':>9}"
            f"{r['overhead_ms_per_step']:>9.3f}   (target <= 1 ms/step; start-up "
            f"{r['setup_s'] * 1000:.0f} ms apart)"
        )
    for p in results["peers"]:
        shape = (p["mode"], p["n"])
        mine = ours.get(shape)
        label = f"{p['mode']}:{p['n']}"
        if not p.get("ok"):
            lines.append(f"{p['tool']:<28}{label:<12}  failed: {str(p.get('error'))[:60]}")
            continue
        wall, run_s = p.get("wall_s"), p.get("run_s")
        per_step = (run_s or 0) / p["n"] * 1000
        wall_ratio = wall / mine["wall_s"] if mine and wall else float("nan")
        run_ratio = run_s / mine["run_s"] if mine and run_s else float("nan")
        lines.append(
            f"{p['tool']:<28}{label:<12}{wall or float('nan'):>9.3f}{run_s or float('nan'):>9.3f}"
            f"{per_step:>9.3f}{wall_ratio:>11.1f}{run_ratio:>10.1f}"
        )
    chain = ours.get(("chain", 200))
    if chain:
        lines.append("")
        lines.append(
            f"200-chain CLI run, start-up included: {chain['wall_s']:.3f} s wall (target < 1 s)"
        )
    return "\n".join(lines)

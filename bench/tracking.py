"""Experiment tracking: logging metric values and searching runs, against MLflow.

The workloads are those of ``../shared/peers/tracking-serving/`` (see
``bench/peers/tracking/_common.py``); every tool uses a SQLite store (headrace's default)
and runs in fresh subprocesses: headrace in the project venv, MLflow in its own
(``bench/peers/envs.py``), so imports and store opening cost the same way for everyone.

1. **Logging**: 10,000 values of one metric in one run, one ``log_metric`` call each
   (headrace and MLflow), and MLflow's ``log_batch`` of all 10,000 in one call. Each
   process creates a fresh store (``store_s``), then times a first, cold run (start the
   run, log, end it: every value is in the database afterwards) and ``warm_runs`` more
   runs in the same store; every run's stored values are counted afterwards (untimed).
   ``e2e`` = the process's first instant to the end of the cold run (import + store
   creation + the run). MLflow's one-by-one calls cost milliseconds each, so by default
   its runs make ``mlflow_calls`` (1,000) calls and the 10,000-value times are
   extrapolated from them: start + loop x (10,000 / calls) + end, labelled as such;
   ``--mlflow-calls 10000`` measures them in full.
2. **Search**: 1,000 runs with 5 params and 5 metrics each, created once per tool
   (``populate``, timed for information); then per query a fresh process opens the store
   (``open_s``) and times a cold first call and ``warm_calls`` repeats. Queries: all runs
   (one page of 1,000), ``metrics.m0 > 0.5 AND params.p1 = 'v3'``, the top 100 by
   ``metrics.m0 DESC``, and, MLflow only, ``mlflow.search_runs`` into pandas. Every
   tool's answer is checked against the runs the workload says match.

A hand-written floor (``sqlite3``, project venv: the standard library's ``sqlite3`` on a
minimal schema, headrace's pragmas and buffering policy, no validation) does the same work,
to show what the machine can do in the same run (its speed drifts by up to 2x over minutes).

Processes are interleaved (round after round over the tools), so drifting machine load
hits all of them alike. Figures are medians over ``reps`` processes (warm figures: over
all their warm repeats).

Targets (issue 5): 10,000 one-by-one values < 0.5 s; searching all 1,000 runs < 50 ms and
the filtered query < 10 ms (warm calls; MLflow's were measured the same way).

Usage: ``python bench/run_all.py --only tracking`` (or ``python bench/tracking.py
[--no-peers] [--peers mlflow,sqlite3] [--reps 3] [--mlflow-calls 1000]``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.peers import envs
from bench.peers.tracking import _common as w

RUNNERS = Path(__file__).resolve().parent / "peers" / "tracking"
PEERS = ("mlflow", "sqlite3")
LOCAL = {"headrace", "sqlite3"}  # run in the project venv
TARGET_LOG_S = 0.5
TARGET_ALL_S = 0.050
TARGET_FILTERED_S = 0.010
MLFLOW_CALLS = 1000
RUN_TIMEOUT_S = 3600.0
_SCRUB_PREFIXES = ("HEADRACE_", "MLFLOW_")
_SCRUB = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "DO_NOT_TRACK")
# Synchronous logging (MLflow's default, made explicit) and no usage telemetry, which
# would only add network attempts to MLflow's times.
_RUNNER_ENV = {
    "MLFLOW_ENABLE_ASYNC_LOGGING": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "PYTHONUNBUFFERED": "1",
}


@dataclass(frozen=True)
class Logger:
    """One logging measurement: a tool and the API it logs through."""

    tool: str
    variant: str
    label: str


LOGGERS = (
    Logger("headrace", "log_metric", "headrace log_metric"),
    Logger("mlflow", "log_metric", "mlflow log_metric"),
    Logger("mlflow", "log_batch", "mlflow log_batch (1 call)"),
    Logger("sqlite3", "log_metric", "sqlite3 (floor)"),
)
ONE_BY_ONE_PEER = LOGGERS[1]  # the slow one: --mlflow-calls per run, then extrapolated
QUERIES = {
    "all": "all runs (max_results=1000)",
    "filtered": f"filter {w.FILTER}",
    "top100": f"top {w.TOP} by {w.ORDER}",
    "all_pandas": "all runs as pandas (mlflow.search_runs)",
}
TOOL_CASES = {
    "headrace": ("all", "filtered", "top100"),
    "mlflow": tuple(QUERIES),
    "sqlite3": ("all", "filtered", "top100"),
}


def _say(message: str) -> None:
    print(f"[bench-tracking] {message}", file=sys.stderr, flush=True)


def peer_names(peers: list[str] | None) -> list[str]:
    """The tracking peers among ``peers`` (others ignored)."""
    return [p for p in PEERS if p in (peers or [])]


def _env() -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if k not in _SCRUB and not k.startswith(_SCRUB_PREFIXES)
    }
    env.update(_RUNNER_ENV)
    return env


def _runner(
    python: str, tool: str, args: list[str], cwd: Path, extra: dict[str, str] | None = None
) -> dict[str, Any]:
    cmd = [python, str(RUNNERS / f"{tool}_run.py"), *args]
    cwd.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    proc = subprocess.run(
        cmd,
        cwd=cwd,
        env={**_env(), **(extra or {})},
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )
    elapsed = time.perf_counter() - started
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stdout[-1500:] + "\n" + proc.stderr[-2500:]).strip()
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{tail}")
    record: dict[str, Any] = json.loads(lines[-1][len("RESULT ") :])
    record["process_s"] = round(elapsed, 3)
    return record


def _pythons(names: list[str]) -> tuple[dict[str, str], dict[str, str]]:
    pythons: dict[str, str] = {name: sys.executable for name in LOCAL}
    failed: dict[str, str] = {}
    for name in names:
        if name in LOCAL:
            continue
        status = envs.ensure_env(name)
        if status.ok and status.python:
            pythons[name] = status.python
        else:
            failed[name] = f"venv: {status.error}"
    return pythons, failed


def _median(values: list[float]) -> float:
    return statistics.median(values)


# --- logging ----------------------------------------------------------------------------------


def _extrapolate(run: dict[str, Any], calls: int, values: int) -> float:
    """A run's time for ``values`` calls from one of ``calls``: start + loop scaled + end."""
    if calls == values:
        return float(run["wall_s"])
    return float(run["start_s"] + run["loop_s"] * values / calls + run["end_s"])


def _log_summary(
    logger: Logger, records: list[dict[str, Any]], values: int, python: str
) -> dict[str, Any]:
    calls = records[0]["calls"]
    colds = [r["runs"][0] for r in records]
    warms = [run for r in records for run in r["runs"][1:]]
    cold_s = _median([_extrapolate(c, calls, values) for c in colds])
    warm_s = _median([_extrapolate(c, calls, values) for c in warms]) if warms else None
    e2e = [
        r["e2e_s"] - r["runs"][0]["wall_s"] + _extrapolate(r["runs"][0], calls, values)
        for r in records
    ]
    loop_runs = warms or colds
    return {
        "tool": logger.tool,
        "variant": logger.variant,
        "label": logger.label,
        "ok": True,
        "version": records[0]["version"],
        "python": python,
        "reps": len(records),
        "values": values,
        "calls_measured": calls,
        "extrapolated": calls != values,
        "cold_s": round(cold_s, 4),
        "warm_s": None if warm_s is None else round(warm_s, 4),
        "measured_cold_s": _median([c["wall_s"] for c in colds]),
        "measured_warm_s": _median([c["wall_s"] for c in warms]) if warms else None,
        "us_per_value": round(1e6 * _median([c["loop_s"] / calls for c in loop_runs]), 2),
        "cold_phases": {k: _median([c[k] for c in colds]) for k in ("start_s", "loop_s", "end_s")},
        "import_s": _median([r["import_s"] for r in records]),
        "store_s": _median([r["store_s"] for r in records]),
        "e2e_s": round(_median(e2e), 4),
        "measured_e2e_s": _median([r["e2e_s"] for r in records]),
        "cold_s_all": [c["wall_s"] for c in colds],
        "warm_s_all": [c["wall_s"] for c in warms],
        "records": records,
    }


def logging_bench(
    pythons: dict[str, str],
    failed: dict[str, str],
    names: list[str],
    work: Path,
    *,
    reps: int,
    values: int,
    mlflow_calls: int,
    warm_runs: int,
) -> list[dict[str, Any]]:
    loggers = [lg for lg in LOGGERS if lg.tool in names]
    errors: dict[str, str] = {}
    collected: dict[str, list[dict[str, Any]]] = {lg.label: [] for lg in loggers}
    for round_no in range(reps):
        for lg in loggers:
            if lg.tool in failed or lg.label in errors:
                continue
            calls = min(mlflow_calls, values) if lg == ONE_BY_ONE_PEER else values
            store = work / f"log-{lg.tool}-{lg.variant}-{round_no}"
            args = ["log", "--store", str(store), "--variant", lg.variant]
            args += ["--calls", str(calls), "--warm", str(warm_runs)]
            _say(f"logging: {lg.label}, {calls:,} values, run {round_no + 1}/{reps}")
            try:
                record = _runner(pythons[lg.tool], lg.tool, args, store)
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                errors[lg.label] = str(exc)
                _say(f"{lg.label}: FAILED: {str(exc).splitlines()[0]}")
                continue
            finally:
                shutil.rmtree(store, ignore_errors=True)
            collected[lg.label].append(record)
            cold = record["runs"][0]
            _say(
                f"{lg.label}: cold {cold['wall_s']:.3f} s, "
                f"warm {[r['wall_s'] for r in record['runs'][1:]]}, e2e {record['e2e_s']:.2f} s"
            )
    out = []
    for lg in loggers:
        error = failed.get(lg.tool) or errors.get(lg.label)
        if error:
            out.append({"tool": lg.tool, "variant": lg.variant, "label": lg.label, "ok": False})
            out[-1]["error"] = error
        else:
            out.append(_log_summary(lg, collected[lg.label], values, pythons[lg.tool]))
    return out


# --- search -----------------------------------------------------------------------------------


def search_bench(
    pythons: dict[str, str],
    failed: dict[str, str],
    names: list[str],
    work: Path,
    *,
    reps: int,
    warm_calls: int,
) -> dict[str, Any]:
    tools = [n for n in names if n not in failed]
    populated: dict[str, dict[str, Any]] = {}
    errors = dict(failed)
    for tool in tools:
        _say(f"search: {tool} creates {w.RUNS:,} runs")
        try:
            populated[tool] = _runner(
                pythons[tool], tool, ["populate", "--store", str(work / f"search-{tool}")], work
            )
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            errors[tool] = str(exc)
            _say(f"{tool}: populate FAILED: {str(exc).splitlines()[0]}")
            continue
        _say(f"{tool}: {w.RUNS:,} runs in {populated[tool]['populate_s']:.1f} s")
    collected: dict[tuple[str, str], list[dict[str, Any]]] = {}
    query_errors: dict[tuple[str, str], str] = {}
    for round_no in range(reps):
        for case in QUERIES:
            for tool in tools:
                if tool in errors or case not in TOOL_CASES[tool]:
                    continue
                if (tool, case) in query_errors:
                    continue
                args = ["search", "--store", str(work / f"search-{tool}"), "--case", case]
                args += ["--warm", str(warm_calls)]
                try:
                    record = _runner(pythons[tool], tool, args, work)
                except (RuntimeError, subprocess.TimeoutExpired) as exc:
                    query_errors[(tool, case)] = str(exc)
                    _say(f"{tool} {case}: FAILED: {str(exc).splitlines()[0]}")
                    continue
                collected.setdefault((tool, case), []).append(record)
                _say(
                    f"search {case} ({round_no + 1}/{reps}): {tool} cold "
                    f"{1000 * record['cold_s']:.1f} ms, warm median "
                    f"{1000 * _median(record['warm_s'] or [record['cold_s']]):.1f} ms, "
                    f"{record['n_results']} runs{'' if record['same'] else ' (WRONG RUNS)'}"
                )
    queries: dict[str, list[dict[str, Any]]] = {}
    for case in QUERIES:
        rows = []
        for tool in names:
            if case not in TOOL_CASES[tool]:
                continue
            broken = errors.get(tool) or query_errors.get((tool, case))
            if broken:
                rows.append({"tool": tool, "ok": False, "error": broken})
                continue
            records = collected[(tool, case)]
            warm = [s for r in records for s in r["warm_s"]]
            rows.append(
                {
                    "tool": tool,
                    "ok": True,
                    "version": records[0]["version"],
                    "reps": len(records),
                    "cold_s": _median([r["cold_s"] for r in records]),
                    "warm_s": _median(warm) if warm else None,
                    "warm_min_s": min(warm) if warm else None,
                    "open_s": _median([r["open_s"] for r in records]),
                    "import_s": _median([r["import_s"] for r in records]),
                    "n_results": records[0]["n_results"],
                    "n_expected": records[0]["n_expected"],
                    "same": all(r["same"] for r in records),
                    "cold_s_all": [r["cold_s"] for r in records],
                    "warm_s_all": warm,
                    "query": records[0]["query"],
                }
            )
        queries[case] = rows
    return {
        "runs": w.RUNS,
        "params": w.PARAMS,
        "metrics": w.METRICS,
        "warm_calls": warm_calls,
        "populate": {
            t: {"populate_s": p["populate_s"], "check": p["check"], "version": p["version"]}
            for t, p in populated.items()
        },
        "queries": queries,
    }


# --- all of it --------------------------------------------------------------------------------


def run(
    *,
    peers: list[str] | None,
    reps: int = 3,
    mlflow_calls: int = MLFLOW_CALLS,
    values: int = w.VALUES,
    warm_runs: int = 2,
    warm_calls: int = 5,
) -> dict[str, Any]:
    """headrace and the named tracking peers (None or []: headrace only), side by side."""
    names = ["headrace", *peer_names(peers)]
    pythons, failed = _pythons(names)
    work = Path(tempfile.mkdtemp(prefix="hr-bench-tracking-"))
    load = [round(os.getloadavg()[0], 2)]
    try:
        logs = logging_bench(
            pythons,
            failed,
            names,
            work,
            reps=reps,
            values=values,
            mlflow_calls=mlflow_calls,
            warm_runs=warm_runs,
        )
        load.append(round(os.getloadavg()[0], 2))
        found = search_bench(pythons, failed, names, work, reps=reps, warm_calls=warm_calls)
        load.append(round(os.getloadavg()[0], 2))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results = {
        "values": values,
        "mlflow_calls": mlflow_calls,
        "reps": reps,
        "warm_runs": warm_runs,
        "cpus": os.cpu_count(),
        "loadavg": load,
        "logging": logs,
        "search": found,
    }
    results["verdict"] = _verdict(results)
    return results


def _verdict(results: dict[str, Any]) -> dict[str, Any]:
    logs = {t["label"]: t for t in results["logging"] if t.get("ok")}
    hr = logs.get(LOGGERS[0].label)
    out: dict[str, Any] = {}
    if hr is not None:
        out["log_cold_s"] = hr["cold_s"]
        out["log_ok"] = hr["cold_s"] < TARGET_LOG_S
        out["log_warm_ok"] = hr["warm_s"] is None or hr["warm_s"] < TARGET_LOG_S
        out["log_e2e_s"] = hr["e2e_s"]
        out["log_e2e_ok"] = hr["e2e_s"] < TARGET_LOG_S
        for lg in LOGGERS[1:3]:
            peer = logs.get(lg.label)
            if peer is not None:
                out[f"x_{lg.tool}_{lg.variant}"] = round(peer["cold_s"] / hr["cold_s"], 1)
    queries = results["search"]["queries"]
    same = True
    for case, key, target in (("all", "all", TARGET_ALL_S), ("filtered", "filtered", None)):
        rows = {r["tool"]: r for r in queries.get(case, []) if r.get("ok")}
        mine = rows.get("headrace")
        if mine is None:
            continue
        limit = target if target is not None else TARGET_FILTERED_S
        out[f"search_{key}_warm_s"] = mine["warm_s"]
        out[f"search_{key}_ok"] = mine["warm_s"] is not None and mine["warm_s"] < limit
        peer = rows.get("mlflow")
        if peer is not None and mine["warm_s"]:
            out[f"x_mlflow_search_{key}"] = round(peer["warm_s"] / mine["warm_s"], 1)
        floor = rows.get("sqlite3")
        if floor is not None and floor["warm_s"]:
            out[f"search_{key}_floor_s"] = floor["warm_s"]
    for rows_ in queries.values():
        same = same and all(r["same"] for r in rows_ if r.get("ok"))
    out["same_runs_everywhere"] = same
    needed = ("log_ok", "search_all_ok", "search_filtered_ok", "same_runs_everywhere")
    out["ok"] = all(out.get(k) is True for k in needed)
    return out


# --- the report ---------------------------------------------------------------------------------


def _mark(ok: bool | None) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "FAIL")


def _x(value: float | None, base: float | None) -> str:
    return f"{value / base:.1f}" if value and base else "-"


def report(results: dict[str, Any]) -> str:
    values = results["values"]
    logs = results["logging"]
    hr = next((t for t in logs if t["label"] == LOGGERS[0].label and t.get("ok")), None)
    lines = [
        f"logging: {values:,} values of one metric in one run, a fresh SQLite store per process, "
        f"{results['reps']} processes per row; {results['cpus']} CPUs, load average "
        + " / ".join(f"{x:.1f}" for x in results["loadavg"]),
        "cold = the process's first run: start it, log, end it (every value written); "
        f"warm = the {results['warm_runs']} later runs in the same process",
        "e2e = from the process's first instant to the end of the cold run: import + store "
        "creation + cold run; x hr = tool / headrace",
    ]
    header = (
        f"{'tool / API':<28}{'version':<9}{'calls':>8}{'cold s':>9}{'x hr':>7}{'warm s':>9}"
        f"{'x hr':>7}{'us/value':>10}{'import s':>10}{'store s':>9}{'e2e s':>8}"
    )
    lines += ["", header, "-" * len(header)]
    notes = []
    for t in logs:
        if not t.get("ok"):
            lines.append(f"{t['label']:<28}failed: {str(t.get('error')).splitlines()[0][:90]}")
            continue
        star = "*" if t["extrapolated"] else ""
        cold = f"{t['cold_s']:.3f}{star}"
        warm = f"{t['warm_s']:.3f}{star}" if t["warm_s"] is not None else "-"
        e2e = f"{t['e2e_s']:.2f}{star}"
        lines.append(
            f"{t['label']:<28}{t['version']:<9}{t['calls_measured']:>8,}"
            f"{cold:>9}{_x(t['cold_s'], hr and hr['cold_s']):>7}"
            f"{warm:>9}{_x(t['warm_s'], hr and hr['warm_s']):>7}{t['us_per_value']:>10.1f}"
            f"{t['import_s']:>10.2f}{t['store_s']:>9.2f}{e2e:>8}"
        )
        if t["extrapolated"]:
            notes.append(
                f"* {t['label']}: measured with {t['calls_measured']:,} calls per run "
                f"(cold {t['measured_cold_s']:.3f} s); the {values:,}-value times are "
                f"EXTRAPOLATED: start + loop x {values / t['calls_measured']:g} + end"
            )
    lines += notes
    found = results["search"]
    lines += [
        "",
        f"search: {found['runs']:,} runs x {found['params']} params x {found['metrics']} metrics; "
        "open = opening the store in a fresh process; cold = its first query; warm = median "
        f"of {found['warm_calls']} repeats x {results['reps']} processes (best: the fastest of "
        "them); x hr = tool / headrace",
    ]
    header = (
        f"{'query':<50}{'tool':<10}{'runs':>6}{'cold ms':>9}{'warm ms':>9}{'x hr':>7}"
        f"{'best ms':>9}{'open s':>8}  same runs"
    )
    lines += ["", header, "-" * (len(header) + 4)]
    for case, label in QUERIES.items():
        rows = found["queries"].get(case, [])
        base = next((r for r in rows if r["tool"] == "headrace" and r.get("ok")), None)
        for i, r in enumerate(rows):
            shown = label if i == 0 else ""  # the query's name on its first row only
            if not r.get("ok"):
                lines.append(f"{shown:<50}{r['tool']:<10}failed: {str(r['error'])[:60]}")
                continue
            warm = r["warm_s"] if r["warm_s"] is not None else r["cold_s"]
            lines.append(
                f"{shown:<50}{r['tool']:<10}{r['n_results']:>6}{1000 * r['cold_s']:>9.1f}"
                f"{1000 * warm:>9.1f}{_x(warm, base and base['warm_s']):>7}"
                f"{1000 * (r['warm_min_s'] or r['cold_s']):>9.1f}"
                f"{r['open_s']:>8.2f}  {'yes' if r['same'] else 'NO'}"
            )
    pops = ", ".join(f"{t} {p['populate_s']:.1f} s" for t, p in found["populate"].items())
    lines.append(f"creating the {found['runs']:,} runs (for information): {pops}")
    v = results["verdict"]
    lines.append("")
    if hr is not None:
        lines.append(
            f"target {values:,} log_metric calls < {TARGET_LOG_S:g} s (cold run: start, log, "
            f"end): {hr['cold_s']:.3f} s {_mark(v['log_ok'])}; warm {hr['warm_s']:.3f} s "
            f"{_mark(v['log_warm_ok'])}"
        )
        lines.append(
            f"  stricter, e2e with import and store creation: {hr['e2e_s']:.3f} s "
            f"{_mark(v['log_e2e_ok'])} (import {hr['import_s']:.3f} s; new store "
            f"{hr['store_s']:.3f} s, Alembic's import and the migrations)"
        )
        for lg in LOGGERS[1:3]:
            ratio = v.get(f"x_{lg.tool}_{lg.variant}")
            peer = next((t for t in logs if t["label"] == lg.label and t.get("ok")), None)
            if ratio is not None and peer is not None:
                extra = " (extrapolated)" if peer["extrapolated"] else ""
                lines.append(f"  vs {lg.label}: {ratio:g}x faster, cold runs{extra}")
    for case, target in (("all", TARGET_ALL_S), ("filtered", TARGET_FILTERED_S)):
        warm = v.get(f"search_{case}_warm_s")
        if warm is None:
            lines.append(f"target search {case} < {1000 * target:g} ms: not measured")
            continue
        ratio = v.get(f"x_mlflow_search_{case}")
        vs = f"; MLflow {ratio:g}x slower" if ratio is not None else ""
        floor = v.get(f"search_{case}_floor_s")
        if floor:
            vs += f"; sqlite3 floor {1000 * floor:.1f} ms (headrace {warm / floor:.1f}x it)"
        lines.append(
            f"target search {case} < {1000 * target:g} ms (warm): {1000 * warm:.1f} ms "
            f"{_mark(v[f'search_{case}_ok'])}{vs}"
        )
    lines.append(
        "same runs returned by every tool, as the workload says: "
        + ("yes" if v["same_runs_everywhere"] else "NO - see the JSON")
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--no-peers", action="store_true", help="headrace only")
    parser.add_argument("--peers", default=",".join(PEERS))
    parser.add_argument("--reps", type=int, default=3, help="fresh processes per measurement")
    parser.add_argument(
        "--mlflow-calls",
        type=int,
        default=MLFLOW_CALLS,
        help="MLflow log_metric calls per run (fewer than 10,000: extrapolated)",
    )
    parser.add_argument("--warm-runs", type=int, default=2, help="logging runs after the cold one")
    parser.add_argument("--warm-calls", type=int, default=5, help="queries after the cold one")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = parser.parse_args(argv)
    peers = None if args.no_peers else [p for p in args.peers.split(",") if p]
    results = run(
        peers=peers,
        reps=args.reps,
        mlflow_calls=args.mlflow_calls,
        warm_runs=args.warm_runs,
        warm_calls=args.warm_calls,
    )
    print(report(results))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

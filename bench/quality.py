"""Data quality: ``hr.validate`` against Great Expectations 1.x, Pandera and hand-written floors.

The workload (the quality issue's): a 5,000,000-row, 8-column orders frame (seed 42) and a
suite of 8 checks: id not null and unique, amount between 0 and 10,000, category in a set,
e-mail matches a regex, row count between 4M and 6M, ts not null, mean of amount between
4,500 and 5,500. The data hold exactly two failures: 100 amounts out of range and 100
malformed e-mails (10% of e-mails are null, which the regex check lets pass).

Every measurement is one fresh subprocess (``bench/peers/quality/*_run.py``) that makes
the frame, then times one validation call: wall seconds, and peak extra RSS = the RSS
high-water mark (``VmHWM``, reset through ``/proc/self/clear_refs`` just before the call)
minus the RSS before it. Imports are not timed for any tool (reported apart).

- headrace: ``hr.validate(df, suite)`` on the pandas frame, conversion included; project
  venv; ``reps`` processes, each with a second, warm call reported for information.
- Great Expectations 1.x: ephemeral context, pandas data source, suite and validation
  definition all built inside the timed call; its own venv (pandas < 3); ``gx_reps``.
- Pandera (pandas backend): ``schema.validate(df, lazy=True)``; its own venv (pandas 3
  with pyarrow, as the project venv has); ``reps``.
- Floors, project venv: one hand-written Polars ``select`` (conversion from pandas
  included) and one DuckDB aggregate query over the pandas frame; ``reps``.

Runs are interleaved (round after round over the tools), so drifting machine load hits all
of them alike. Figures are medians over the runs. Each tool's failures are mapped onto the
suite's check names and compared with the expected two; the frames' value fingerprints are
compared across venvs.

Targets: headrace < 1.0 s wall and < 300 MB extra; >= 8x faster than Great Expectations
and >= 2.5x faster than Pandera; the same failures as both.

Usage: ``python bench/run_all.py --only quality`` (or ``python bench/quality.py
[--peers great_expectations,pandera,polars,duckdb] [--reps 3] [--gx-reps 1]``).
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

RUNNERS = Path(__file__).resolve().parent / "peers" / "quality"
ROWS = 5_000_000
ROWS_MIN, ROWS_MAX = 4_000_000, 6_000_000
EXPECTED_FAILURES = {"amount_range": 100, "email_regex": 100}
TARGET_WALL_S = 1.0
TARGET_EXTRA_MB = 300.0
TARGET_X_GX = 8.0
TARGET_X_PANDERA = 2.5
RUN_TIMEOUT_S = 1800.0
# Inherited variables that would point a runner at someone else's packages, and
# Great Expectations' usage analytics, which would only add network attempts to its time.
_SCRUB = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
_RUNNER_ENV = {"GX_ANALYTICS_ENABLED": "false", "PYTHONUNBUFFERED": "1"}


@dataclass(frozen=True)
class Tool:
    name: str
    family: str | None  # a key of envs.PEERS; None: the project venv
    script: str
    floor: bool = False


TOOLS: dict[str, Tool] = {
    "headrace": Tool("headrace", None, "headrace_run.py"),
    "great_expectations": Tool("great_expectations", "great_expectations", "gx_run.py"),
    "pandera": Tool("pandera", "pandera", "pandera_run.py"),
    "polars": Tool("polars", None, "polars_run.py", floor=True),
    "duckdb": Tool("duckdb", None, "duckdb_run.py", floor=True),
}
PEERS = tuple(name for name in TOOLS if name != "headrace")
ALIASES = {"gx": "great_expectations", "great-expectations": "great_expectations"}


def _say(message: str) -> None:
    print(f"[bench-quality] {message}", file=sys.stderr, flush=True)


def peer_names(peers: list[str] | None) -> list[str]:
    """The quality peers among ``peers`` (aliases resolved, others ignored), in TOOLS order."""
    wanted = {ALIASES.get(p, p) for p in peers or []}
    return [p for p in PEERS if p in wanted]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SCRUB}
    env.update(_RUNNER_ENV)
    return env


def _run_once(python: str, tool: Tool, rows: int, calls: int, cwd: Path) -> dict[str, Any]:
    cmd = [python, str(RUNNERS / tool.script), "--rows", str(rows), "--calls", str(calls)]
    started = time.perf_counter()
    proc = subprocess.run(
        cmd, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=RUN_TIMEOUT_S
    )
    elapsed = time.perf_counter() - started
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stdout[-1500:] + "\n" + proc.stderr[-2500:]).strip()
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{tail}")
    record: dict[str, Any] = json.loads(lines[-1][len("RESULT ") :])
    record["process_s"] = round(elapsed, 2)
    return record


def expected_failures(rows: int) -> dict[str, int | None]:
    """What every tool must report: the two injected failures (and the row count off 5M)."""
    found: dict[str, int | None] = dict(EXPECTED_FAILURES)
    if not ROWS_MIN <= rows <= ROWS_MAX:
        found["row_count"] = None
    return found


def _summary(tool: Tool, runs: list[dict[str, Any]], python: str) -> dict[str, Any]:
    firsts = [r["calls"][0] for r in runs]
    warms = [r["calls"][1] for r in runs if len(r["calls"]) > 1]
    failures = [r["calls"][0]["failures"] for r in runs] + [c["failures"] for c in warms]
    consistent = all(f == failures[0] for f in failures)
    first = runs[0]
    return {
        "tool": tool.name,
        "ok": True,
        "floor": tool.floor,
        "venv": "project" if tool.family is None else tool.family,
        "python": python,
        "version": first["version"],
        "pandas": first.get("pandas"),
        "reps": len(runs),
        "wall_s": statistics.median(c["wall_s"] for c in firsts),
        "wall_s_all": [c["wall_s"] for c in firsts],
        "cpu_s": statistics.median(c["cpu_s"] for c in firsts),
        "peak_extra_mib": statistics.median(c["peak_extra_mib"] for c in firsts),
        "peak_extra_mib_all": [c["peak_extra_mib"] for c in firsts],
        "warm_wall_s": statistics.median(c["wall_s"] for c in warms) if warms else None,
        "warm_peak_extra_mib": statistics.median(c["peak_extra_mib"] for c in warms)
        if warms
        else None,
        "import_s": statistics.median(r["import_s"] for r in runs),
        "generate_s": statistics.median(r["generate_s"] for r in runs),
        "failures": failures[0],
        "failures_consistent": consistent,
        "same_failures": consistent and failures[0] == expected_failures(first["rows"]),
        "fingerprint": first["fingerprint"],
        "dtypes": first["dtypes"],
        "memory_method": firsts[0]["memory_method"],
        "runs": runs,
    }


def run(
    *, peers: list[str] | None, reps: int = 3, gx_reps: int = 1, rows: int = ROWS
) -> dict[str, Any]:
    """headrace and the named quality peers (None or []: headrace only), side by side."""
    names = ["headrace", *peer_names(peers)]
    pythons: dict[str, str] = {}
    failed: dict[str, str] = {}
    for name in names:
        family = TOOLS[name].family
        if family is None:
            pythons[name] = sys.executable
            continue
        status = envs.ensure_env(family)
        if status.ok and status.python:
            pythons[name] = status.python
        else:
            failed[name] = f"venv: {status.error}"
    wanted = {n: (gx_reps if n == "great_expectations" else reps) for n in names}
    collected: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    work = Path(tempfile.mkdtemp(prefix="hr-bench-quality-"))
    try:
        for round_no in range(max(wanted.values())):
            for name in names:
                if name in failed or round_no >= wanted[name]:
                    continue
                tool = TOOLS[name]
                calls = 1 if name == "great_expectations" else 2
                _say(f"{name}: run {round_no + 1}/{wanted[name]} ({rows:,} rows)")
                try:
                    record = _run_once(pythons[name], tool, rows, calls, work)
                except (RuntimeError, subprocess.TimeoutExpired) as exc:
                    failed[name] = str(exc)
                    _say(f"{name}: FAILED: {str(exc).splitlines()[0]}")
                    continue
                collected[name].append(record)
                first = record["calls"][0]
                _say(
                    f"{name}: {first['wall_s']:.3f} s, +{first['peak_extra_mib']:.0f} MiB, "
                    f"failures {first['failures']}"
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    tools: list[dict[str, Any]] = []
    for name in names:
        if name in failed:
            tool = TOOLS[name]
            tools.append({"tool": name, "ok": False, "floor": tool.floor, "error": failed[name]})
        else:
            tools.append(_summary(TOOLS[name], collected[name], pythons[name]))
    return {
        "rows": rows,
        "columns": 8,
        "checks": 8,
        "expected_failures": expected_failures(rows),
        "cpus": os.cpu_count(),
        "tools": tools,
        "verdict": _verdict(tools),
    }


def _verdict(tools: list[dict[str, Any]]) -> dict[str, Any]:
    by = {t["tool"]: t for t in tools if t.get("ok")}
    hr = by.get("headrace")
    if hr is None:
        return {"ok": False, "reason": "headrace did not run"}
    prints = {t["fingerprint"] for t in by.values()}
    out: dict[str, Any] = {
        "wall_s": hr["wall_s"],
        "wall_ok": hr["wall_s"] < TARGET_WALL_S,
        "peak_extra_mib": hr["peak_extra_mib"],
        "memory_ok": hr["peak_extra_mib"] < TARGET_EXTRA_MB,
        "same_data_everywhere": len(prints) == 1,
    }
    for name, target in (("great_expectations", TARGET_X_GX), ("pandera", TARGET_X_PANDERA)):
        peer = by.get(name)
        if peer is None:
            out[f"x_{name}"] = None
            continue
        ratio = peer["wall_s"] / hr["wall_s"]
        out[f"x_{name}"] = round(ratio, 2)
        out[f"x_{name}_ok"] = ratio >= target
        out[f"same_failures_as_{name}"] = hr["same_failures"] and peer["same_failures"]
    needed = ["wall_ok", "memory_ok", "same_data_everywhere"]
    for name in ("great_expectations", "pandera"):
        needed += [f"x_{name}_ok", f"same_failures_as_{name}"]
    out["ok"] = all(out.get(key) is True for key in needed)
    return out


def _failures_text(failures: dict[str, Any]) -> str:
    if not failures:
        return "none"
    return ", ".join(f"{k}:{'agg' if v is None else v}" for k, v in sorted(failures.items()))


def report(results: dict[str, Any]) -> str:
    tools = results["tools"]
    hr = next((t for t in tools if t["tool"] == "headrace" and t.get("ok")), None)
    lines = [
        f"{results['rows']:,} rows x {results['columns']} columns, {results['checks']} checks; "
        f"expected failures: {_failures_text(results['expected_failures'])}; "
        f"{results['cpus']} CPUs",
        "wall = one cold validation call (median over runs); extra = peak RSS during it "
        "minus RSS before (MiB); x hr = tool / headrace",
    ]
    header = (
        f"{'tool':<22}{'version':<10}{'venv (pandas)':<29}{'runs':>5}{'wall s':>9}{'x hr':>7}"
        f"{'extra MiB':>11}{'x hr':>7}{'warm s':>8}{'import s':>10}  failures reported"
    )
    lines += ["", header, "-" * (len(header) + 20)]
    for t in tools:
        label = t["tool"] + (" (floor)" if t.get("floor") else "")
        if not t.get("ok"):
            lines.append(f"{label:<22}failed: {str(t.get('error')).splitlines()[0][:90]}")
            continue
        venv = t["venv"] + (f" ({t['pandas']})" if t.get("pandas") else "")
        x_wall = f"{t['wall_s'] / hr['wall_s']:.1f}" if hr else "-"
        x_mem = (
            f"{t['peak_extra_mib'] / hr['peak_extra_mib']:.1f}"
            if hr and hr["peak_extra_mib"] > 0
            else "-"
        )
        warm = f"{t['warm_wall_s']:.3f}" if t.get("warm_wall_s") is not None else "-"
        same = "same" if t["same_failures"] else "DIFFERENT"
        if not t["failures_consistent"]:
            same += " (varied between runs)"
        lines.append(
            f"{label:<22}{t['version']:<10}{venv:<29}{t['reps']:>5}{t['wall_s']:>9.3f}"
            f"{x_wall:>7}{t['peak_extra_mib']:>11.1f}{x_mem:>7}{warm:>8}{t['import_s']:>10.2f}"
            f"  {_failures_text(t['failures'])} [{same}]"
        )
    v = results["verdict"]
    if hr is None:
        lines += ["", "headrace did not run: no verdict"]
        return "\n".join(lines)

    def mark(ok: bool | None) -> str:
        return "n/a" if ok is None else ("PASS" if ok else "FAIL")

    lines += [
        "",
        f"target wall < {TARGET_WALL_S:.1f} s: {hr['wall_s']:.3f} s {mark(v['wall_ok'])}",
        f"target extra < {TARGET_EXTRA_MB:.0f} MB: {hr['peak_extra_mib']:.1f} MiB "
        f"{mark(v['memory_ok'])}",
    ]
    for name, target in (("great_expectations", TARGET_X_GX), ("pandera", TARGET_X_PANDERA)):
        ratio = v.get(f"x_{name}")
        if ratio is None:
            lines.append(f"target >= {target:g}x faster than {name}: not measured")
            continue
        lines.append(
            f"target >= {target:g}x faster than {name}: {ratio:.1f}x {mark(v[f'x_{name}_ok'])}; "
            f"same failures: {mark(v[f'same_failures_as_{name}'])}"
        )
    lines.append(
        "same data in every venv (value fingerprint): "
        + ("yes" if v["same_data_everywhere"] else "NO - compare the fingerprints in the JSON")
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--no-peers", action="store_true", help="headrace only")
    parser.add_argument("--peers", default=",".join(PEERS))
    parser.add_argument("--reps", type=int, default=3, help="runs of headrace, Pandera, floors")
    parser.add_argument("--gx-reps", type=int, default=1, help="runs of Great Expectations")
    parser.add_argument("--rows", type=int, default=ROWS)
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = parser.parse_args(argv)
    peers = None if args.no_peers else [p for p in args.peers.split(",") if p]
    results = run(peers=peers, reps=args.reps, gx_reps=args.gx_reps, rows=args.rows)
    print(report(results))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

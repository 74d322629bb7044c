"""Drift: headrace's ``DriftDetector`` against Evidently's ``DataDriftPreset``.

The workload of ``../shared/peers/drift/`` (``gen.py``, ``ev_run.py``), reproduced in
``bench/workloads/drift_data.py``: a reference and a current frame of 1,000,000 rows x
20 columns (15 numeric, 5 categorical with 20 levels), five columns shifted by
different amounts (n0 +0.5 sd, n1 scaled 1.5, n2 +0.05 sd, c0 strongly reweighted, c1
by 1% of its mass). Each side builds the same pandas frames in its own process:

- **headrace** (project venv, ``bench/peers/drift/headrace_run.py``):
  ``DriftDetector().fit(reference).score(current)`` with every default;
- **Evidently** (its own venv with pandas < 3, ``bench/peers/drift/evidently_run.py``):
  ``Report([DataDriftPreset()], include_tests=True).run(current, reference)`` with the
  numeric and categorical columns declared.

Figures per tool: CPU seconds of the timed pass (``time.process_time``: every thread of
the process), wall seconds, and the extra memory (peak RSS minus the RSS once the data
exists) against the data's size (pandas ``memory_usage(deep=True)`` of both frames in
the headrace process). Then, column by column, the test each chose, its score and
whether it flagged the column.

Targets (issue 7): headrace takes at most a tenth of Evidently's CPU time, its extra
memory stays under twice the data's size, and both choose the same tests and flag the
same columns.

Usage: ``python bench/run_all.py --only drift`` or ``python bench/drift.py [--rows
1000000] [--reps 1] [--no-peers]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.peers import envs

PEERS = ("evidently",)
ROWS = 1_000_000
HERE = Path(__file__).resolve().parent / "peers" / "drift"
#: Evidently's method names against headrace's
SAME_METHOD = {
    "wasserstein": {"wasserstein", "Wasserstein distance (normed)"},
    "jensen_shannon": {"jensenshannon", "Jensen-Shannon distance"},
    "ks": {"ks", "K-S p_value"},
    "chi2": {"chisquare", "chi-square p_value"},
    "z": {"z", "Z-test p_value"},
    "psi": {"psi", "PSI"},
}


def _say(message: str) -> None:
    print(f"[bench-drift] {message}", file=sys.stderr, flush=True)


def _run(python: str, script: str, rows: int, reps: int) -> dict[str, Any]:
    process = subprocess.run(
        [python, str(HERE / script), str(rows), str(reps)],
        capture_output=True,
        text=True,
        timeout=3600,
    )
    for line in process.stdout.splitlines():
        if line.startswith("RESULT "):
            return dict(json.loads(line[len("RESULT ") :]))
    tail = "\n".join((process.stderr or process.stdout).splitlines()[-15:])
    raise RuntimeError(f"{script} exited with {process.returncode}:\n{tail}")


def run(*, peers: list[str] | None = None, rows: int = ROWS, reps: int = 1) -> dict[str, Any]:
    results: dict[str, Any] = {"rows": rows, "reps": reps, "tools": {}, "failed": {}}
    _say(f"headrace: fit + score on {rows:,} x 20, {reps} rep(s)")
    results["tools"]["headrace"] = _run(sys.executable, "headrace_run.py", rows, reps)
    for name in [p for p in (peers if peers is not None else PEERS) if p in PEERS]:
        status = envs.ensure_env(name)
        if not (status.ok and status.python):
            results["failed"][name] = f"venv: {status.error}"
            continue
        _say(f"{name}: DataDriftPreset on {rows:,} x 20, {reps} rep(s)")
        try:
            results["tools"][name] = _run(status.python, f"{name}_run.py", rows, reps)
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            results["failed"][name] = str(exc)
    return results


def _method_matches(ours: str, theirs: str | None) -> bool:
    return theirs is not None and (
        theirs in SAME_METHOD.get(ours, set()) or ours.replace("_", "") in theirs.lower()
    )


def report(results: dict[str, Any]) -> str:
    tools = results["tools"]
    ours = tools["headrace"]
    peer = tools.get("evidently")
    data = ours["data_mib"]
    lines = [
        f"drift: reference and current frames of {results['rows']:,} rows x 20 columns "
        "(15 numeric, 5 categorical with 20 levels), 5 columns shifted",
        f"data: {data:,.0f} MiB in pandas (both frames, deep); CPU s = process time of the "
        "timed pass (all threads); extra MiB = peak RSS - RSS once the data exists",
        "",
        f"{'tool':<12}{'version':>10}{'CPU s':>9}{'wall s':>9}{'extra MiB':>11}"
        f"{'x data':>8}{'CPU / headrace':>16}",
    ]
    base_cpu = statistics.median(ours["cpu_s"])
    for name, r in tools.items():
        cpu = statistics.median(r["cpu_s"])
        extra = r["peak_rss_mib"] - r["rss_after_data_mib"]
        lines.append(
            f"{name:<12}{r.get('version', '-')!s:>10}{cpu:>9.2f}"
            f"{statistics.median(r['wall_s']):>9.2f}{extra:>11,.0f}{extra / data:>8.2f}"
            f"{cpu / base_cpu:>15.1f}x"
        )
    for name, why in results["failed"].items():
        lines.append(f"{name:<12} FAILED: {why.splitlines()[0]}")
    lines += ["", f"{'column':<8}{'shifted':>8}  {'headrace':<34}{'evidently':<46}agree"]
    disagreements = []
    for column, mine in ours["columns"].items():
        shifted = column in ("n0", "n1", "n2", "c0", "c1")
        left = f"{mine['method']} {mine['score']:.4f} {'DRIFT' if mine['drifted'] else 'ok'}"
        right, agree = "-", "-"
        if peer is not None and column in peer["columns"]:
            theirs = peer["columns"][column]
            score = theirs.get("score")
            shown = f"{score:.4f}" if isinstance(score, int | float) else str(score)
            right = f"{theirs.get('method')} {shown} {'DRIFT' if theirs.get('drifted') else 'ok'}"
            same = _method_matches(mine["method"], theirs.get("method")) and bool(
                theirs.get("drifted")
            ) == bool(mine["drifted"])
            agree = "yes" if same else "NO"
            if not same:
                disagreements.append(column)
        lines.append(f"{column:<8}{'yes' if shifted else '':>8}  {left:<34}{right:<46}{agree}")
    lines.append("")
    extra = ours["peak_rss_mib"] - ours["rss_after_data_mib"]
    lines.append(
        f"target extra memory < 2x the data: {extra:,.0f} MiB vs {2 * data:,.0f} MiB "
        + ("PASS" if extra < 2 * data else "FAIL")
    )
    if peer is None:
        lines.append("target CPU <= Evidently / 10: not measured (no Evidently in this run) n/a")
        lines.append("target same tests and flags as Evidently: n/a")
    else:
        theirs_cpu = statistics.median(peer["cpu_s"])
        ratio = theirs_cpu / base_cpu
        lines.append(
            f"target CPU <= Evidently / 10: {base_cpu:.2f} s vs {theirs_cpu:.2f} s = "
            f"{ratio:.1f}x less " + ("PASS" if ratio >= 10 else "FAIL")
        )
        lines.append(
            "target same tests and flags as Evidently: "
            + ("PASS" if not disagreements else f"FAIL ({', '.join(disagreements)})")
        )
        lines.append(
            f"dataset drift share: headrace {ours['share']:.2f}, evidently {peer.get('share')}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=ROWS)
    parser.add_argument("--reps", type=int, default=1)
    parser.add_argument("--no-peers", action="store_true")
    args = parser.parse_args(argv)
    results = run(peers=[] if args.no_peers else None, rows=args.rows, reps=args.reps)
    print(report(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

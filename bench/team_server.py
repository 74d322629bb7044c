"""The team server against ``mlflow server``, both driven by the same real ``mlflow``
client (MLflow's own venv), over loopback, each on a fresh SQLite store.

1. **Idle**: each server is started in its own session and, once ready, left alone for
   :data:`IDLE_S` seconds; then its processes are counted and their resident memory
   summed (``/proc``). Target (issue 8): one headrace process under 200 MB.
2. **Logging**: 10,000 ``mlflow.log_metric`` calls in one run, one HTTP call each
   (``bench/peers/tracking/mlflow_run.py log``, pointed at the server). MLflow's server
   answers in tens of milliseconds per call, so by default its runs make
   ``--mlflow-calls`` (1,000) calls and the 10,000-call time is extrapolated (labelled).
3. **Search**: 1,000 runs x 5 params x 5 metrics created through each server
   (``populate``), then ``client.search_runs`` over all of them, a filter, the top 100
   by a metric, and ``mlflow.search_runs`` into pandas; warm medians of 5 calls x reps
   processes; every answer is checked against the runs the workload says match.

Target (issue 8): headrace ahead of the MLflow server by at least 5x on logging and on
searching all 1,000 runs. Client processes alternate between the servers, so drifting
machine load hits both alike.

Usage: ``python bench/run_all.py --only server`` (or ``python bench/team_server.py
[--no-peers] [--reps 3] [--mlflow-calls 1000]``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.peers import envs
from bench.peers.tracking import _common as w
from bench.serving import Server, _free_port, _session, session_rss_mib
from bench.tracking import _env, _runner

IDLE_S = 5.0
TARGET_RATIO = 5.0
TARGET_IDLE_MB = 200.0
MLFLOW_CALLS = 1000
CASES = ("all", "filtered", "top100", "all_pandas")


def _say(message: str) -> None:
    print(f"[bench-server] {message}", file=sys.stderr, flush=True)


def _headrace(work: Path) -> tuple[Server, str]:
    """A fresh workspace with an admin and a token, and its ``headrace server``."""
    from headrace.runtime.workspace import open_workspace
    from headrace.workspace.settings import init_workspace

    root = work / "headrace"
    init_workspace(root, module="bench_project")
    (root / "bench_project.py").write_text("import headrace as hr\n")
    with open_workspace(root) as ws:
        ws.store.governance.create_first_admin("bench")
        token = ws.store.governance.issue_token("bench")
    exe = Path(sys.executable).with_name("headrace")
    port = _free_port()
    server = Server(
        "headrace server",
        [str(exe), "server", "--host", "127.0.0.1", "--port", str(port), "--no-daemon"],
        root,
        _env(),
        port,
        work / "logs" / "headrace.log",
        ready_path="/api/v1/ready",
    )
    return server, token


def _mlflow(python: str, work: Path) -> Server:
    venv_bin = Path(python).parent
    store = work / "mlflow"
    store.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    cmd = [str(venv_bin / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--backend-store-uri", f"sqlite:///{store / 'mlflow.db'}"]
    cmd += ["--artifacts-destination", str(store / "artifacts")]
    env = {**_env(), "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}"}
    return Server(
        "mlflow server", cmd, store, env, port, work / "logs" / "mlflow.log", ready_path="/health"
    )


def _idle(server: Server) -> dict[str, Any]:
    ready_s = server.wait_ready(timeout=180)
    time.sleep(IDLE_S)
    return {
        "ready_s": round(ready_s, 2),
        "processes": len(_session(server.sid)),
        "rss_mib": round(session_rss_mib(server.sid), 1),
    }


def _raw_search(server: Server, token: str, case: str, warm: int = 5) -> dict[str, Any]:
    """The same query as one plain HTTP call (no MLflow client): the server's share."""
    import urllib.parse
    import urllib.request

    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"

    def call(path: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(server.base + path, data=data, headers=headers)
        with urllib.request.urlopen(request, timeout=120) as answer:
            return json.loads(answer.read())

    name = urllib.parse.quote(w.SEARCH_EXPERIMENT)
    found = call(f"/api/2.0/mlflow/experiments/get-by-name?experiment_name={name}")
    filter_, order_by, max_results = w.CASES[case]
    body: dict[str, Any] = {
        "experiment_ids": [found["experiment"]["experiment_id"]],
        "max_results": max_results,
    }
    if filter_:
        body["filter"] = filter_
    if order_by:
        body["order_by"] = [order_by]
    times, count = [], 0
    for _ in range(1 + warm):
        started = time.perf_counter()
        answer = call("/api/2.0/mlflow/runs/search", body)
        times.append(time.perf_counter() - started)
        count = len(answer.get("runs", []))
    return {
        "cold_s": times[0],
        "warm_s": times[1:],
        "n": count,
        "n_expected": len(w.expected_names(case)),
    }


def run(
    *, peers: list[str] | None, reps: int = 3, mlflow_calls: int = MLFLOW_CALLS
) -> dict[str, Any]:
    names = ["headrace"] + (["mlflow"] if peers and "mlflow" in peers else [])
    work = Path(tempfile.mkdtemp(prefix="hr-bench-server-"))
    results: dict[str, Any] = {"reps": reps, "cpus": os.cpu_count(), "tools": {}}
    mlflow_python = None
    if "mlflow" in names:
        status = envs.ensure_env("mlflow")
        if status.ok and status.python:
            mlflow_python = status.python
        else:
            results["tools"]["mlflow"] = {"ok": False, "error": f"venv: {status.error}"}
            names.remove("mlflow")
    if mlflow_python is None:
        results["error"] = "the MLflow venv drives both servers; without it nothing runs"
        return results
    servers: dict[str, Server] = {}
    tokens: dict[str, str] = {}
    try:
        servers["headrace"], tokens["headrace"] = _headrace(work)
        if "mlflow" in names:
            servers["mlflow"] = _mlflow(mlflow_python, work)
        for tool, server in servers.items():
            server.start()
            results["tools"][tool] = {"ok": True, "idle": _idle(server)}
            _say(f"{tool}: idle {results['tools'][tool]['idle']}")
        for tool in servers:
            results["tools"][tool].update(logging=[], search={})
        for round_no in range(reps):
            for tool, server in servers.items():
                calls = w.VALUES if tool == "headrace" else min(mlflow_calls, w.VALUES)
                extra = {
                    "BENCH_SERVER_URI": server.base,
                    "BENCH_SERVER_TOKEN": tokens.get(tool, ""),
                }
                args = ["log", "--store", str(work / "client"), "--variant", "log_metric"]
                args += ["--calls", str(calls), "--warm", "1"]
                record = _runner(mlflow_python, "mlflow", args, work / "client", extra)
                results["tools"][tool]["logging"].append(record)
                _say(
                    f"log ({round_no + 1}/{reps}) {tool}: {calls:,} calls, "
                    f"{[r['wall_s'] for r in record['runs']]} s"
                )
        for tool, server in servers.items():
            extra = {"BENCH_SERVER_URI": server.base, "BENCH_SERVER_TOKEN": tokens.get(tool, "")}
            record = _runner(
                mlflow_python,
                "mlflow",
                ["populate", "--store", str(work / "client")],
                work / "client",
                extra,
            )
            results["tools"][tool]["populate_s"] = record["populate_s"]
            _say(f"{tool}: {w.RUNS} runs created in {record['populate_s']:.1f} s")
        for round_no in range(reps):
            for case in CASES:
                for tool, server in servers.items():
                    extra = {
                        "BENCH_SERVER_URI": server.base,
                        "BENCH_SERVER_TOKEN": tokens.get(tool, ""),
                    }
                    args = ["search", "--store", str(work / "client"), "--case", case]
                    args += ["--warm", "5"]
                    record = _runner(mlflow_python, "mlflow", args, work / "client", extra)
                    results["tools"][tool]["search"].setdefault(case, []).append(record)
                    _say(
                        f"search {case} ({round_no + 1}/{reps}) {tool}: warm median "
                        f"{1000 * statistics.median(record['warm_s']):.1f} ms, "
                        f"{'right runs' if record['same'] else 'WRONG RUNS'}"
                    )
        for round_no in range(reps):
            for case in ("all", "filtered", "top100"):
                for tool, server in servers.items():
                    raw = _raw_search(server, tokens.get(tool, ""), case)
                    results["tools"][tool].setdefault("raw_search", {}).setdefault(case, []).append(
                        raw
                    )
                    _say(
                        f"raw HTTP search {case} ({round_no + 1}/{reps}) {tool}: warm median "
                        f"{1000 * statistics.median(raw['warm_s']):.1f} ms, {raw['n']} runs"
                    )
        for tool, server in servers.items():
            results["tools"][tool]["after_rss_mib"] = round(session_rss_mib(server.sid), 1)
            results["tools"][tool]["stop"] = server.stop()
    finally:
        for server in servers.values():
            if server.proc is not None and server.proc.poll() is None:
                server.stop()
        shutil.rmtree(work, ignore_errors=True)
    results["summary"] = _summary(results, mlflow_calls)
    return results


def _per_10k(record: dict[str, Any]) -> tuple[float, float]:
    """(cold, warm) seconds for 10,000 calls, extrapolated from fewer when needed."""
    calls = record["calls"]
    out = []
    for run_ in record["runs"][:2]:
        scale = w.VALUES / calls
        out.append(run_["start_s"] + run_["loop_s"] * scale + run_["end_s"])
    return out[0], out[-1]


def _summary(results: dict[str, Any], mlflow_calls: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for tool, data in results["tools"].items():
        if not data.get("ok") or not data.get("logging"):
            continue
        colds, warms = zip(*(_per_10k(r) for r in data["logging"]), strict=True)
        row: dict[str, Any] = {
            "log_cold_s": round(statistics.median(colds), 3),
            "log_warm_s": round(statistics.median(warms), 3),
            "extrapolated": data["logging"][0]["calls"] != w.VALUES,
            "ms_per_call": round(
                1000
                * statistics.median(r["runs"][-1]["loop_s"] / r["calls"] for r in data["logging"]),
                3,
            ),
            "idle_processes": data["idle"]["processes"],
            "idle_rss_mib": data["idle"]["rss_mib"],
            "search": {},
        }
        for case, records in data["search"].items():
            warm = [s for r in records for s in r["warm_s"]]
            row["search"][case] = {
                "warm_s": round(statistics.median(warm), 4),
                "cold_s": round(statistics.median(r["cold_s"] for r in records), 4),
                "same": all(r["same"] for r in records),
                "n": records[0]["n_results"],
            }
        for case, records in data.get("raw_search", {}).items():
            warm = [s for r in records for s in r["warm_s"]]
            row["raw_search"] = row.get("raw_search", {})
            row["raw_search"][case] = {
                "warm_s": round(statistics.median(warm), 4),
                "same_count": all(r["n"] == r["n_expected"] for r in records),
            }
        out[tool] = row
    hr, peer = out.get("headrace"), out.get("mlflow")
    verdict: dict[str, Any] = {}
    if hr is not None:
        verdict["idle_ok"] = hr["idle_processes"] == 1 and hr["idle_rss_mib"] < TARGET_IDLE_MB
    if hr is not None and peer is not None:
        verdict["x_log"] = round(peer["log_warm_s"] / hr["log_warm_s"], 1)
        for case in CASES:
            a, b = hr["search"].get(case), peer["search"].get(case)
            if a and b:
                verdict[f"x_search_{case}"] = round(b["warm_s"] / a["warm_s"], 1)
        for case in ("all", "filtered", "top100"):
            a, b = hr.get("raw_search", {}).get(case), peer.get("raw_search", {}).get(case)
            if a and b:
                verdict[f"x_server_search_{case}"] = round(b["warm_s"] / a["warm_s"], 1)
        verdict["same_runs"] = all(s["same"] for t in (hr, peer) for s in t["search"].values())
        verdict["ok"] = (
            verdict["x_log"] >= TARGET_RATIO
            and verdict.get("x_search_all", 0) >= TARGET_RATIO
            and verdict["same_runs"]
            and verdict["idle_ok"]
        )
    out["verdict"] = verdict
    return out


def report(results: dict[str, Any]) -> str:
    if results.get("error"):
        return f"server benchmark not run: {results['error']}"
    summary = results["summary"]
    lines = [
        f"the same mlflow client against each server; {results['reps']} client processes per "
        f"row, interleaved; {results['cpus']} CPUs; x = mlflow / headrace",
        "",
        f"{'':<34}{'headrace':>12}{'mlflow':>12}{'x':>8}",
        "-" * 66,
    ]
    hr, peer = summary.get("headrace", {}), summary.get("mlflow", {})
    verdict = summary.get("verdict", {})

    def row(label: str, a: Any, b: Any, x: Any = "", fmt: str = "{:.3f}") -> None:
        shown = [fmt.format(v) if isinstance(v, int | float) else str(v) for v in (a, b)]
        lines.append(f"{label:<34}{shown[0]:>12}{shown[1]:>12}{x!s:>8}")

    star = "*" if peer.get("extrapolated") else ""
    row("idle: processes", hr.get("idle_processes", "-"), peer.get("idle_processes", "-"), fmt="{}")
    row(
        "idle: resident memory MiB",
        hr.get("idle_rss_mib", "-"),
        peer.get("idle_rss_mib", "-"),
        fmt="{:.0f}",
    )
    row(
        "10,000 log_metric, warm s",
        hr.get("log_warm_s", "-"),
        f"{peer.get('log_warm_s', '-')}{star}",
        verdict.get("x_log", ""),
    )
    row(
        "10,000 log_metric, cold s",
        hr.get("log_cold_s", "-"),
        f"{peer.get('log_cold_s', '-')}{star}",
    )
    row("ms per log_metric call", hr.get("ms_per_call", "-"), peer.get("ms_per_call", "-"))
    labels = {
        "all": "search all 1,000 runs, ms",
        "filtered": "search filtered, ms",
        "top100": "search top 100 by m0, ms",
        "all_pandas": "mlflow.search_runs (pandas), ms",
    }
    for case, label in labels.items():
        a = hr.get("search", {}).get(case, {}).get("warm_s")
        b = peer.get("search", {}).get(case, {}).get("warm_s")
        row(
            label,
            1000 * a if a else "-",
            1000 * b if b else "-",
            verdict.get(f"x_search_{case}", ""),
            fmt="{:.1f}",
        )
    raw_labels = {
        "all": "server share: all 1,000 runs, ms",
        "filtered": "server share: filtered, ms",
        "top100": "server share: top 100, ms",
    }
    for case, label in raw_labels.items():
        a = hr.get("raw_search", {}).get(case, {}).get("warm_s")
        b = peer.get("raw_search", {}).get(case, {}).get("warm_s")
        row(
            label,
            1000 * a if a else "-",
            1000 * b if b else "-",
            verdict.get(f"x_server_search_{case}", ""),
            fmt="{:.1f}",
        )
    lines.append(
        "search = client.search_runs end to end (the client's own parsing of 1,000 runs, "
        "about 250 ms here, is the same for both); server share = the same query as one "
        "plain HTTP call"
    )
    if star:
        lines.append(
            f"* MLflow measured with {results['tools']['mlflow']['logging'][0]['calls']:,} calls "
            "per run; its 10,000-call times are EXTRAPOLATED (start + loop x 10 + end)"
        )
    if verdict:
        lines.append(
            f"targets (issue 8): logging and searching all runs >= {TARGET_RATIO:g}x the MLflow "
            f"server, idle headrace one process < {TARGET_IDLE_MB:g} MB, same runs: "
            f"{'PASS' if verdict.get('ok') else 'FAIL'} {json.dumps(verdict)}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--no-peers", action="store_true")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--mlflow-calls", type=int, default=MLFLOW_CALLS)
    args = parser.parse_args(argv)
    results = run(
        peers=[] if args.no_peers else ["mlflow"], reps=args.reps, mlflow_calls=args.mlflow_calls
    )
    print(report(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

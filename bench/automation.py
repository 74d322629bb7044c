"""Automation: scheduling latency and run-queue throughput (issue 9's targets).

- **Latency**: a workspace with 1,000 schedules defined (10 ticking every 2 s, the rest
  daily), a file sensor looking every 0.5 s at a folder that gets a file every second,
  and ``headrace daemon`` with two worker processes on the embedded SQLite store. For
  every run: from its tick (or the file's arrival) to a worker starting it. Target:
  median under 1 s, p99 under 2 s.
- **Throughput** on PostgreSQL with 4 worker processes: (a) the queue itself, runs that
  do nothing (enqueue, claim, heartbeat-free finish), and (b) trivial pipeline runs (one
  asset returning 1: a full headrace run with its plan, steps and version). Every
  enqueued run must be executed exactly once. Target: 200 runs per second.

No peer: the targets are absolute.
"""

from __future__ import annotations

import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
SCHEDULES = 1000
FAST = 10


def _project(root: Path, source: str) -> None:
    from headrace.workspace.settings import init_workspace

    init_workspace(root, module="bench_automation")
    (root / "bench_automation.py").write_text(
        "import headrace as hr\nfrom headrace import automation as auto\n" + textwrap.dedent(source)
    )


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def latency(seconds: float = 40.0) -> dict[str, Any]:
    from headrace.runtime.workspace import open_workspace
    from headrace.scheduling.daemon import Daemon

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ws"
        (root / "landing").mkdir(parents=True)
        _project(
            root,
            f"""
            @hr.asset
            def noop() -> int:
                return 1

            # one run at a time writes noop's head (two at once: one loses the race)
            auto.pipeline("tick", "noop", max_concurrent=1)
            for i in range({SCHEDULES}):
                if i < {FAST}:
                    auto.schedule(f"s{{i}}", "tick", every="2s")
                else:
                    auto.schedule(f"s{{i}}", "tick", cron=f"{{i % 60}} 3 * * *")
            auto.file_sensor("landing", "tick", path="landing", interval="0.5s")
            """,
        )
        dropped: dict[str, float] = {}
        with open_workspace(root) as ws:
            daemon = Daemon(ws, workers=2, tick=0.2, poll=0.05)
            stop = threading.Event()
            thread = threading.Thread(target=daemon.serve, args=(stop,), daemon=True)
            thread.start()
            time.sleep(5)  # worker processes start; schedules start ticking
            started = time.time()
            n = 0
            while time.time() - started < seconds:
                path = root / "landing" / f"f{n}.txt"
                path.write_text(str(n))
                dropped[str(path)] = path.stat().st_mtime
                n += 1
                time.sleep(1.0)
            deadline = time.time() + 60
            while ws.store.queue.pending() and time.time() < deadline:
                time.sleep(0.2)
            stop.set()
            thread.join(timeout=120)
            rows = ws.store.queue.list(limit=100_000)
            steps = [
                (r.started_at or 0) - float(r.details["tick"])
                for r in rows
                if r.trigger.startswith("schedule:") and r.started_at
            ]
            files = [
                (r.started_at or 0) - dropped[r.details["file"]]
                for r in rows
                if r.trigger.startswith("sensor:") and r.details.get("file") in dropped
            ]
            failed = sum(r.status != "success" for r in rows)
    every = steps + files
    return {
        "schedules": SCHEDULES,
        "runs": len(rows),
        "failed": failed,
        "schedule_runs": len(steps),
        "sensor_runs": len(files),
        "median_s": statistics.median(every) if every else None,
        "p99_s": _quantile(every, 0.99) if every else None,
        "schedule_median_s": statistics.median(steps) if steps else None,
        "sensor_median_s": statistics.median(files) if files else None,
    }


def _noop_worker(url: str, name: str, barrier: Any, out: Any) -> None:
    from headrace.store import open_store

    store = open_store(url)
    barrier.wait()
    taken = []
    while (item := store.queue.claim(name, lease=30)) is not None:
        store.queue.finish(item.id, name, "success")
        taken.append(item.id)
    out.put(taken)
    store.close()


def _database(name: str) -> str:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}"')
        c.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


def throughput(noop_runs: int = 4000, pipeline_runs: int = 400, workers: int = 4) -> dict[str, Any]:
    from headrace.runtime.workspace import open_workspace
    from headrace.store import open_store

    # (a) the queue itself
    url = _database("hr_bench_queue")
    store = open_store(url)
    for _ in range(noop_runs):
        store.queue.enqueue(pipeline="noop")
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(workers + 1)
    out = context.Queue()
    procs = [
        context.Process(target=_noop_worker, args=(url, f"w{i}", barrier, out))
        for i in range(workers)
    ]
    for p in procs:
        p.start()
    barrier.wait()
    began = time.perf_counter()
    taken = [i for _ in procs for i in out.get(timeout=600)]
    queue_s = time.perf_counter() - began
    for p in procs:
        p.join()
    counts = store.queue.counts()
    store.close()
    queue = {
        "runs": noop_runs,
        "seconds": queue_s,
        "per_second": noop_runs / queue_s,
        "executed_once": len(taken) == len(set(taken)) == noop_runs
        and counts == {"success": noop_runs},
    }

    # (b) trivial pipeline runs
    url = _database("hr_bench_pipeline")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ws"
        root.mkdir()
        _project(
            root,
            """
            @hr.asset(partitions=hr.static([f"p{i}" for i in range(10_000)]))
            def noop(partition: str) -> int:
                return 1

            auto.pipeline("tick", "noop")
            """,
        )
        env = {**os.environ, "HEADRACE_METADATA_URL": url}
        with open_workspace(root, metadata_url=url) as ws:
            for i in range(pipeline_runs):  # each its own partition: no head conflicts
                ws.store.queue.enqueue(pipeline="tick", selection="noop", partitions=[f"p{i}"])
            began = time.perf_counter()
            procs2 = [
                subprocess.Popen(
                    [sys.executable, "-m", "headrace", "worker", "--drain"],
                    cwd=root,
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                for _ in range(workers)
            ]
            for p2 in procs2:
                p2.wait(timeout=1800)
            pipeline_s = time.perf_counter() - began
            rows = ws.store.queue.list(limit=100_000)
            run_ids = [r.run_id for r in rows]
            runs = ws.store.runs.list(limit=100_000)
    pipeline = {
        "runs": pipeline_runs,
        "seconds": pipeline_s,
        "per_second": pipeline_runs / pipeline_s,
        "executed_once": all(r.ended_at and r.attempts == 1 for r in rows)
        and len(set(run_ids)) == len(rows) == pipeline_runs
        and len(runs) == pipeline_runs,
        "succeeded": sum(r.status == "success" for r in rows),
        # from the first claim to the last finish: without the workers' start-up
        "steady_per_second": pipeline_runs
        / max(1e-9, max(r.ended_at or 0 for r in rows) - min(r.started_at or 0 for r in rows)),
        "note": "includes starting 4 worker processes (import, store open)",
    }
    return {"workers": workers, "queue": queue, "pipeline": pipeline}


def run(seconds: float = 40.0) -> dict[str, Any]:
    results: dict[str, Any] = {"latency": latency(seconds)}
    try:
        results["throughput"] = throughput()
    except Exception as exc:  # no PostgreSQL here
        results["throughput"] = {"skipped": f"{type(exc).__name__}: {exc}"}
    return results


def report(results: dict[str, Any]) -> str:
    lat = results["latency"]
    lines = [
        f"scheduling latency, {lat['schedules']:,} schedules defined, SQLite, 2 workers: "
        f"{lat['runs']} runs ({lat['schedule_runs']} ticks, {lat['sensor_runs']} files), "
        f"{lat['failed']} failed",
        f"  median {lat['median_s']:.3f} s (target < 1 s), p99 {lat['p99_s']:.3f} s "
        f"(target < 2 s); ticks {lat['schedule_median_s']:.3f} s, files "
        f"{lat['sensor_median_s']:.3f} s median",
    ]
    thr = results["throughput"]
    if "skipped" in thr:
        lines.append(f"queue throughput: skipped ({thr['skipped']})")
        return "\n".join(lines)
    for label, key in (("no-op runs (the queue)", "queue"), ("trivial pipeline runs", "pipeline")):
        one = thr[key]
        lines.append(
            f"PostgreSQL, {thr['workers']} workers, {label}: {one['runs']:,} in "
            f"{one['seconds']:.2f} s = {one['per_second']:.0f}/s (target 200/s); "
            f"each executed exactly once: {one['executed_once']}"
            + (
                f", {one['succeeded']} succeeded; {one['steady_per_second']:.0f}/s once the "
                "workers were up"
                if "succeeded" in one
                else ""
            )
        )
    return "\n".join(lines)


if __name__ == "__main__":
    outcome = run(float(sys.argv[1]) if len(sys.argv) > 1 else 40.0)
    print(report(outcome))

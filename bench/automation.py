"""Automation: scheduling latency and run-queue throughput (issue 9's targets).

- **Latency**: a workspace with 1,000 schedules defined (10 ticking every 2 s, the rest
  daily), a file sensor looking every 0.5 s at a folder that gets a file every second,
  and ``headrace daemon`` with two worker processes on the embedded SQLite store. For
  every run: from its tick (or the file's arrival) to a worker starting it. Target:
  median under 1 s, p99 under 2 s.
- **Throughput** on PostgreSQL with 4 worker processes: (a) the queue itself, runs that
  do nothing (enqueue, claim, heartbeat-free finish), and (b) trivial pipeline runs (one
  asset returning 1: a full headrace run with its plan, steps and version), measured
  sustained (the workers up, as in production: from the first enqueue to the last
  run's end) and cold (the runs queued first, the clock including the workers'
  start-up). Every enqueued run must be executed exactly once. Target: 200 runs per
  second.

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


def throughput(
    noop_runs: int = 4000, sustained_runs: int = 2000, cold_runs: int = 400, workers: int = 4
) -> dict[str, Any]:
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

    # (b) trivial pipeline runs: (b1) sustained, with 4 workers up and polling, as they
    # are in production; (b2) cold, the same workers started with the queue full
    pipeline = _pipeline_runs(sustained_runs, workers, cold=False)
    cold = _pipeline_runs(cold_runs, workers, cold=True)
    return {"workers": workers, "queue": queue, "pipeline": pipeline, "cold": cold}


TRIVIAL = """
@hr.asset(partitions=hr.static([f"p{i}" for i in range(10_000)]))
def noop(partition: str) -> int:
    return 1

auto.pipeline("tick", "noop")
"""


def _pipeline_runs(runs: int, workers: int, *, cold: bool) -> dict[str, Any]:
    """Trivial pipeline runs (one asset returning 1, each run its own partition so no two
    race for a head) through ``workers`` ``headrace worker`` processes on PostgreSQL.

    Sustained (``cold=False``): the workers are up and have each done a run; the clock
    runs from the first enqueue (one transaction per run, as the daemon enqueues) to
    the last run's end. Cold: the runs are queued first, then the workers start with
    ``--drain``; the clock includes their start-up."""
    from headrace.runtime.workspace import open_workspace

    url = _database("hr_bench_pipeline")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ws"
        root.mkdir()
        _project(root, TRIVIAL)
        env = {**os.environ, "HEADRACE_METADATA_URL": url}
        command = [sys.executable, "-m", "headrace", "worker"]
        command += ["--drain"] if cold else ["--poll", "0.02"]
        with open_workspace(root, metadata_url=url) as ws:
            queue = ws.store.queue
            first = 0
            procs: list[subprocess.Popen[bytes]] = []
            if cold:
                for i in range(runs):
                    queue.enqueue(pipeline="tick", selection="noop", partitions=[f"p{i}"])
                began = time.time()
            else:
                procs = [_start(command, root, env) for _ in range(workers)]
                for i in range(workers * 2):  # every worker up and warm
                    queue.enqueue(pipeline="tick", selection="noop", partitions=[f"p{i}"])
                first = workers * 2
                _wait_done(queue, first, timeout=120)
                began = time.time()
                for i in range(first, first + runs):
                    queue.enqueue(pipeline="tick", selection="noop", partitions=[f"p{i}"])
            if cold:
                procs = [_start(command, root, env) for _ in range(workers)]
                for proc in procs:
                    proc.wait(timeout=1800)
            else:
                _wait_done(queue, first + runs, timeout=1800)
                for proc in procs:
                    proc.terminate()
                for proc in procs:
                    proc.wait(timeout=60)
            rows = [r for r in queue.list(limit=100_000) if (r.enqueued_at or 0) >= began or cold]
            ended = max(r.ended_at or 0 for r in rows)
            run_ids = [r.run_id for r in rows]
            stored = ws.store.runs.list(limit=100_000)
    seconds = ended - began
    return {
        "runs": runs,
        "seconds": seconds,
        "per_second": runs / seconds,
        "executed_once": all(r.ended_at and r.attempts == 1 for r in rows)
        and len(set(run_ids)) == len(rows) == runs
        and len(stored) == runs + first,
        "succeeded": sum(r.status == "success" for r in rows),
    }


def _start(command: list[str], root: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        command, cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def _wait_done(queue: Any, total: int, *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        counts = queue.counts()
        if counts.get("success", 0) + counts.get("failed", 0) >= total:
            return
        time.sleep(0.05)
    raise TimeoutError(f"runs still pending after {timeout:.0f} s: {queue.counts()}")


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
    for label, key in (
        ("no-op runs (the queue)", "queue"),
        ("trivial pipeline runs, workers up", "pipeline"),
        ("trivial pipeline runs, workers started cold", "cold"),
    ):
        one = thr[key]
        lines.append(
            f"PostgreSQL, {thr['workers']} workers, {label}: {one['runs']:,} in "
            f"{one['seconds']:.2f} s = {one['per_second']:.0f}/s (target 200/s); "
            f"each executed exactly once: {one['executed_once']}"
            + (f", {one['succeeded']} succeeded" if "succeeded" in one else "")
        )
    return "\n".join(lines)


if __name__ == "__main__":
    outcome = run(float(sys.argv[1]) if len(sys.argv) > 1 else 40.0)
    print(report(outcome))

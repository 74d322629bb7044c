"""The issue's outage, measured: ``headrace daemon --workers 2`` works a queue of 20
runs on a private PostgreSQL cluster, which is stopped for 4 s once 3 runs have ended.

Usage: python bench/outage.py [--runs 20] [--outage 4]

Prints how long after the restart the first and the last run ended, whether the daemon
is still up, and how many times each run's step executed (1 each: none ran twice).
Needs PostgreSQL's binaries and the ``postgres`` user (see tests/outage/cluster.py).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.outage.cluster import PrivateCluster, missing
from tests.projects import write_project

from headrace.runtime.workspace import open_workspace

PROJECT = """
import time
from pathlib import Path

from headrace import automation as auto

HERE = Path(__file__).parent


@hr.asset(partitions=hr.static([str(i) for i in range({runs})]))
def work(partition: str) -> int:
    time.sleep(0.3)
    with open(HERE / "done.log", "a") as log:
        log.write(partition + "\\n")
    return int(partition)


auto.pipeline("work", "work", max_attempts=3)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--outage", type=float, default=4.0)
    args = parser.parse_args()
    why = missing()
    if why is not None:
        sys.exit(f"cannot run a private PostgreSQL cluster: {why}")
    cluster = PrivateCluster()
    try:
        cluster.start()
        url = cluster.database()
        root, _ = write_project(Path(tempfile.mkdtemp()) / "ws", PROJECT.format(runs=args.runs))
        ws = open_workspace(root, metadata_url=url)
        for i in range(args.runs):
            ws.store.queue.enqueue(pipeline="work", selection="work", partitions=[str(i)])
        env = {k: v for k, v in os.environ.items() if not k.startswith("HEADRACE_")}
        env["HEADRACE_METADATA_URL"] = url
        daemon = subprocess.Popen(
            [sys.executable, "-m", "headrace", "daemon", "--workers", "2"],
            cwd=root,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        while ws.store.queue.counts().get("success", 0) < 3:
            time.sleep(0.05)
        ended_before = ws.store.queue.counts().get("success", 0)
        ws.close()
        cluster.stop()
        time.sleep(args.outage)  # the outage itself
        cluster.start()
        restarted = time.monotonic()
        ws = open_workspace(root, metadata_url=url)
        first = None
        while (counts := ws.store.queue.counts()) != {"success": args.runs}:
            if first is None and counts.get("success", 0) > ended_before:
                first = time.monotonic() - restarted
            time.sleep(0.05)
        last = time.monotonic() - restarted
        alive = daemon.poll() is None
        daemon.terminate()
        daemon.wait(timeout=60)
        ws.close()
        executed = Counter((root / "done.log").read_text().split())
        print(f"{args.runs} runs, PostgreSQL stopped for {args.outage:g} s after {ended_before}")
        print(f"first run ended {first or 0:.2f} s after the restart, the last {last:.2f} s")
        per_run = sorted(set(executed.values()))
        print(f"daemon still up: {alive}; step executions per run: {per_run}")
    finally:
        cluster.remove()


if __name__ == "__main__":
    main()

"""``headrace daemon`` and ``headrace worker`` ride out PostgreSQL going away: the
private cluster is stopped under the running processes, which say so (log, health
file), wait, and carry on when it is back; every queued run ends, none is left running,
and none is taken by two workers."""

from __future__ import annotations

import json
import os
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from headrace.runtime.workspace import open_workspace
from tests.integration.conftest import HEADRACE
from tests.outage.cluster import PrivateCluster, wait_for
from tests.projects import write_project

pytestmark = [pytest.mark.integration, pytest.mark.slow]

RUNS = 20

WORK = f"""
import time
from pathlib import Path

from headrace import automation as auto

HERE = Path(__file__).parent


@hr.asset(partitions=hr.static([str(i) for i in range({RUNS})]))
def work(partition: str) -> int:
    time.sleep(0.25)
    with open(HERE / "done.log", "a") as log:
        log.write(partition + "\\n")
    return int(partition)


auto.pipeline("work", "work", max_attempts=3)
"""


def _env(url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADRACE_")}
    env["HEADRACE_METADATA_URL"] = url
    return env


def _health(root: Path, role: str) -> list[dict[str, Any]]:
    found = []
    for path in (root / ".headrace" / "health").glob(f"{role}-*.json"):
        try:
            found.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue  # being replaced right now
    return found


def _unreachable(root: Path, role: str, count: int, *, tries: int = 1) -> bool:
    """At least ``count`` processes of ``role`` say the store is away, each after at
    least ``tries`` attempts."""
    down = [h for h in _health(root, role) if not h["store"]["reachable"]]
    return sum(h["store"]["failures"] >= tries for h in down) >= count


def test_the_daemon_and_its_workers_ride_out_a_stopped_postgres(
    cluster: PrivateCluster, tmp_path: Path
) -> None:
    url = cluster.database()
    root, _ = write_project(tmp_path / "ws", WORK)
    ws = open_workspace(root, metadata_url=url)
    items = [
        ws.store.queue.enqueue(pipeline="work", selection="work", partitions=[str(i)])
        for i in range(RUNS)
    ]
    log_path = tmp_path / "daemon.log"
    with open(log_path, "w") as log:
        daemon = subprocess.Popen(
            [*HEADRACE, "daemon", "--workers", "2", "--lease", "3", "--tick", "0.2"],
            cwd=root,
            env=_env(url),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        # PostgreSQL goes away while the queue is being worked, with runs in flight
        wait_for(
            lambda: (
                ws.store.queue.counts().get("success", 0) >= 3
                and ws.store.queue.counts().get("running", 0) >= 1
            ),
            timeout=60,
            what="the daemon's workers to be busy with the queue",
        )
        ws.store.close()  # the test's own connections would be cut anyway
        cluster.stop()
        # it stays away until every process has retried with backoff a few times: the
        # daemon's fourth try comes about 4 s into the outage (0.25 + 0.5 + 1 + 2 s)
        wait_for(
            lambda: (
                _unreachable(root, "daemon", 1, tries=5)
                and _unreachable(root, "worker", 2, tries=3)
            ),
            timeout=30,
            what="the daemon and both workers to say in their health the store is away",
        )
        said = log_path.read_text()
        assert "daemon: the metadata store is unreachable" in said
        assert said.count("the metadata store is unreachable") >= 3  # daemon + 2 workers
        assert "Traceback" not in said  # said once, in one line each, not a stack a tick
        assert daemon.poll() is None, said
        cluster.start()

        ws = open_workspace(root, metadata_url=url)
        wait_for(
            lambda: ws.store.queue.counts() == {"success": RUNS},
            timeout=120,
            every=0.2,
            what=f"all {RUNS} queued runs to succeed",
        )
        assert daemon.poll() is None  # it carried on
        wait_for(  # its next try may come up to 5 s after the store is back
            lambda: "daemon: the metadata store is reachable again after" in log_path.read_text(),
            timeout=30,
            what="the daemon to say the store is back",
        )
        wait_for(
            lambda: not _unreachable(root, "daemon", 1) and not _unreachable(root, "worker", 1),
            timeout=30,
            what="the health files to say the store is back",
        )
        # every queued run made one pipeline run, which succeeded; nothing is running
        done = [ws.store.queue.get(i) for i in items if i is not None]
        run_ids = [d.run_id for d in done]
        assert None not in run_ids and len(set(run_ids)) == RUNS
        assert {ws.store.runs.get(r).status for r in run_ids if r} == {"success"}
        assert ws.store.runs.unfinished(quiet_since=1e12) == []
        heads = ws.store.versions.heads("main", ["work"])
        assert len(heads) == RUNS
        # each partition ran; only a step the outage interrupted (its result never
        # recorded) ran again on resume: at most one per worker
        ran = Counter((root / "done.log").read_text().split())
        assert set(ran) == {str(i) for i in range(RUNS)}
        assert sum(ran.values()) - RUNS <= 2, ran
    finally:
        daemon.terminate()
        daemon.wait(timeout=30)
        ws.close()
    assert daemon.returncode == 0
    assert _health(root, "daemon") == [] and _health(root, "worker") == []  # removed


SLOW = """
import time
from pathlib import Path

from headrace import automation as auto

HERE = Path(__file__).parent


@hr.asset
def first() -> int:
    with open(HERE / "first.log", "a") as log:
        log.write("ran\\n")
    return 1


@hr.asset
def slow(first: int) -> int:
    while not (HERE / "go").exists():
        time.sleep(0.05)
    with open(HERE / "slow.log", "a") as log:
        log.write("ran\\n")
    return first + 1


@hr.asset
def after(slow: int) -> int:  # the run goes on after the step the outage spanned
    return slow + 1


auto.pipeline("slow", "first+", max_attempts=3)
"""


def test_a_run_in_flight_through_an_outage_longer_than_its_lease_runs_once(
    cluster: PrivateCluster, tmp_path: Path
) -> None:
    """``headrace worker`` holds a run whose step needs no store while PostgreSQL is
    away for longer than the run's lease; a daemon beside it (reaping, no workers) does
    not take the run from it when the store is back: the run ends once, in one attempt."""
    url = cluster.database()
    root, _ = write_project(tmp_path / "ws", SLOW)
    ws = open_workspace(root, metadata_url=url)
    item = ws.store.queue.enqueue(pipeline="slow", selection="first+", max_attempts=3)
    assert item is not None
    logs = {name: tmp_path / f"{name}.log" for name in ("worker", "daemon")}
    commands = {
        "worker": [*HEADRACE, "worker", "--lease", "3", "--poll", "0.05", "--no-reload"],
        "daemon": [*HEADRACE, "daemon", "--workers", "0", "--tick", "0.2", "--no-reload"],
    }
    processes = {}
    for name, command in commands.items():
        with open(logs[name], "w") as log:
            processes[name] = subprocess.Popen(
                command, cwd=root, env=_env(url), stdout=log, stderr=subprocess.STDOUT
            )
    try:
        wait_for(
            lambda: (root / "first.log").exists() and ws.store.queue.get(item).status == "running",
            timeout=60,
            what="the worker to be in the slow step",
        )
        ws.store.close()
        cluster.stop()
        # away for longer than the 3 s lease, and than the run's own 10 s heartbeat:
        # the worker's lease heartbeats (one a second) fail a dozen times
        wait_for(
            lambda: _unreachable(root, "worker", 1, tries=12),
            timeout=40,
            what="the worker's heartbeats to fail for longer than its lease",
        )
        cluster.start()
        ws = open_workspace(root, metadata_url=url)
        wait_for(
            lambda: not _unreachable(root, "worker", 1) and not _unreachable(root, "daemon", 1),
            timeout=30,
            what="the worker and the daemon to find the store back",
        )
        (root / "go").touch()
        wait_for(
            lambda: ws.store.queue.get(item).status == "success",
            timeout=60,
            what="the run to end",
        )
        done = ws.store.queue.get(item)
        assert done.attempts == 1 and done.run_id is not None
        assert ws.store.runs.get(done.run_id).status == "success"
        assert (root / "first.log").read_text() == "ran\n"
        assert (root / "slow.log").read_text() == "ran\n"
        assert {s.key: s.status for s in ws.store.runs.steps(done.run_id)}["after"] == "success"
        assert all(p.poll() is None for p in processes.values())  # both carried on
        assert "lost; queued again" not in logs["daemon"].read_text()
        assert "Traceback" not in logs["daemon"].read_text()
        said = logs["worker"].read_text()
        assert "the metadata store is reachable again" in said and "Traceback" not in said
    finally:
        for process in processes.values():
            process.terminate()
        for process in processes.values():
            process.wait(timeout=30)
        ws.close()

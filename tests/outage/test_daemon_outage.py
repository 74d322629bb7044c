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
        said = log_path.read_text()
        assert "daemon: the metadata store is reachable again after" in said
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

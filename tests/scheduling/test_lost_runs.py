"""Pipeline runs whose process died outside the run queue: a running run writes a
heartbeat; one killed with SIGKILL is failed once it has been quiet for a minute (not
before, and not while its process lives), and can then be resumed. Tracked runs, which
have no heartbeat, are left alone."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

import headrace as hr
from headrace.orchestration import recording
from headrace.orchestration.service import fail_lost_runs, materialize
from headrace.runtime.workspace import open_workspace
from headrace.store.records import RunRecord
from tests.integration.conftest import HEADRACE
from tests.projects import open_project, write_project

pytestmark = pytest.mark.integration

SLOW = """
import time
from pathlib import Path

HERE = Path(__file__).parent


@hr.asset
def first() -> int:
    return 1


@hr.asset
def slow(first: int) -> int:
    while not (HERE / "go").exists():
        time.sleep(0.05)
    return first + 1
"""


def _wait(condition: object, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_running_run_beats_and_is_never_failed_while_it_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recording, "HEARTBEAT", 0.1)
    ws = open_project(tmp_path, SLOW)
    box: dict[str, object] = {}
    thread = threading.Thread(target=lambda: box.update(result=materialize(ws, "first+")))
    thread.start()
    try:
        _wait(lambda: ws.store.runs.list(limit=1), "the run")
        run_id = ws.store.runs.list(limit=1)[0].id
        started = ws.store.runs.get(run_id).heartbeat_at or 0.0
        _wait(lambda: (ws.store.runs.get(run_id).heartbeat_at or 0.0) > started + 0.2, "beats")
        # its process is this one, and alive: quiet or not, never failed here
        assert fail_lost_runs(ws, now=time.time() + 3600) == []
        assert ws.store.runs.get(run_id).status == "running"
    finally:
        (tmp_path / "go").touch()
        thread.join(timeout=60)
    assert ws.store.runs.get(run_id).status == "success"


def test_a_run_whose_process_was_killed_is_failed_then_resumed(tmp_path: Path) -> None:
    root, _ = write_project(tmp_path / "ws", SLOW)
    process = subprocess.Popen(
        [*HEADRACE, "materialize", "first+"],
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    with open_workspace(root) as ws:
        try:
            _wait(
                lambda: any(
                    s.key == "slow" and s.status == "running"
                    for r in ws.store.runs.list(limit=1)
                    for s in ws.store.runs.steps(r.id)
                ),
                "the slow step",
            )
        finally:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        run = ws.store.runs.list(limit=1)[0]
        assert run.status == "running" and run.heartbeat_at is not None

        assert fail_lost_runs(ws) == []  # quiet for less than a minute: not yet
        [line] = fail_lost_runs(ws, now=time.time() + 120)
        assert run.id[:12] in line and "no heartbeat since" in line
        failed = ws.store.runs.get(run.id)
        assert failed.status == "failed" and failed.ended_at is not None
        assert f"headrace runs resume {run.id}" in (failed.error or "")
        assert fail_lost_runs(ws, now=time.time() + 120) == []  # once

        (root / "go").touch()
        resumed = subprocess.run(
            [*HEADRACE, "runs", "resume", run.id], cwd=root, capture_output=True, text=True
        )
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        assert ws.store.runs.get(run.id).status == "success"


def test_live_processes_and_tracked_runs_are_left_alone(tmp_path: Path) -> None:
    ws = open_project(tmp_path, SLOW)
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        long_ago = time.time() - 3600
        ws.store.runs.create(
            RunRecord(
                id="a" * 32,
                status="running",
                selection="first",
                params={},
                partitions=None,
                branch="main",
                trigger="cli",
                executor="in_process",
                max_concurrency=1,
                force=False,
                host=socket.gethostname(),
                pid=sleeper.pid,  # an older headrace's run: alive, and beats not at all
                plan=[["first", []]],
                created_at=long_ago,
                started_at=long_ago,
            ),
            [("first", "first", None)],
        )
        with hr.start_run(workspace=ws) as tracked:  # an MLflow-style run: no heartbeat
            assert fail_lost_runs(ws, now=time.time() + 3600) == []
            assert ws.store.runs.get(tracked.run_id).status == "running"
        assert ws.store.runs.get("a" * 32).status == "running"
        sleeper.kill()
        sleeper.wait(timeout=10)
        assert [line[4:16] for line in fail_lost_runs(ws)] == ["a" * 12]
    finally:
        sleeper.kill()

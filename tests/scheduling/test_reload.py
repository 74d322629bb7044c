"""Changed definitions are picked up by a running daemon and by a running worker: new
schedules and assets without a restart, the last good definitions kept while the
project does not load, and worker processes replaced between runs."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from headrace.runtime.workspace import open_workspace
from headrace.scheduling import daemon as daemon_module
from headrace.scheduling.daemon import Daemon
from tests.integration.conftest import HEADRACE
from tests.projects import HEADER, write_project

pytestmark = pytest.mark.integration

V1 = """
from headrace import automation as auto


@hr.asset
def a() -> int:
    return 1


auto.pipeline("p", "a")
auto.schedule("hourly", "p", every="1h")
"""

V2 = (
    V1
    + """
auto.schedule("nightly", "p", cron="0 3 * * *")
"""
)

BROKEN = (
    V2
    + """
auto.schedule("broken", "p", cron="not a cron")
"""
)

V3 = (
    V2
    + """
@hr.asset
def b(a: int) -> int:
    return a + 1


auto.pipeline("pb", "b")
"""
)


def _wait(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _rewrite(path: Path, source: str) -> None:
    import textwrap

    path.write_text(HEADER + textwrap.dedent(source))


def test_a_running_daemon_loads_changed_definitions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(daemon_module, "RELOAD_EVERY", 0.1)
    root, module = write_project(tmp_path / "ws", V1)
    source = root / f"{module}.py"
    with open_workspace(root) as ws:
        daemon = Daemon(ws, workers=1, tick=0.05)
        stop = threading.Event()
        thread = threading.Thread(target=daemon.serve, args=(stop,))
        thread.start()
        try:
            _wait(lambda: bool(daemon._processes), "a worker process")
            first = daemon._processes[0].pid
            assert set(daemon.automation.schedules) == {"hourly"}

            _rewrite(source, V2)
            _wait(lambda: daemon.reloads == 1, "the reload")
            assert set(daemon.automation.schedules) == {"hourly", "nightly"}
            _wait(lambda: bool(daemon._processes), "a new worker process")
            assert daemon._processes[0].pid != first  # started with the new code

            _rewrite(source, BROKEN)  # does not load: the last good definitions stay
            _wait(lambda: daemon.reload_error is not None, "the refused reload")
            assert "not a cron" in (daemon.reload_error or "")
            assert set(daemon.automation.schedules) == {"hourly", "nightly"}
            assert daemon.reloads == 1

            _rewrite(source, V3)  # fixed: loaded, with the new asset
            _wait(lambda: daemon.reloads == 2, "the reload of the fixed project")
            assert daemon.reload_error is None and "pb" in daemon.automation.pipelines
            assert "b" in daemon.ws.graph
        finally:
            stop.set()
            thread.join(timeout=120)
    assert not thread.is_alive()


def test_a_running_worker_starts_afresh_when_the_project_changes(tmp_path: Path) -> None:
    root, module = write_project(tmp_path / "ws", V1)
    worker = subprocess.Popen(
        [*HEADRACE, "worker", "--poll", "0.05"],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        with open_workspace(root) as ws:
            first = ws.store.queue.enqueue(pipeline="p", selection="a")
            _wait(lambda: ws.store.queue.get(first or "").status == "success", "the first run")
            _rewrite(root / f"{module}.py", V3)  # a new asset and pipeline
            time.sleep(3)  # the worker looks every 2 s, between runs
            second = ws.store.queue.enqueue(pipeline="pb", selection="b")
            _wait(lambda: ws.store.queue.get(second or "").status != "queued", "the second run")
            _wait(lambda: ws.store.queue.get(second or "").status != "running", "its end")
            done = ws.store.queue.get(second or "")
            assert done.status == "success", done.error
            assert ws.store.versions.heads("main", ["b"])
    finally:
        worker.terminate()
        output, _ = worker.communicate(timeout=60)
    assert "starting afresh" in output


def test_the_watch_sees_edits_new_suites_and_nothing_else(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from headrace.scheduling import reload as reload_module
    from headrace.scheduling.reload import ProjectWatch

    monkeypatch.setattr(reload_module, "RELIST_EVERY", 0.0)
    root, module = write_project(tmp_path / "ws", V1)
    with open_workspace(root) as ws:
        _ = ws.graph
        watch = ProjectWatch(ws, every=0.0)
        assert root / f"{module}.py" in watch.files()
        assert not watch.changed()
        (root / "data.csv").write_text("not a definition\n")
        assert not watch.changed()  # a file the definitions do not come from
        (root / "a.checks.yaml").write_text("asset: a\nchecks: []\n")
        assert watch.changed() and not watch.changed()  # a new suite, seen once
        _rewrite(root / f"{module}.py", V2)
        assert watch.changed()
        (root / "monitors.yaml").write_text("monitors: []\n")
        assert watch.changed()

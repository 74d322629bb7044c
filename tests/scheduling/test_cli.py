"""``headrace schedules``, ``sensors``, ``queue`` and ``daemon --once`` from the shell."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.integration.conftest import HEADRACE
from tests.projects import write_project

pytestmark = pytest.mark.integration

PROJECT = """
from headrace import automation as auto


@hr.asset
def a() -> int:
    return 1


auto.pipeline("load", "a", tags=["warehouse"], max_concurrent=1)
auto.schedule("nightly", "load", cron="30 2 * * *", timezone="America/New_York")
auto.file_sensor("inbox", "load", path="inbox", pattern="*.csv")
auto.limits(2, tags={"warehouse": 1})
"""


def _cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADRACE_")}
    env["COLUMNS"] = "200"
    return subprocess.run(
        [*HEADRACE, *args], cwd=root, env=env, capture_output=True, text=True, timeout=120
    )


def test_schedules_sensors_and_the_queue_from_the_shell(tmp_path: Path) -> None:
    root, _ = write_project(tmp_path, PROJECT)
    (root / "inbox").mkdir()
    listed = _cli(root, "schedules", "list")
    assert listed.returncode == 0, listed.stderr
    assert "nightly" in listed.stdout and "cron 30 2 * * * (America/New_York)" in listed.stdout
    assert "not yet evaluated" in listed.stdout and " on " in listed.stdout
    off = _cli(root, "schedules", "off", "nightly")
    assert off.returncode == 0 and "schedule nightly is off" in off.stdout
    assert " off " in _cli(root, "schedules", "list").stdout
    assert _cli(root, "schedules", "on", "nightly").returncode == 0
    typo = _cli(root, "schedules", "off", "nighty")
    assert typo.returncode == 1 and "no schedule named 'nighty'" in typo.stderr
    assert "did you mean" in typo.stderr.lower() or "nightly" in typo.stderr

    sensors = _cli(root, "sensors", "list")
    assert sensors.returncode == 0 and "inbox" in sensors.stdout and "files" in sensors.stdout
    assert _cli(root, "sensors", "off", "inbox").returncode == 0
    (root / "inbox" / "one.csv").write_text("x\n")
    assert "queued 0, ran 0" in _cli(root, "daemon", "--once").stdout  # the sensor is off
    assert _cli(root, "sensors", "on", "inbox").returncode == 0

    assert "the queue is empty" in _cli(root, "queue").stdout
    for _ in range(2):
        added = _cli(root, "queue", "add", "load")
        assert added.returncode == 0 and "queued load as" in added.stdout
    unknown = _cli(root, "queue", "add", "lod")
    assert unknown.returncode == 1 and "no pipeline named 'lod'" in unknown.stderr

    once = _cli(root, "daemon", "--once", "--no-run")
    assert once.returncode == 0 and "queued 1, ran 0" in once.stdout  # the inbox file
    queue = _cli(root, "queue")
    assert queue.stdout.count("queued") >= 3 and "sensor:inbox" in queue.stdout
    assert "3 queued" in queue.stdout

    ran = _cli(root, "daemon", "--once")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert ran.stdout.count("success load") == 3 and "queued 0, ran 3" in ran.stdout
    assert "3 success" in _cli(root, "queue").stdout
    bad = _cli(root, "daemon", "--once", "--at", "yesterday")
    assert bad.returncode == 2 and "'yesterday' is not an ISO time" in bad.stderr
    alone = _cli(root, "daemon", "--at", "2026-01-01T00:00")
    assert alone.returncode == 2 and "--at only goes with --once" in alone.stderr

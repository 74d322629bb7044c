"""A run killed with SIGKILL leaves complete versions only, and resumes where it stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import headrace as hr
from tests.integration.conftest import run_cli
from tests.projects import write_project

pytestmark = pytest.mark.integration

CHAIN = """
import os, time
from pathlib import Path
import pandas as pd

MARKS = Path(os.environ["HR_MARKS"])

def mark(name):
    with open(MARKS / name, "a") as handle:
        handle.write("x")

def build(name, up):
    mark(name)
    if name == "s5" and not (MARKS / "go").exists():
        time.sleep(60)  # killed here on the first run
    rows = 200_000
    base = 0 if up is None else int(up.total.iloc[0])
    return pd.DataFrame({"total": [base + 1] * rows, "payload": range(rows)})

def first_step(name):
    def fn() -> pd.DataFrame:
        return build(name, None)
    return fn

def next_step(name):
    def fn(up: pd.DataFrame) -> pd.DataFrame:
        return build(name, up)
    return fn

definitions = [hr.asset(first_step("s0"), name="s0")]
for i in range(1, 10):
    definitions.append(hr.asset(next_step(f"s{i}"), name=f"s{i}", ins={"up": f"s{i - 1}"}))
"""


def _wait_for(path: Path, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while not path.exists():
        if time.time() > deadline:
            raise AssertionError(f"{path} never appeared")
        time.sleep(0.05)


def _start_run(tmp_path: Path) -> tuple[Path, Path, subprocess.Popen[bytes]]:
    """A workspace with the chain, and ``headrace materialize`` started on it."""
    marks = tmp_path / "marks"
    marks.mkdir()
    root = tmp_path / "ws"
    write_project(root, CHAIN)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADRACE_")}
    env["HR_MARKS"] = str(marks)
    proc = subprocess.Popen(
        [sys.executable, "-m", "headrace", "materialize"],
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return root, marks, proc


def _marks(folder: Path) -> dict[str, int]:
    return {p.name: len(p.read_text()) for p in folder.iterdir() if p.name.startswith("s")}


def test_kill_9_leaves_no_half_made_version_and_resume_finishes(tmp_path: Path) -> None:
    root, marks, proc = _start_run(tmp_path)
    try:
        _wait_for(marks / "s5")
        time.sleep(0.2)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()

    ws = hr.open_workspace(root)
    run = ws.store.runs.list(limit=1)[0]
    assert run.status == "running"  # nobody was left to record the end
    steps = {s.key: s for s in ws.store.runs.steps(run.id)}
    done = sorted(k for k, s in steps.items() if s.status == "success")
    assert done == [f"s{i}" for i in range(5)]
    assert steps["s5"].status == "running"
    # Every recorded version is whole: its blob exists and reads back.
    heads = ws.store.versions.heads("main")
    assert sorted(a for a, _ in heads) == done
    for version in heads.values():
        assert ws.blobs.exists(version.blob)
        assert len(hr.read(version.asset, workspace=ws)) == 200_000
    with pytest.raises(hr.HeadraceError):
        ws.store.versions.head("s5")

    (marks / "go").touch()
    env_proc = run_cli  # the CLI resumes in a new process, like a person would
    os.environ["HR_MARKS"] = str(marks)
    try:
        resumed = env_proc(root, "runs", "resume", run.id[:16])
    finally:
        del os.environ["HR_MARKS"]
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    counts = _marks(marks)
    assert counts == {f"s{i}": (2 if i == 5 else 1) for i in range(10)}
    ws2 = hr.open_workspace(root)
    assert ws2.store.runs.get(run.id).status == "success"
    final = hr.read("s9", workspace=ws2)
    assert int(final.total.iloc[0]) == 10


def test_resume_refuses_a_run_that_is_still_alive(tmp_path: Path) -> None:
    root, marks, proc = _start_run(tmp_path)
    try:
        _wait_for(marks / "s5")
        run = hr.open_workspace(root).store.runs.list(limit=1)[0]
        refused = run_cli(root, "runs", "resume", run.id)
        assert refused.returncode == 1
        assert f"is still running in process {proc.pid}" in refused.stderr
    finally:
        proc.kill()
        proc.wait(timeout=10)

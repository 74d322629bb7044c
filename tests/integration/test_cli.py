from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.conftest import run_cli
from tests.projects import write_project

pytestmark = pytest.mark.integration

PROJECT = """
import pandas as pd
import logging

@hr.asset(partitions=hr.monthly("2013-01", "2013-03"), group="ingest", tags=["raw"], owner="data")
def raw(partition: str) -> pd.DataFrame:
    \"\"\"Landed rows of one month.\"\"\"
    print(f"landing {partition}")
    return pd.DataFrame({"month": [partition], "n": [int(partition[-2:])]})

@hr.asset(group="features")
def summary(raw: pd.DataFrame, *, scale: int = 1) -> dict:
    logging.getLogger("headrace.asset.summary").warning("scaling by %d", scale)
    return {"n": int(raw.n.sum()) * scale}

@hr.asset
def broken(summary: dict) -> dict:
    raise RuntimeError(f"cannot use {summary}")
"""


def test_init_creates_the_workspace_and_keeps_an_existing_one(tmp_path: Path) -> None:
    proc = run_cli(tmp_path, "init", "ws", "--module", "flows", check=True)
    assert "created workspace" in proc.stdout
    config = (tmp_path / "ws" / "headrace.toml").read_text()
    assert 'module = "flows"' in config
    assert (tmp_path / "ws" / ".headrace").is_dir()
    again = run_cli(tmp_path, "init", "ws", check=True)
    assert "already has headrace.toml" in again.stdout
    assert (tmp_path / "ws" / "headrace.toml").read_text() == config


def test_commands_find_the_workspace_from_a_subfolder(tmp_path: Path) -> None:
    write_project(tmp_path, PROJECT)
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    proc = run_cli(tmp_path / "sub" / "deeper", "assets", "list", check=True)
    assert "raw" in proc.stdout and "summary" in proc.stdout and "monthly" in proc.stdout
    assert "Landed rows of one month." in proc.stdout


def test_materialize_show_logs_and_resume(tmp_path: Path) -> None:
    write_project(tmp_path, PROJECT)
    proc = run_cli(tmp_path, "materialize", "+summary", "--param", "scale=2")
    assert proc.returncode == 0, proc.stderr
    assert "raw[2013-01]" in proc.stdout and "success" in proc.stdout
    run_id = proc.stdout.split("run ", 1)[1].split()[0]

    shown = run_cli(tmp_path, "runs", "show", run_id[:12], check=True)
    assert "summary" in shown.stdout and '{"scale": "2"}' in shown.stdout

    logs = run_cli(tmp_path, "runs", "logs", run_id, "raw", check=True)
    assert "landing 2013-01" in logs.stdout and "landing 2013-03" in logs.stdout
    logs = run_cli(tmp_path, "runs", "logs", run_id, "summary", check=True)
    assert "scaling by 2" in logs.stdout

    cached = run_cli(tmp_path, "materialize", "+summary", "--param", "scale=2", check=True)
    assert "4 skipped" in cached.stdout and "cached" in cached.stdout

    failed = run_cli(tmp_path, "materialize", "broken")
    assert failed.returncode == 1
    assert "RuntimeError: cannot use" in failed.stdout
    failed_id = failed.stdout.split("run ", 1)[1].split()[0]
    shown = run_cli(tmp_path, "runs", "show", failed_id, check=True)
    assert "Traceback" in shown.stdout and "raise RuntimeError" in shown.stdout

    listed = run_cli(tmp_path, "runs", "list", check=True)
    assert failed_id[:10] in listed.stdout and "failed" in listed.stdout


def test_backfill_runs_only_missing_partitions(tmp_path: Path) -> None:
    write_project(tmp_path, PROJECT)
    run_cli(tmp_path, "materialize", "raw", "--partition", "2013-02", check=True)
    proc = run_cli(tmp_path, "backfill", "raw", "--partition", "2013-01..2013-03", check=True)
    assert "raw[2013-01]" in proc.stdout and "raw[2013-03]" in proc.stdout
    assert "raw[2013-02]" not in proc.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("materialize", "sumary"), "unknown asset 'sumary' (did you mean 'summary'?)"),
        (("materialize", "summary", "--param", "scale=big"), "param 'scale' expects int"),
        (("materialize", "summary", "--param", "scale"), "must look like NAME=VALUE"),
        (("materialize", "raw", "--partition", "2013-13"), "not a month like 2013-07"),
        (("materialize", "--executor", "gpu"), "unknown executor 'gpu'"),
        (("runs", "show", "nope"), "no run with id 'nope'"),
        (("runs", "resume", "nope"), "no run with id 'nope'"),
    ],
)
def test_errors_are_one_clear_line(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    write_project(tmp_path, PROJECT)
    proc = run_cli(tmp_path, *args)
    assert proc.returncode == 1
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    write_project(tmp_path, PROJECT)
    proc = run_cli(tmp_path, "--debug", "materialize", "sumary")
    assert proc.returncode != 0 and "Traceback" in proc.stderr


def test_definition_errors_name_the_asset(tmp_path: Path) -> None:
    write_project(
        tmp_path,
        """
        @hr.asset
        def a(b: int) -> int:
            return b

        @hr.asset
        def b(a: int) -> int:
            return a
        """,
    )
    proc = run_cli(tmp_path, "assets", "list")
    assert (proc.returncode == 1 and "cycle" in proc.stderr and "a -> b" in proc.stderr) or (
        "b -> a" in proc.stderr
    )


def test_outside_a_workspace(tmp_path: Path) -> None:
    proc = run_cli(tmp_path, "runs", "list")
    assert proc.returncode == 1 and "run 'headrace init'" in proc.stderr


def test_bad_settings_name_the_setting(tmp_path: Path) -> None:
    write_project(tmp_path, PROJECT)
    config = tmp_path / "headrace.toml"
    config.write_text(config.read_text().replace("max_concurrency = 4", "max_concurency = 4"))
    proc = run_cli(tmp_path, "runs", "list")
    assert proc.returncode == 1 and "unknown setting run.max_concurency" in proc.stderr

from __future__ import annotations

import os
import time
from pathlib import Path

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

import headrace as hr
from headrace.orchestration import service
from headrace.store.errors import VersionNotFoundError
from tests.projects import OPENED, open_project

PIPELINE = """
import pandas as pd
import polars as pl
import pyarrow as pa
import logging

@hr.asset(group="ingest", tags=["raw"])
def raw() -> pd.DataFrame:
    print("making raw")
    return pd.DataFrame({"k": [1, 2, 3], "v": [10.0, 20.0, 30.0]})

@hr.asset(group="features")
def doubled(raw: pl.DataFrame, *, factor: int = 2) -> pl.DataFrame:
    assert isinstance(raw, pl.DataFrame)
    return raw.with_columns((pl.col("v") * factor).alias("v"))

@hr.asset(group="features")
def total(doubled: pa.Table, context) -> dict:
    assert isinstance(doubled, pa.Table)
    context.log.info("summing %d rows", doubled.num_rows)
    return {"total": sum(doubled.column("v").to_pylist())}

@hr.asset
def independent() -> list:
    return [1, 2, 3]
"""


def test_materialize_stores_versions_lineage_and_converts_types(tmp_path: Path) -> None:
    ws = open_project(tmp_path, PIPELINE)
    result = hr.materialize(workspace=ws)
    assert result.success, result.steps
    assert sorted(result.materialized) == ["doubled", "independent", "raw", "total"]
    assert hr.read("total", workspace=ws) == {"total": 120.0}
    assert isinstance(hr.read("raw", workspace=ws), pd.DataFrame)
    assert isinstance(hr.read("raw", workspace=ws, as_="polars"), pl.DataFrame)
    assert isinstance(hr.read("doubled", workspace=ws, as_="arrow"), pa.Table)
    doubled = ws.store.versions.head("doubled")
    assert doubled.row_count == 3 and doubled.format == "parquet" and doubled.flavor == "polars"
    assert ["v", "double"] in doubled.schema  # type: ignore[operator]
    assert doubled.stats == {
        "k": {"nulls": 0, "min": 1, "max": 3},
        "v": {"nulls": 0, "min": 20.0, "max": 60.0},
    }
    record = ws.store.versions.get(ws.store.versions.head("total").id)
    assert record.inputs == {"doubled": [doubled.id]}
    steps = {s.key: s for s in ws.store.runs.steps(result.run_id)}
    assert steps["raw"].status == "success" and steps["raw"].attempts == 1
    assert steps["raw"].reason == "no previous version"
    logs = ws.store.runs.logs(result.run_id)
    assert any(
        e.step_key == "raw" and e.stream == "stdout" and "making raw" in e.text for e in logs
    )
    assert any(
        e.step_key == "total" and e.stream == "log" and "summing 3 rows" in e.text for e in logs
    )


def test_caching_skips_unchanged_steps_and_says_why(tmp_path: Path) -> None:
    ws = open_project(tmp_path, PIPELINE)
    first = hr.materialize(workspace=ws)
    again = hr.materialize(workspace=ws)
    assert sorted(again.skipped) == sorted(first.materialized)
    assert all("cached" in (again.steps[k].reason or "") for k in again.skipped)
    assert again.steps["total"].version_id == first.steps["total"].version_id

    changed = hr.materialize(workspace=ws, params={"factor": "3"})
    assert changed.steps["raw"].status == "skipped"
    assert changed.steps["doubled"].status == "success"
    assert changed.steps["doubled"].reason == "params changed"
    assert changed.steps["total"].reason == "inputs changed"
    assert hr.read("total", workspace=ws) == {"total": 180.0}
    run = ws.store.runs.get(changed.run_id)
    assert run.params == {"factor": "3"}

    forced = hr.materialize("raw", workspace=ws, force=True)
    assert forced.materialized == ["raw"] and forced.steps["raw"].reason == "forced"


def test_code_change_reruns_the_asset_and_its_downstream(tmp_path: Path) -> None:
    ws = open_project(tmp_path, PIPELINE)
    hr.materialize(workspace=ws)
    changed_module = f"proj_changed_{tmp_path.name[-12:].replace('-', '_')}"
    (tmp_path / f"{changed_module}.py").write_text(
        "import headrace as hr\n"
        + PIPELINE.replace('pl.col("v") * factor', 'pl.col("v") * factor + 1')
    )
    ws2 = hr.open_workspace(tmp_path, project_module=changed_module)
    OPENED.append(ws2)
    rerun = hr.materialize(workspace=ws2)
    assert rerun.steps["raw"].status == "skipped"
    assert rerun.steps["independent"].status == "skipped"
    assert rerun.steps["doubled"].reason == "code changed"
    assert rerun.steps["total"].reason == "inputs changed"


FAILING = """
import json, os
from pathlib import Path

COUNTS = Path(os.environ["HR_TEST_DIR"]) / "counts.json"

def bump(name):
    counts = json.loads(COUNTS.read_text()) if COUNTS.exists() else {}
    counts[name] = counts.get(name, 0) + 1
    COUNTS.write_text(json.dumps(counts))
    return counts[name]

@hr.asset
def base() -> int:
    bump("base")
    return 1

@hr.asset
def broken(base: int) -> int:
    bump("broken")
    if not (Path(os.environ["HR_TEST_DIR"]) / "fixed").exists():
        raise ValueError("bad value in row 7")
    return base + 1

@hr.asset
def after_broken(broken: int) -> int:
    bump("after_broken")
    return broken + 1

@hr.asset
def sibling(base: int) -> int:
    bump("sibling")
    return base + 10

@hr.asset(retry=hr.RetryPolicy(max_retries=2, delay=0.01, backoff=2))
def flaky() -> int:
    if bump("flaky") < 3:
        raise ConnectionError("temporarily unavailable")
    return 3

@hr.asset(retry=hr.RetryPolicy(max_retries=3, delay=0.01, retry_on=(ConnectionError,)))
def wrong_kind() -> int:
    bump("wrong_kind")
    raise KeyError("not retryable")
"""


def _counts(tmp_path: Path) -> dict[str, int]:
    import json

    return dict(json.loads((tmp_path / "counts.json").read_text()))


@pytest.fixture
def failing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> hr.Workspace:
    monkeypatch.setenv("HR_TEST_DIR", str(tmp_path))
    return open_project(tmp_path, FAILING)


def test_a_failure_stops_only_its_downstream(failing: hr.Workspace, tmp_path: Path) -> None:
    result = hr.materialize("base broken after_broken sibling", workspace=failing)
    assert result.status == "failed"
    assert result.steps["sibling"].status == "success"
    assert result.steps["broken"].status == "failed"
    assert result.steps["after_broken"].status == "upstream_failed"
    assert "after_broken" not in _counts(tmp_path)
    step = {s.key: s for s in failing.store.runs.steps(result.run_id)}["broken"]
    assert step.error == "asset 'broken' failed: ValueError: bad value in row 7"
    assert step.traceback is not None
    assert 'raise ValueError("bad value in row 7")' in step.traceback
    assert "headrace/orchestration" not in step.traceback
    assert failing.store.runs.get(result.run_id).status == "failed"
    with pytest.raises(VersionNotFoundError):
        failing.store.versions.head("broken")


def test_retries_with_backoff_then_success(failing: hr.Workspace, tmp_path: Path) -> None:
    result = hr.materialize("flaky", workspace=failing)
    assert result.success
    assert result.steps["flaky"].attempts == 3 and _counts(tmp_path)["flaky"] == 3
    logs_by_attempt = {s.attempts for s in failing.store.runs.steps(result.run_id)}
    assert logs_by_attempt == {3}


def test_retry_on_limits_which_errors_are_retried(failing: hr.Workspace, tmp_path: Path) -> None:
    result = hr.materialize("wrong_kind", workspace=failing)
    assert result.steps["wrong_kind"].status == "failed"
    assert _counts(tmp_path)["wrong_kind"] == 1


def test_resume_reruns_only_what_did_not_finish(failing: hr.Workspace, tmp_path: Path) -> None:
    first = hr.materialize("base broken after_broken sibling", workspace=failing)
    assert not first.success
    (tmp_path / "fixed").touch()
    resumed = hr.resume(first.run_id, workspace=failing)
    assert resumed.success and resumed.run_id == first.run_id
    counts = _counts(tmp_path)
    assert counts == {"base": 1, "sibling": 1, "broken": 2, "after_broken": 1}
    steps = {s.key: s.status for s in failing.store.runs.steps(first.run_id)}
    assert steps == {
        "base": "success",
        "sibling": "success",
        "broken": "success",
        "after_broken": "success",
    }
    with pytest.raises(hr.HeadraceError, match="already succeeded"):
        hr.resume(first.run_id, workspace=failing)


def test_missing_upstream_version_fails_the_step_clearly(failing: hr.Workspace) -> None:
    result = hr.materialize("sibling", workspace=failing)
    assert result.steps["sibling"].status == "failed"
    assert "reads 'base', which has no version on branch 'main'" in (
        result.steps["sibling"].error or ""
    )


def test_unsafe_return_values_need_a_declared_serializer(tmp_path: Path) -> None:
    ws = open_project(
        tmp_path,
        """
        class Model:
            def __init__(self):
                self.w = 3

        @hr.asset
        def undeclared() -> object:
            return Model()

        @hr.asset(io="pickle")
        def declared() -> object:
            return Model()

        @hr.asset
        def nothing() -> None:
            return None
        """,
    )
    result = hr.materialize(workspace=ws)
    assert "no safe serializer" in (result.steps["undeclared"].error or "")
    assert "io='pickle'" in (result.steps["undeclared"].error or "")
    assert result.steps["declared"].status == "success"
    assert hr.read("declared", workspace=ws).w == 3
    assert "returned None" in (result.steps["nothing"].error or "")


TIMEOUTS = """
import time

@hr.asset(timeout=0.3)
def slow() -> int:
    time.sleep(10)
    return 1

@hr.asset
def fast() -> int:
    return 2
"""


@pytest.mark.parametrize("executor", ["in_process", "threads", "processes"])
def test_timeouts_fail_the_step_and_not_the_others(tmp_path: Path, executor: str) -> None:
    ws = open_project(tmp_path, TIMEOUTS)
    started = time.perf_counter()
    result = hr.materialize(workspace=ws, executor=executor, max_concurrency=2)
    elapsed = time.perf_counter() - started
    assert result.steps["slow"].status == "failed"
    assert "did not finish within its timeout of 0.3 s" in (result.steps["slow"].error or "")
    assert result.steps["fast"].status == "success"
    assert elapsed < 8


EXECUTORS = """
import os, threading, time
import pandas as pd

@hr.asset(partitions=hr.static(["a", "b", "c", "d"]))
def part(partition: str) -> pd.DataFrame:
    print(f"out {partition}")
    time.sleep(0.05)
    print(f"end {partition}")
    return pd.DataFrame({"p": [partition], "pid": [os.getpid()]})

@hr.asset
def combined(part: pd.DataFrame) -> pd.DataFrame:
    return part
"""


@pytest.mark.parametrize("executor", ["in_process", "threads", "processes"])
def test_executors_give_the_same_results(tmp_path: Path, executor: str) -> None:
    ws = open_project(tmp_path, EXECUTORS)
    result = hr.materialize(workspace=ws, executor=executor, max_concurrency=2)
    assert result.success, {k: s.error for k, s in result.steps.items()}
    combined = hr.read("combined", workspace=ws)
    assert list(combined.p) == ["a", "b", "c", "d"]
    pids = set(combined.pid)
    if executor == "processes":
        assert os.getpid() not in pids
    else:
        assert pids == {os.getpid()}
    for entry in ws.store.runs.logs(result.run_id):
        partition = entry.step_key[5:6]
        assert entry.text == f"out {partition}\nend {partition}\n", entry


RUNNING_TOTAL = """
import pandas as pd

MONTHS = hr.monthly("2013-01", "2013-04")

@hr.asset(partitions=MONTHS)
def sales(partition: str) -> pd.DataFrame:
    month = int(partition[-2:])
    return pd.DataFrame({"month": [partition] * month, "amount": [1.0] * month})

@hr.asset(partitions=MONTHS, ins={"previous": hr.upstream("running", partition_offset=-1)})
def running(sales: pd.DataFrame, previous: dict | None = None) -> dict:
    before = previous["total"] if previous else 0.0
    return {"total": before + float(sales.amount.sum())}

@hr.asset
def all_sales(sales: pd.DataFrame) -> pd.DataFrame:
    return sales
"""


def test_partitions_running_total_and_backfill(tmp_path: Path) -> None:
    ws = open_project(tmp_path, RUNNING_TOTAL)
    first = hr.materialize("sales running", partitions="2013-01..2013-02", workspace=ws)
    assert sorted(first.materialized) == [
        "running[2013-01]",
        "running[2013-02]",
        "sales[2013-01]",
        "sales[2013-02]",
    ]
    filled = hr.backfill("sales running", partitions="2013-01..2013-04", workspace=ws)
    assert sorted(filled.materialized) == [
        "running[2013-03]",
        "running[2013-04]",
        "sales[2013-03]",
        "sales[2013-04]",
    ]
    totals = [
        hr.read("running", partition=f"2013-0{m}", workspace=ws)["total"] for m in range(1, 5)
    ]
    assert totals == [1.0, 3.0, 6.0, 10.0]
    assert hr.read("running", workspace=ws) == {
        f"2013-0{m}": {"total": t} for m, t in zip(range(1, 5), totals, strict=True)
    }
    nothing = hr.backfill("sales", partitions="2013-01..2013-04", workspace=ws)
    assert nothing.steps == {}
    whole = hr.materialize("all_sales", workspace=ws)
    assert whole.success and len(hr.read("all_sales", workspace=ws)) == 1 + 2 + 3 + 4
    with pytest.raises(hr.HeadraceError, match="outside"):
        hr.materialize("sales", partitions="2014-01", workspace=ws)


def test_read_errors_name_the_asset(tmp_path: Path) -> None:
    ws = open_project(tmp_path, PIPELINE)
    with pytest.raises(VersionNotFoundError, match="asset 'raw' has no version on branch 'main'"):
        service.read(ws, "raw")
    hr.materialize("raw", workspace=ws)
    version = ws.store.versions.head("raw").id
    with pytest.raises(VersionNotFoundError, match="belongs to asset 'raw', not 'total'"):
        service.read(ws, "total", version=version)
    assert len(service.read(ws, "raw", version=version[:10])) == 3


OBSERVED = """
import os
from pathlib import Path
import pandas as pd

def landed(partition, workspace_root):
    stat = (Path(workspace_root) / f"in-{partition}.csv").stat()
    return f"{stat.st_size}:{stat.st_mtime_ns}"

@hr.asset(partitions=hr.static(["a", "b"]), source_version=landed)
def ingested(partition: str, context) -> pd.DataFrame:
    return pd.read_csv(context.workspace_root / f"in-{partition}.csv")

@hr.asset
def rows(ingested: pd.DataFrame) -> int:
    return len(ingested)
"""


def test_source_version_notices_changed_outside_data(tmp_path: Path) -> None:
    ws = open_project(tmp_path, OBSERVED)
    (tmp_path / "in-a.csv").write_text("x\n1\n2\n")
    (tmp_path / "in-b.csv").write_text("x\n3\n")
    assert hr.materialize(workspace=ws).success
    assert hr.read("rows", workspace=ws) == 3
    unchanged = hr.materialize(workspace=ws)
    assert sorted(unchanged.skipped) == ["ingested[a]", "ingested[b]", "rows"]
    (tmp_path / "in-a.csv").write_text("x\n1\n2\n5\n7\n")
    changed = hr.materialize(workspace=ws)
    assert changed.steps["ingested[a]"].reason == "source changed"
    assert changed.steps["ingested[b]"].status == "skipped"
    assert hr.read("rows", workspace=ws) == 5
    (tmp_path / "in-b.csv").unlink()
    missing = hr.materialize(workspace=ws)
    error = missing.steps["ingested[b]"].error or ""
    assert "its source_version function failed: FileNotFoundError" in error
    assert missing.steps["rows"].status == "upstream_failed"


@pytest.mark.postgres
def test_the_same_pipeline_runs_on_postgresql(tmp_path: Path, postgres_url: str) -> None:
    open_project(tmp_path, PIPELINE)
    ws = hr.open_workspace(tmp_path, metadata_url=postgres_url)
    OPENED.append(ws)
    assert ws.store.dialect == "postgresql"
    first = hr.materialize(workspace=ws, params={"factor": "3"})
    assert first.success
    assert hr.read("total", workspace=ws) == {"total": 180.0}
    again = hr.materialize(workspace=ws, params={"factor": "3"})
    assert sorted(again.skipped) == sorted(first.materialized)
    assert ws.store.runs.get(first.run_id).params == {"factor": "3"}
    assert not (tmp_path / ".headrace" / "headrace.db").exists()


def test_type_mismatches_between_annotations_and_values_are_named(tmp_path: Path) -> None:
    ws = open_project(
        tmp_path,
        """
        import pandas as pd

        @hr.asset
        def numbers() -> dict:
            return {"a": 1}

        @hr.asset
        def wants_table(numbers: pd.DataFrame) -> int:
            return len(numbers)

        @hr.asset
        def says_table() -> pd.DataFrame:
            return [1, 2, 3]
        """,
    )
    result = hr.materialize(workspace=ws)
    assert "parameter 'numbers' is annotated as a pandas table" in (
        result.steps["wants_table"].error or ""
    )
    assert "holds json data, not a table" in (result.steps["wants_table"].error or "")
    assert "annotated to return a pandas table but returned a builtins.list" in (
        result.steps["says_table"].error or ""
    )


class _Recording:
    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    def run_started(self, run: object) -> None:
        self.calls.append(("run_started", run))

    def step_started(self, event: object) -> None:
        self.calls.append(("step_started", event))

    def step_finished(self, event: object) -> None:
        self.calls.append(("step_finished", event))

    def run_finished(self, run: object, status: str, at: float, error: str | None) -> None:
        self.calls.append(("run_finished", status))


class _Broken(_Recording):
    def step_finished(self, event: object) -> None:
        raise RuntimeError("observer bug")


def test_observers_see_versions_read_and_written_and_cannot_break_a_run(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ws = open_project(tmp_path, PIPELINE)
    seen, broken = _Recording(), _Broken()
    result = hr.materialize(workspace=ws, observers=[broken, seen])
    assert result.success
    kinds = [k for k, _ in seen.calls]
    assert kinds[0] == "run_started" and seen.calls[-1] == ("run_finished", "success")
    finished = {e.asset: e for k, e in seen.calls if k == "step_finished"}  # type: ignore[attr-defined]
    total = finished["total"]
    assert [i.asset for i in total.inputs] == ["doubled"]
    assert total.inputs[0].schema == [["k", "int64"], ["v", "double"]]
    assert total.output is not None and total.output.version_id == result.steps["total"].version_id
    assert total.run.project == ws.settings.project_name
    assert "observer bug" in caplog.text

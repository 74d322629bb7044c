"""references, anomaly, schema-drift and custom checks inside pipelines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import headrace as hr
from headrace.orchestration.testing import check_asset
from tests.integration.conftest import run_cli
from tests.projects import open_project

REFERENCES = """
import json
from pathlib import Path
import polars as pl
from headrace import checks as c

def _known(context) -> list[str]:
    path = Path(context.workspace_root) / "known.json"
    return json.loads(path.read_text()) if path.exists() else ["N1", "N2"]

@hr.asset
def planes(context) -> pl.DataFrame:
    return pl.DataFrame({"tailnum": _known(context)})

@hr.asset(checks=[c.references("tailnum", "planes", severity="warn")])
def flights() -> pl.DataFrame:
    return pl.DataFrame({"id": [1, 2, 3], "tailnum": ["N1", "N3", None]})
"""


@pytest.mark.parametrize("executor", ["in_process", "processes"])
def test_references_read_the_referenced_assets_current_version(
    tmp_path: Path, executor: str
) -> None:
    ws = open_project(tmp_path, REFERENCES)
    # The referenced asset runs first, though flights does not read it as an input.
    result = hr.materialize(workspace=ws, executor=executor)
    assert result.success
    assert [k for k, _ in sorted(result.steps.items(), key=lambda i: i[1].started_at or 0)] == [
        "planes",
        "flights",
    ]
    head = ws.store.versions.head("flights")
    [check] = ws.store.quality.results(head.id)
    assert not check.passed and check.failing_rows == 1 and check.sample[0]["tailnum"] == "N3"
    assert "warnings: tailnum_in_planes" in (result.steps["flights"].reason or "")
    # planes changes: flights' checks re-run (its cache key names the referenced version).
    (tmp_path / "known.json").write_text(json.dumps(["N1", "N2", "N3"]))
    hr.materialize("planes", workspace=ws, force=True)
    again = hr.materialize(workspace=ws, executor=executor)
    assert again.steps["flights"].status == "success"
    [recheck] = ws.store.quality.results(ws.store.versions.head("flights").id)
    assert recheck.passed


def test_a_reference_without_a_version_fails_the_step_clearly(tmp_path: Path) -> None:
    ws = open_project(tmp_path, REFERENCES)
    result = hr.materialize("flights", workspace=ws)
    step = result.steps["flights"]
    assert step.status == "failed"
    assert "'flights' reads 'planes', which has no version on branch 'main'" in (step.error or "")


ANOMALY = """
import json
from pathlib import Path
import polars as pl
from headrace import checks as c

@hr.asset(
    partitions=hr.static([f"p{i:02d}" for i in range(12)]),
    checks=[
        c.anomaly("row_count", window=10, k=3, min_history=5, severity="error"),
        c.schema(),
    ],
)
def events(partition: str, context) -> pl.DataFrame:
    sizes = json.loads((Path(context.workspace_root) / "sizes.json").read_text())
    n = sizes.get(partition, 100 + int(partition[1:]) % 3)
    frame = pl.DataFrame({"id": list(range(n))})
    if partition in sizes.get("_extra_column", []):
        frame = frame.with_columns(pl.lit("x").alias("note"))
    return frame
"""


def test_anomaly_checks_learn_from_earlier_partitions_and_runs(tmp_path: Path) -> None:
    (tmp_path / "sizes.json").write_text(json.dumps({"p09": 5000}))
    ws = open_project(tmp_path, ANOMALY)
    result = hr.materialize(workspace=ws)
    # p00..p04 only teach; p09's row count is far outside the limits learned so far.
    assert result.steps["events[p09]"].status == "failed"
    assert "row_count_anomaly" in (result.steps["events[p09]"].error or "")
    assert [k for k, s in result.steps.items() if s.status == "failed"] == ["events[p09]"]
    held = ws.store.quality.quarantined()[0]
    [anomaly] = [r for r in ws.store.quality.results(held.version_id) if r.kind == "anomaly"]
    assert anomaly.observed == 5000 and anomaly.upper is not None and anomaly.upper < 200
    learning = ws.store.quality.results(ws.store.versions.head("events", partition="p00").id)
    assert "learning" in (next(r for r in learning if r.kind == "anomaly").message or "")
    # The quarantined value stays out of the history that later limits learn from.
    history = ws.store.quality.metric_history("events", ["row_count_anomaly"])
    assert 5000.0 not in history["row_count_anomaly"] and len(history["row_count_anomaly"]) == 11
    # Re-checking a stored version judges it against the history before it.
    [outcome] = check_asset(ws, "events", version=held.version_id)
    assert not outcome.report["row_count_anomaly"].passed


def test_schema_drift_quarantines_a_partition_whose_columns_changed(tmp_path: Path) -> None:
    (tmp_path / "sizes.json").write_text(json.dumps({"_extra_column": ["p03"]}))
    ws = open_project(tmp_path, ANOMALY)
    result = hr.materialize(workspace=ws)
    failed = [k for k, s in result.steps.items() if s.status == "failed"]
    assert failed == ["events[p03]"]
    assert "schema drift since the previous version: added note" in (
        result.steps["events[p03]"].error or ""
    )


def test_a_new_partition_in_its_own_run_is_compared_with_the_newest_stored_one(
    tmp_path: Path,
) -> None:
    """A run of one partition reads only that partition's head; schema drift still
    compares a new partition with the newest version the branch holds."""
    (tmp_path / "sizes.json").write_text(json.dumps({"_extra_column": ["p03"]}))
    ws = open_project(tmp_path, ANOMALY)
    assert hr.materialize(partitions="p00..p02", workspace=ws).success
    drifted = hr.materialize(partitions="p03", workspace=ws)
    assert "schema drift since the previous version: added note" in (
        drifted.steps["events[p03]"].error or ""
    )
    assert ws.store.versions.heads("main", keys=[("events", "p03")]) == {}
    assert hr.materialize(partitions="p04", workspace=ws).success  # as p02 was
    heads = ws.store.versions.heads("main", keys=[("events", "p04"), ("events", "p00")])
    assert sorted(heads) == [("events", "p00"), ("events", "p04")]


CUSTOM = """
import polars as pl

@hr.asset
def orders() -> pl.DataFrame:
    return pl.DataFrame({"qty": [1, 2, 0, 4], "price": [1.0, 2.0, 3.0, -1.0]})
"""

CHECKS_MODULE = """
import polars as pl

def positive_revenue(df: pl.DataFrame) -> pl.Series:
    return df["qty"] * df["price"] > 0
"""


def test_custom_checks_from_yaml_and_the_check_command(tmp_path: Path) -> None:
    ws = open_project(tmp_path, CUSTOM, module="orders_proj")
    (tmp_path / "order_checks.py").write_text(CHECKS_MODULE)
    (tmp_path / "orders.checks.yaml").write_text(
        "asset: orders\nchecks:\n"
        "  - custom: {function: 'order_checks:positive_revenue', mostly: 0.4}\n"
        "  - anomaly: {metric: mean, column: qty}\n"
    )
    done = run_cli(tmp_path, "materialize")
    assert done.returncode == 0, done.stdout + done.stderr
    head = ws.store.versions.head("orders")
    results = {r.name: r for r in ws.store.quality.results(head.id)}
    assert results["positive_revenue"].passed and results["positive_revenue"].failing_rows == 2
    assert results["qty_mean_anomaly"].observed == pytest.approx(1.75)
    checked = run_cli(tmp_path, "check", "orders")
    assert checked.returncode == 0 and "passed" in checked.stdout
    (tmp_path / "orders.checks.yaml").write_text(
        "asset: orders\nchecks:\n  - custom: {function: 'order_checks:positive_revenu'}\n"
    )
    typo = run_cli(tmp_path, "check", "orders")
    assert typo.returncode != 0
    assert "has no function 'positive_revenu' (did you mean 'positive_revenue'?)" in (
        typo.stdout + typo.stderr
    )

"""Inside an asset the pipeline run is the tracked run."""

from __future__ import annotations

from pathlib import Path

import pytest

import headrace as hr
from headrace.core.tracking import TrackingError
from tests.projects import open_project

PROJECT = """
import polars as pl

@hr.asset
def data() -> pl.DataFrame:
    return pl.DataFrame({"x": list(range(100))})

@hr.asset
def model(data: pl.DataFrame, *, epochs: int = 3) -> dict:
    hr.log_params({"epochs": epochs, "rows": data.height})
    for epoch in range(epochs):
        hr.log_metric("loss", 1 / (epoch + 1), step=epoch)
    hr.set_tag("framework", "none")
    return {"weights": [1, 2, 3]}

@hr.asset
def broken(data: pl.DataFrame) -> int:
    hr.log_metric("progress", 0.5)
    raise RuntimeError("diverged")

@hr.asset
def clash(data: pl.DataFrame) -> int:
    hr.log_param("rows", -1)
    return 1
"""


@pytest.mark.parametrize("executor", ["in_process", "threads", "processes"])
def test_what_an_asset_logs_lands_on_its_pipeline_run(tmp_path: Path, executor: str) -> None:
    ws = open_project(tmp_path, PROJECT)
    result = hr.materialize("data model broken", workspace=ws, executor=executor)
    assert result.steps["model"].status == "success"
    assert result.steps["broken"].status == "failed"
    tracking = ws.store.tracking
    assert tracking.params(result.run_id) == {"epochs": "3", "rows": "100"}
    metrics = tracking.metrics(result.run_id)
    # The failing asset's metric, logged before it raised, is kept.
    assert metrics == {"loss": pytest.approx(1 / 3), "progress": 0.5}
    assert tracking.tags(result.run_id) == {"framework": "none"}
    page = tracking.search(filter="metrics.loss < 0.5 AND params.epochs = 3")
    assert [(r.id, r.experiment) for r in page.runs] == [(result.run_id, "default")]
    assert page.runs[0].trigger == ws.store.runs.get(result.run_id).trigger != "tracking"


def test_a_param_logged_twice_with_another_value_fails_the_step(tmp_path: Path) -> None:
    ws = open_project(tmp_path, PROJECT)
    result = hr.materialize("data model clash", workspace=ws, executor="in_process")
    failed = [k for k, s in result.steps.items() if s.status == "failed"]
    assert len(failed) == 1
    error = result.steps[failed[0]].error or ""
    assert "logged param 'rows'" in error and "params are fixed" in error
    assert ws.store.tracking.params(result.run_id)["rows"] in ("100", "-1")


def test_start_run_inside_an_asset_is_refused(tmp_path: Path) -> None:
    source = (
        PROJECT
        + """
@hr.asset
def nested() -> int:
    with hr.start_run():
        return 1
"""
    )
    ws = open_project(tmp_path, source)
    result = hr.materialize("nested", workspace=ws)
    assert "the pipeline run is the tracked run" in (result.steps["nested"].error or "")
    assert TrackingError.__name__ in (result.steps["nested"].error or "")

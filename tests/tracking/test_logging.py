"""Logging params, metrics, tags and artifacts on runs started with start_run."""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import headrace as hr
from headrace.core.tracking import TrackingError
from headrace.runtime.workspace import Workspace
from headrace.tracking import runs


def test_a_run_records_params_metrics_tags_and_ends(ws: Workspace) -> None:
    with hr.start_run("churn", name="baseline", workspace=ws, tags={"team": "growth"}) as run:
        hr.log_params({"lr": 0.01, "model": "logreg"})
        hr.log_param("lr", 0.01)  # the same value again is fine
        for step in range(5):
            hr.log_metric("loss", 1.0 / (step + 1), step=step)
        hr.log_metrics({"auc": 0.81, "log_loss": float("nan")})
        hr.set_tag("stage", "dev")
        assert hr.active_run() is run
    assert hr.active_run() is None
    tracking = ws.store.tracking
    assert tracking.params(run.id) == {"lr": "0.01", "model": "logreg"}
    assert tracking.tags(run.id) == {"team": "growth", "stage": "dev"}
    metrics = tracking.metrics(run.id)
    assert metrics["loss"] == pytest.approx(0.2) and metrics["auc"] == 0.81
    assert math.isnan(metrics["log_loss"])
    history = [p.value for _, p in tracking.metric_history([run.id], ["loss"])]
    assert history == pytest.approx([1, 0.5, 1 / 3, 0.25, 0.2])
    record = ws.store.runs.get(run.id)
    assert record.status == "success" and record.trigger == "tracking" and record.ended_at
    assert [e.name for e in tracking.experiments()] == ["churn"]


def test_the_latest_value_is_the_highest_step_not_the_last_call(ws: Workspace) -> None:
    with hr.start_run(workspace=ws) as run:
        hr.log_metric("acc", 0.9, step=10)
        hr.log_metric("acc", 0.1, step=3)  # a late value of an earlier step
    assert ws.store.tracking.metrics(run.id) == {"acc": 0.9}
    assert ws.store.runs.get(run.id).status == "success"


def test_metrics_are_written_in_batches_while_the_run_goes_on(ws: Workspace) -> None:
    with hr.start_run("batches", workspace=ws) as run:
        for i in range(runs.FLUSH_EVERY + 5):
            hr.log_metric("x", i, step=i)
        # The first thousand are already in the store; the rest wait in the buffer.
        stored = ws.store.tracking.metric_history([run.id], ["x"])
        assert len(stored) == runs.FLUSH_EVERY
    assert len(ws.store.tracking.metric_history([run.id], ["x"])) == runs.FLUSH_EVERY + 5


def test_an_exception_in_user_code_fails_the_run_and_keeps_what_it_logged(ws: Workspace) -> None:
    with pytest.raises(ZeroDivisionError), hr.start_run(workspace=ws) as run:
        hr.log_metric("before", 1.0)
        hr.log_param("p", "v")
        _ = 1 / 0
    assert ws.store.runs.get(run.id).status == "failed"
    assert ws.store.tracking.metrics(run.id) == {"before": 1.0}
    assert ws.store.tracking.params(run.id) == {"p": "v"}


def test_nested_runs_need_nested_true(ws: Workspace) -> None:
    with hr.start_run("search", workspace=ws) as parent:
        with pytest.raises(TrackingError, match="still active; end it first, or pass nested=True"):
            hr.start_run(workspace=ws)
        with hr.start_run(nested=True, name="trial-1", workspace=ws) as child:
            hr.log_metric("score", 3.0)  # goes to the innermost run
        hr.log_metric("best", 3.0)
    assert ws.store.tracking.metrics(child.id) == {"score": 3.0}
    assert ws.store.tracking.metrics(parent.id) == {"best": 3.0}
    page = ws.store.tracking.search(filter=f"attributes.parent_run_id = '{parent.id}'")
    assert [(r.name, r.experiment) for r in page.runs] == [("trial-1", "search")]


def test_bad_input_is_refused_with_the_key_named(ws: Workspace) -> None:
    with pytest.raises(TrackingError, match="no active run"):
        hr.log_metric("loss", 1.0)
    with hr.start_run(workspace=ws):
        hr.log_param("lr", 0.1)
        with pytest.raises(TrackingError, match=r"param 'lr' is already '0\.1' and cannot become"):
            hr.log_param("lr", 0.2)
        with pytest.raises(TrackingError, match="metric 'loss': 'high' is not a number"):
            hr.log_metric("loss", "high")  # type: ignore[arg-type]
        with pytest.raises(TrackingError, match="metric 'ok': True is not a number"):
            hr.log_metric("ok", True)
        with pytest.raises(TrackingError, match="step must be a whole number"):
            hr.log_metric("loss", 1.0, step=1.5)  # type: ignore[arg-type]
        with pytest.raises(TrackingError, match="not a finite number"):
            hr.log_metric("loss", float("inf"))
        with pytest.raises(TrackingError, match="metric key ''"):
            hr.log_metric("", 1.0)
        with pytest.raises(TrackingError, match="param key ' lr'"):
            hr.log_param(" lr", 1)
        with pytest.raises(TrackingError, match="at most 6,000"):
            hr.log_param("text", "x" * 7000)
        with pytest.raises(TrackingError, match="does not exist"):
            hr.log_artifact("/nonexistent/file.txt")
        hr.log_metric("loss", 1.0)  # the refused calls left nothing behind
    with pytest.raises(TrackingError, match="experiment name ''"):
        hr.start_run("", workspace=ws)


def test_artifacts_are_stored_as_blobs(ws: Workspace, tmp_path: Path) -> None:
    report = tmp_path / "report.txt"
    report.write_text("confusion matrix")
    folder = tmp_path / "plots"
    (folder / "sub").mkdir(parents=True)
    (folder / "roc.svg").write_text("<svg/>")
    (folder / "sub" / "pr.svg").write_text("<svg></svg>")
    with hr.start_run(workspace=ws) as run:
        assert hr.log_artifact(report) == ["report.txt"]
        assert hr.log_artifact(folder, "figures") == ["figures/roc.svg", "figures/sub/pr.svg"]
    stored = {path: blob for path, blob, _ in ws.store.tracking.artifacts(run.id)}
    assert set(stored) == {"report.txt", "figures/roc.svg", "figures/sub/pr.svg"}
    assert ws.blobs.get_bytes(stored["report.txt"]) == b"confusion matrix"


def test_a_run_left_open_is_written_and_ended_at_exit(tmp_path: Path) -> None:
    from headrace.workspace.settings import init_workspace

    init_workspace(tmp_path)
    script = textwrap.dedent(
        """
        import headrace as hr
        run = hr.start_run("exit")
        for i in range(10):
            hr.log_metric("m", i, step=i)
        print(run.id)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    run_id = done.stdout.strip()
    ws = hr.open_workspace(tmp_path)
    try:
        assert ws.store.runs.get(run_id).status == "success"
        assert len(ws.store.tracking.metric_history([run_id])) == 10
    finally:
        ws.close()

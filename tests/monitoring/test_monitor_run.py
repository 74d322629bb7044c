"""A monitor over a served model's prediction log: windows, drift against the training
data found through lineage, measured and estimated performance, alerts with a cooldown,
and retraining that the promotion policy decides."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import headrace as hr
from headrace.core.monitors import MONITORS
from headrace.monitoring.runner import MonitorError, run_monitor
from headrace.registry.service import resolve, set_alias
from headrace.runtime.workspace import Workspace
from headrace.serving.app import ServeOptions, Server
from tests.projects import open_project

PROJECT = """
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from headrace import monitors as m
from headrace import policies as p

COLUMNS = ["distance", "temp"]


def world(rows, season, seed):
    rng = np.random.default_rng(seed)
    shift = 0.0 if season == 1 else 900.0
    frame = pd.DataFrame({
        "distance": rng.normal(1500 + shift, 300, rows),
        "temp": rng.normal(50, 15, rows),
    })
    frame["season"] = season
    logit = (frame.distance - 1500 - shift) / 300 - (frame.temp - 50) / 15
    frame["delayed"] = (rng.random(rows) < 1 / (1 + np.exp(-2 * logit))).astype(int)
    return frame


@hr.asset
def features() -> pd.DataFrame:
    return pd.concat([world(3000, 1, 1), world(3000, 2, 2)], ignore_index=True)


@hr.model(signature_from="features")
def delay_model(features: pd.DataFrame, *, season: int = 1) -> LogisticRegression:
    train = features[features.season == season]
    model = LogisticRegression().fit(train[COLUMNS], train.delayed)
    scores = model.predict_proba(train[COLUMNS])[:, 1]
    hr.log_metric("holdout_auc", float(roc_auc_score(train.delayed, scores)))
    return model


p.promotion_policy("delay_model", to="champion", rules=[p.metric_at_least("holdout_auc", 0.5)])

WATCH = m.monitor(
    "delay_watch",
    model="delay_model",
    reference_where="season = {season}",
    window=500,
    min_rows=200,
    target="delayed",
    limits=[m.performance("roc_auc", baseline="holdout_auc", max_drop=0.1),
            m.performance("accuracy", min=0.6)],
    actions=[m.log(), m.retrain("delay_model", params={"season": 2})],
    cooldown="1h",
)
"""


def _score(ws: Workspace, frame: pd.DataFrame, prefix: str) -> list[str]:
    """Score ``frame`` through the real server code in requests of 10 rows."""
    server = Server(ws, ServeOptions(uri="delay_model@champion"))
    server.start()
    ids = []
    try:
        for start in range(0, len(frame), 10):
            part = frame.iloc[start : start + 10]
            body = json.dumps(
                {
                    "dataframe_split": {
                        "columns": ["distance", "temp"],
                        "data": part[["distance", "temp"]].values.tolist(),
                    }
                }
            ).encode()
            request_id = f"{prefix}-{start}"
            server.score(body, "application/json", request_id)
            ids.append(request_id)
    finally:
        server.stop()  # flushes the prediction log
    return ids


def _label(ws: Workspace, frame: pd.DataFrame, ids: list[str]) -> None:
    pairs = []
    for request, start in zip(ids, range(0, len(frame), 10), strict=True):
        for row, value in enumerate(frame.delayed.iloc[start : start + 10]):
            pairs.append((f"{request}:{row}", int(value)))
    ws.store.predictions.label("delay_model", pairs)


@pytest.fixture
def served(tmp_path: Path) -> Workspace:
    ws = open_project(tmp_path, PROJECT)
    assert hr.materialize(workspace=ws).success
    set_alias(ws, "delay_model", "champion", 1)
    return ws


def test_a_monitor_finds_drift_alerts_once_and_retrains(
    served: Workspace, caplog: pytest.LogCaptureFixture
) -> None:
    module = __import__(served.settings.project_module)
    world = module.world
    monitor = MONITORS["delay_watch"]
    calm, moved = world(1000, 1, 11), world(1000, 2, 12)
    _label(served, calm, _score(served, calm, "calm"))
    _label(served, moved, _score(served, moved, "moved"))
    caplog.set_level(logging.WARNING, logger="headrace.monitoring")

    run = run_monitor(served, monitor)

    assert [w.window.rows for w in run.windows] == [500, 500, 500, 500]
    assert [w.window.status for w in run.windows[:2]] == ["ok", "ok"]
    assert all(w.window.status == "breach" for w in run.windows[2:])
    first, last = run.windows[0], run.windows[-1]
    assert first.drift is not None and first.drift.drifted_columns == []
    assert last.drift is not None and last.drift.drifted_columns == ["distance"]
    assert last.drift.column("distance").method == "wasserstein"  # 3,000 reference rows
    # measured from the labels; the estimate is reported beside it, never mixed in
    assert first.performance is not None and not first.performance.estimated
    assert first.estimated is not None and first.estimated.estimated
    assert first.performance.metrics["roc_auc"] > 0.8
    assert abs(first.estimated.metrics["accuracy"] - first.performance.metrics["accuracy"]) < 0.06
    assert last.performance is not None and last.performance.metrics["accuracy"] < 0.6
    kinds = {(r.kind, r.name) for r in last.results if r.breached}
    assert ("dataset_drift", "share") in kinds and ("performance", "accuracy") in kinds
    assert ("prediction_drift", "prediction") in kinds
    # one alert per key; the second drifted window's falls within the cooldown
    sent = [a for a in run.alerts if not a.suppressed]
    assert {a.key for a in sent} == {a.key for a in run.alerts}
    assert len(run.alerts) == 2 * len(sent)
    assert any("dataset drift" in r.getMessage() for r in caplog.records)
    # the retrain ran on a branch of its own, named after the monitor and the alert; its
    # version is the challenger, the policy promoted it, and only then did main move
    assert run.retrain is not None and run.retrain["status"] == "version 2: promoted"
    branch = run.retrain["branch"]
    assert branch == f"retrain/delay_watch/{sent[0].key.replace(':', '-')}-{sent[0].id[:12]}"
    assert resolve(served, "delay_model@challenger").version == 2
    assert resolve(served, "delay_model@champion").version == 2
    version_2 = resolve(served, "delay_model/2").asset_version_id
    assert served.store.versions.head("delay_model").id == version_2
    assert served.store.versions.head("delay_model", branch=branch).id == version_2
    [notice] = [a for a in served.store.monitoring.alerts("delay_watch") if a.key == "retrain"]
    assert f"branch {branch} merged into main" in notice.message
    # stored per window, so drift plots over time
    windows = served.store.monitoring.windows("delay_watch")
    assert [w.status for w in windows] == [w.window.status for w in run.windows]
    shares = [w.drift_share for w in windows]
    assert shares[0] == 0 and shares[-1] == 0.5
    # nothing new: nothing judged twice
    again = run_monitor(served, monitor)
    assert again.windows == [] and again.note == "no new predictions"


def test_the_reference_is_profiled_once_and_restricted_by_the_training_params(
    served: Workspace,
) -> None:
    module = __import__(served.settings.project_module)
    calm = module.world(600, 1, 21)
    _score(served, calm, "a")
    run = run_monitor(served, MONITORS["delay_watch"], act=False)
    [window] = run.windows  # 600 rows: one full window of 500, the rest waits
    assert window.window.rows == 500 and window.drift is not None
    assert window.drift.columns[0].reference_rows == 3000  # season 1 only, not 6,000
    assert window.performance is None and window.estimated is not None  # no labels yet
    assert window.window.reference is not None
    profile = served.store.monitoring.reference("delay_watch", window.window.reference)
    assert profile is not None and profile["rows"] == 3000
    partial = run_monitor(served, MONITORS["delay_watch"], act=False, partial=True)
    assert [w.window.rows for w in partial.windows] == [100]
    assert partial.windows[0].window.status == "too_small"


def test_a_reference_condition_on_a_missing_param_is_a_clear_error(served: Workspace) -> None:
    from dataclasses import replace

    module = __import__(served.settings.project_module)
    _score(served, module.world(500, 1, 3), "x")
    broken = replace(MONITORS["delay_watch"], reference_where="month <= {months}")
    with pytest.raises(MonitorError, match=r"names \{months\}, which is not a param"):
        run_monitor(served, broken)


def test_estimates_track_measured_performance_on_calibrated_scores() -> None:
    from headrace.monitoring.performance import estimated_binary, measured_binary

    rng = np.random.default_rng(5)
    scores = rng.beta(2, 2, 20_000)
    labels = (rng.random(20_000) < scores).astype(int)
    predicted = (scores >= 0.5).astype(int)
    measured = measured_binary(labels, predicted, scores).metrics
    estimated = estimated_binary(predicted, scores).metrics
    for metric in ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"):
        assert estimated[metric] == pytest.approx(measured[metric], abs=0.02), metric


def test_measured_metrics_match_scikit_learn() -> None:
    from sklearn import metrics

    from headrace.monitoring.performance import (
        measured_binary,
        measured_classes,
        measured_regression,
    )

    rng = np.random.default_rng(9)
    scores = rng.random(5000)
    labels = (rng.random(5000) < scores * 0.8 + 0.1).astype(int)
    predicted = (scores > 0.4).astype(int)
    got = measured_binary(labels, predicted, scores).metrics
    assert got["roc_auc"] == pytest.approx(metrics.roc_auc_score(labels, scores))
    assert got["log_loss"] == pytest.approx(metrics.log_loss(labels, scores))
    assert got["precision"] == pytest.approx(metrics.precision_score(labels, predicted))
    assert got["recall"] == pytest.approx(metrics.recall_score(labels, predicted))
    assert got["f1"] == pytest.approx(metrics.f1_score(labels, predicted))
    assert got["accuracy"] == pytest.approx(metrics.accuracy_score(labels, predicted))
    one_class = measured_binary(np.ones(10), np.ones(10), np.full(10, 0.9)).metrics
    assert "roc_auc" not in one_class  # undefined, not made up
    three = rng.choice(["a", "b", "c"], 3000)
    guess = np.where(rng.random(3000) < 0.7, three, rng.choice(["a", "b", "d"], 3000))
    many = measured_classes(three, guess).metrics
    assert many["accuracy"] == pytest.approx(metrics.accuracy_score(three, guess))
    for name, score in (
        ("precision", metrics.precision_score),
        ("recall", metrics.recall_score),
        ("f1", metrics.f1_score),
    ):
        expected = score(three, guess, average="macro", zero_division=0)
        assert many[name] == pytest.approx(expected), name
    y, yhat = rng.normal(size=100), rng.normal(size=100)
    reg = measured_regression(y, yhat).metrics
    assert reg["mae"] == pytest.approx(metrics.mean_absolute_error(y, yhat))
    assert reg["rmse"] == pytest.approx(metrics.mean_squared_error(y, yhat) ** 0.5)


ASSETS = """
import numpy as np
import pandas as pd
from headrace import monitors as m


@hr.asset
def baseline() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"x": rng.normal(0, 1, 2000), "k": rng.choice(["a", "b"], 2000)})


@hr.asset
def readings(*, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(int(shift * 10) + 1)
    return pd.DataFrame({"x": rng.normal(shift, 1, 2000), "k": rng.choice(["a", "b"], 2000)})


m.monitor("readings_vs_last", asset="readings", reference="previous", min_rows=100,
          actions=[m.log()])
m.monitor("readings_vs_baseline", asset="readings", reference="baseline", columns=["x"],
          min_rows=100, drift_share=1.0)
"""


def test_an_asset_monitor_judges_each_new_version(tmp_path: Path) -> None:
    ws = open_project(tmp_path, ASSETS)
    assert hr.materialize(workspace=ws).success
    assert hr.materialize("readings", workspace=ws, params={"shift": 0.05}).success
    assert hr.materialize("readings", workspace=ws, params={"shift": 1.0}).success
    previous = run_monitor(ws, MONITORS["readings_vs_last"])
    # the first version has nothing before it; the small shift passes, the large drifts
    assert [w.window.status for w in previous.windows] == ["ok", "drift"]
    assert previous.windows[1].drift is not None
    assert previous.windows[1].drift.drifted_columns == ["x"]
    assert [a.key for a in previous.alerts] == ["dataset_drift"]
    assert "2,000 rows" in previous.alerts[0].message
    again = run_monitor(ws, MONITORS["readings_vs_last"])
    assert again.windows == [] and again.note == "no new version of readings"
    fixed = run_monitor(ws, MONITORS["readings_vs_baseline"])
    assert [w.window.status for w in fixed.windows] == ["ok", "ok", "drift"]
    assert [r.name for r in fixed.windows[0].results if r.kind == "column_drift"] == ["x"]


def test_an_asset_monitor_without_its_reference_is_a_clear_error(tmp_path: Path) -> None:
    ws = open_project(tmp_path, ASSETS)
    assert hr.materialize("readings", workspace=ws).success
    with pytest.raises(MonitorError, match="the reference asset 'baseline' has no version"):
        run_monitor(ws, MONITORS["readings_vs_baseline"])


def test_a_refused_retrain_leaves_main_and_the_champion_and_keeps_its_branch(
    served: Workspace, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from headrace.core.policies import POLICIES, PromotionPolicy, metric_at_least
    from headrace.monitoring.retraining import retrain

    strict = PromotionPolicy("delay_model", "champion", (metric_at_least("holdout_auc", 0.999),))
    monkeypatch.setitem(POLICIES, ("delay_model", "champion"), strict)
    main_before = served.store.versions.head("delay_model").id
    moves_before = len(served.store.branches.log(branch="main", limit=1000))
    caplog.set_level(logging.WARNING, logger="headrace.monitoring")

    outcome = retrain(served, MONITORS["delay_watch"], 1000.0, [])

    assert outcome is not None and outcome["status"] == "version 2: refused"
    branch = outcome["branch"]
    assert branch.startswith("retrain/delay_watch/")
    assert outcome["refused"].startswith(
        "the champion policy refused version 2: rule 'holdout_auc ≥ 0.999' failed: holdout_auc = "
    )
    # main did not move, the champion stayed, the branch is kept with the new version
    assert served.store.versions.head("delay_model").id == main_before
    assert len(served.store.branches.log(branch="main", limit=1000)) == moves_before
    assert resolve(served, "delay_model@champion").version == 1
    assert resolve(served, "delay_model@challenger").version == 2  # not guarded
    version_2 = resolve(served, "delay_model/2").asset_version_id
    assert served.store.versions.head("delay_model", branch=branch).id == version_2
    assert served.store.registry.events("delay_model")[0].kind == "refused"
    # the alert says what was refused and why, and the notification carries it
    [notice] = served.store.monitoring.alerts("delay_watch")
    assert notice.key == "retrain"
    assert f"retrain delay_model on {branch}: version 2: refused" in notice.message
    assert f"main is untouched; branch {branch} is kept for inspection" in notice.message
    assert "- FAIL: holdout_auc ≥ 0.999 (holdout_auc = " in notice.message
    assert [o.get("action") for o in notice.outcomes[1:]] == ["log"]
    sent = [r.getMessage() for r in caplog.records if "retrain" in r.getMessage()]
    assert sent and "refused" in sent[0] and "kept for inspection" in sent[0]


def test_a_retrain_is_never_declared_on_main() -> None:
    from headrace import monitors as m
    from headrace.core.monitors import MonitorDefinitionError

    with pytest.raises(MonitorDefinitionError, match="branch 'main' is not allowed"):
        m.retrain("delay_model", branch="main")
    with pytest.raises(MonitorDefinitionError, match="is not a branch name"):
        m.retrain("delay_model", branch="-x")
    assert m.retrain("delay_model").options["branch"] is None


def test_a_retrain_waiting_for_approval_reaches_main_only_when_approved(
    served: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    from headrace.core.policies import POLICIES, PromotionPolicy, metric_at_least
    from headrace.monitoring.retraining import decide, retrain

    reviewed = PromotionPolicy(
        "delay_model", "champion", (metric_at_least("holdout_auc", 0.5),), require_approval=True
    )
    monkeypatch.setitem(POLICIES, ("delay_model", "champion"), reviewed)
    main_before = served.store.versions.head("delay_model").id

    outcome = retrain(served, MONITORS["delay_watch"], 1000.0, [])

    assert outcome is not None and outcome["status"] == "version 2: pending"
    assert served.store.versions.head("delay_model").id == main_before
    [notice] = served.store.monitoring.alerts("delay_watch")
    assert "waits for a maintainer's approval" in notice.message
    approved = decide(served, "delay_model", "champion", approve=True, reason="reviewed")
    assert approved.status == "promoted"
    version_2 = resolve(served, "delay_model/2").asset_version_id
    assert served.store.versions.head("delay_model").id == version_2  # merged on approval
    assert resolve(served, "delay_model@champion").version == 2
    assert served.store.branches.log(branch="main", limit=1)[0].kind == "merge"


RETRAINED_ASSET = """
import numpy as np
import pandas as pd
from headrace import checks as c
from headrace import monitors as m


@hr.asset(checks=[c.between("x", -50, 50)])
def gauge(*, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(int(shift) + 1)
    return pd.DataFrame({"x": rng.normal(shift, 1, 500)})


m.monitor("gauge_reset", asset="gauge", reference="previous", min_rows=100,
          actions=[m.retrain("gauge", params={"shift": 0.0})])
m.monitor("gauge_broken", asset="gauge", reference="previous", min_rows=100,
          actions=[m.retrain("gauge", params={"shift": 100.0})])
"""


def test_an_asset_monitors_retrain_reaches_main_only_through_the_merge_gates(
    tmp_path: Path,
) -> None:
    from headrace.monitoring.retraining import retrain

    ws = open_project(tmp_path, RETRAINED_ASSET)
    assert hr.materialize(workspace=ws, params={"shift": 1.0}).success
    drifted = ws.store.versions.head("gauge").id

    broken = retrain(ws, MONITORS["gauge_broken"], 1000.0, [])
    assert broken is not None and broken["status"] == "run failed"
    assert broken["branch"].startswith("retrain/gauge_broken/")
    assert ws.store.versions.head("gauge").id == drifted  # the failed check kept main
    assert ws.store.branches.exists(broken["branch"])
    [held] = ws.store.quality.quarantined(branch=broken["branch"])
    assert held.asset == "gauge"

    reset = retrain(ws, MONITORS["gauge_reset"], 1000.0, [])
    assert reset is not None and reset["status"] == "ran; merged into main"
    assert ws.store.versions.head("gauge").id != drifted
    assert ws.store.branches.log(branch="main", limit=1)[0].kind == "merge"


def test_a_promotion_whose_branch_the_merge_gates_refuse_moves_nothing(
    served: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    from headrace.core.policies import POLICIES, PromotionPolicy, metric_at_least
    from headrace.monitoring.retraining import promote, retrain

    strict = PromotionPolicy("delay_model", "champion", (metric_at_least("holdout_auc", 0.999),))
    monkeypatch.setitem(POLICIES, ("delay_model", "champion"), strict)
    outcome = retrain(served, MONITORS["delay_watch"], 1000.0, [])
    assert outcome is not None and outcome["status"] == "version 2: refused"
    main_before = served.store.versions.head("delay_model").id
    # a check re-run on the retrained version fails: the merge gate must keep it off main
    trained = served.store.versions.get(resolve(served, "delay_model/2").asset_version_id or "")
    served.store.quality.record(
        trained,
        [
            {
                "name": "auc_sane",
                "kind": "expression",
                "columns": [],
                "severity": "error",
                "passed": False,
                "observed": 0,
                "threshold": "auc > 0.5",
                "failing_rows": None,
                "failing_fraction": None,
                "sample": [],
                "message": "failed",
            }
        ],
        at=2.0,
    )
    lenient = PromotionPolicy("delay_model", "champion", (metric_at_least("holdout_auc", 0.5),))
    monkeypatch.setitem(POLICIES, ("delay_model", "champion"), lenient)

    refused = promote(served, "delay_model", "champion", version=2)

    assert refused.status == "refused"
    [blocked] = [v for v in refused.evaluation.verdicts if not v.passed]
    assert blocked.rule == "its branch merges into main"
    assert f"cannot merge '{outcome['branch']}' into 'main'" in blocked.explanation
    assert "failed error checks: auc_sane" in blocked.explanation
    assert served.store.versions.head("delay_model").id == main_before
    assert resolve(served, "delay_model@champion").version == 1
    assert served.store.registry.events("delay_model")[0].kind == "refused"

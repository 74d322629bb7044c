"""@hr.model assets: a training run is a pipeline run, and its model is registered."""

from __future__ import annotations

from pathlib import Path

import pytest

import headrace as hr
from headrace.core.errors import AssetSignatureError
from headrace.registry.service import lineage
from tests.integration.conftest import run_cli
from tests.projects import open_project

PROJECT = """
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from headrace import checks as c
from headrace import policies as p

FEATURES = ["distance", "temp"]

@hr.asset(checks=[c.not_null("distance")])
def features(*, rows: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"distance": rng.integers(100, 3000, rows),
                          "temp": rng.normal(50, 20, rows)})
    frame["delayed"] = ((frame.distance > 1500) ^ (frame.temp < 40)).astype(int)
    return frame

@hr.model(signature_from="features")
def delay_model(features: pd.DataFrame, *, c: float = 1.0) -> LogisticRegression:
    model = LogisticRegression(C=c).fit(features[FEATURES], features.delayed)
    hr.log_param("c", c)
    hr.log_metric("train_accuracy", float(model.score(features[FEATURES], features.delayed)))
    return model

@hr.asset
def scored(features: pd.DataFrame, delay_model: LogisticRegression) -> pd.DataFrame:
    return features.assign(predicted=delay_model.predict(features[FEATURES]))

p.promotion_policy("delay_model", to="champion",
                   rules=[p.metric_at_least("train_accuracy", 0.5), p.data_checks_passed()])
"""


def test_a_model_asset_registers_a_version_linked_to_its_run_and_data(tmp_path: Path) -> None:
    ws = open_project(tmp_path, PROJECT)
    result = hr.materialize(workspace=ws)
    assert result.success, {k: s.error for k, s in result.steps.items()}
    [version] = ws.store.registry.versions("delay_model")
    assert version.run_id == result.run_id and version.flavor == "sklearn"
    features = ws.store.versions.head("features")
    assert version.data_versions == [features.id]
    assert version.asset_version_id == ws.store.versions.head("delay_model").id
    assert [c["name"] for c in version.signature["inputs"]] == ["distance", "temp"]  # type: ignore[index]
    # Downstream assets read the model itself; load_model gives the checked wrapper.
    assert "predicted" in hr.read("scored", workspace=ws).columns
    loaded = hr.load_model("delay_model", workspace=ws)
    assert len(loaded.predict(hr.read("features", workspace=ws))) == 400
    info = lineage(ws, "delay_model/1")
    assert info.params == {"c": "1.0"} and info.metrics["train_accuracy"] > 0.5
    assert [(v.asset, failed, checks) for v, failed, checks in info.data] == [("features", 0, 1)]
    # Cached: no new model version without a change; a new param makes version 2.
    hr.materialize(workspace=ws)
    assert len(ws.store.registry.versions("delay_model")) == 1
    hr.materialize("delay_model", workspace=ws, params={"c": "0.5"})
    assert [v.version for v in ws.store.registry.versions("delay_model")] == [1, 2]


def test_models_cli_promotes_by_policy_and_shows_lineage(tmp_path: Path) -> None:
    ws = open_project(tmp_path, PROJECT)
    assert hr.materialize(workspace=ws).success
    ws.close()
    promoted = run_cli(tmp_path, "models", "promote", "delay_model", "--to", "champion")
    assert promoted.returncode == 0, promoted.stdout + promoted.stderr
    assert "✓ train_accuracy ≥ 0.5" in promoted.stdout
    assert "✓ its training data's lineage passed every error-severity check" in promoted.stdout
    assert "promoted: champion → version 1" in promoted.stdout
    shown = run_cli(tmp_path, "models", "lineage", "delay_model@champion")
    assert "data features" in shown.stdout and "1 checks passed" in shown.stdout
    listed = run_cli(tmp_path, "models", "list")
    assert "champion→1" in listed.stdout
    versions = run_cli(tmp_path, "models", "versions", "delay_model")
    assert "production" in versions.stdout
    history = run_cli(tmp_path, "models", "show", "delay_model@champion")
    assert "inputs: distance: Int64 not null, temp: Float64 not null" in history.stdout
    assert "champion: ∅ → 1" in history.stdout
    missing = run_cli(tmp_path, "models", "rollback", "delay_model")
    assert missing.returncode == 1 and "no earlier version" in missing.stderr
    typo = run_cli(tmp_path, "models", "versions", "delay_modl")
    assert typo.returncode == 1 and "did you mean 'delay_model'" in typo.stderr


def test_signature_from_must_name_an_input() -> None:
    with pytest.raises(AssetSignatureError, match="signature_from='frame' is not one of"):

        @hr.model(signature_from="frame")
        def bad(features: object) -> object:
            return features


def test_models_alias_cli_refuses_a_guarded_move_and_overrides_with_a_reason(
    tmp_path: Path,
) -> None:
    ws = open_project(tmp_path, PROJECT.replace('"train_accuracy", 0.5', '"train_accuracy", 0.99'))
    assert hr.materialize(workspace=ws).success
    ws.close()
    refused = run_cli(tmp_path, "models", "alias", "delay_model", "champion", "1")
    assert refused.returncode == 1
    [line] = refused.stderr.strip().splitlines()
    assert "delay_model@champion is guarded by its promotion policy, which refuses version 1: " in (
        line
    )
    assert "rule 'train_accuracy ≥ 0.99' failed: train_accuracy = " in line
    assert "--override --reason WHY (maintainer role)" in line
    no_reason = run_cli(tmp_path, "models", "alias", "delay_model", "champion", "1", "--override")
    assert no_reason.returncode == 1 and "needs a reason: pass --reason WHY" in no_reason.stderr
    listed = run_cli(tmp_path, "models", "list")
    assert "champion" not in listed.stdout  # nothing moved
    # nobody set principals up: the workspace's owner may override, and it is audited
    forced = run_cli(
        tmp_path,
        "models",
        "alias",
        "delay_model",
        "champion",
        "1",
        "--override",
        "--reason",
        "the bar is wrong",
    )
    assert forced.returncode == 0, forced.stderr
    assert "delay_model@champion: ∅ → 1 (override: audited)" in forced.stdout
    history = run_cli(tmp_path, "models", "show", "delay_model@champion")
    assert "champion: ∅ → 1 OVERRIDING its policy" in history.stdout
    assert "the bar is wrong; overrode: train_accuracy ≥ 0.99" in history.stdout
    assert "champion refused version 1" in history.stdout
    audit = run_cli(tmp_path, "audit", "list")
    assert "model.override" in audit.stdout
    # an alias no policy guards moves as before
    free = run_cli(tmp_path, "models", "alias", "delay_model", "challenger", "1", check=True)
    assert "delay_model@challenger: ∅ → 1" in free.stdout

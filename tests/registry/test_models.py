"""Registering, loading and predicting: flavors, signatures and safe loading."""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import headrace as hr
from headrace.io.models import ModelFormatError, UnsafeModelError
from headrace.io.signature import SignatureError
from headrace.runtime.workspace import Workspace
from headrace.store.registry import ModelNotFoundError, RegistryError


def training_frame(rows: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    return pd.DataFrame(
        {
            "distance": rng.integers(100, 3000, rows),
            "temp": rng.normal(50, 20, rows),
            "carrier": rng.choice(["AA", "UA", "B6"], rows),
        }
    )


def labels(frame: pd.DataFrame) -> np.ndarray:
    return ((frame.distance > 1500) ^ (frame.temp < 40)).astype(int).to_numpy()


def fitted_pipeline() -> tuple[object, pd.DataFrame]:
    frame = training_frame()
    model = make_pipeline(StandardScaler(), LogisticRegression())
    model.fit(frame[["distance", "temp"]], labels(frame))
    return model, frame


class MajorityClass(BaseEstimator, ClassifierMixin):  # type: ignore[misc]
    """A model of a type skops does not trust by default."""

    def fit(self, x: object, y: np.ndarray) -> MajorityClass:
        self.value_ = int(np.bincount(y).argmax())
        return self

    def predict(self, x: pd.DataFrame) -> np.ndarray:
        return np.full(len(x), self.value_)


class Rule:
    """A plain Python object with predict(): the generic flavor."""

    def predict(self, x: pd.DataFrame) -> np.ndarray:
        return (np.asarray(x)[:, 0] > 1500).astype(int)


def test_a_scikit_learn_model_round_trips_with_its_signature(ws: Workspace) -> None:
    model, frame = fitted_pipeline()
    record = hr.log_model(model, "delay", frame=frame, workspace=ws)
    assert (record.name, record.version, record.flavor, record.status) == (
        "delay",
        1,
        "sklearn",
        "candidate",
    )
    # The signature holds the columns the model was fitted on, not the whole frame.
    assert record.signature is not None
    assert [c["name"] for c in record.signature["inputs"]] == ["distance", "temp"]
    assert record.signature["inputs"][0]["type"] == "Int64"
    assert record.signature["output"] == "Int64"
    loaded = hr.load_model("delay", workspace=ws)
    expected = model.predict(frame[["distance", "temp"]])  # type: ignore[attr-defined]
    assert (loaded.predict(frame) == expected).all()  # extra columns are ignored
    # Polars and Arrow in, columns in any order, narrower types cast safely.
    narrow = pl.from_pandas(frame[["temp", "distance"]]).with_columns(
        pl.col("distance").cast(pl.Int32), pl.col("temp").cast(pl.Float32)
    )
    assert (loaded.predict(narrow) == expected).mean() > 0.99
    assert loaded.predict_proba(narrow.to_arrow()).shape == (len(frame), 2)
    assert hr.log_model(model, "delay", frame=frame, workspace=ws).version == 2


def test_predict_refuses_input_that_does_not_fit(ws: Workspace) -> None:
    model, frame = fitted_pipeline()
    hr.log_model(model, "delay", frame=frame, workspace=ws)
    loaded = hr.load_model("delay/1", workspace=ws)
    with pytest.raises(SignatureError, match=r"column 'temp' is missing.*reads distance, temp"):
        loaded.predict(frame.drop(columns=["temp"]))
    with pytest.raises(SignatureError, match=r"column 'distance' is String, but .* Int64"):
        loaded.predict(frame.assign(distance=frame.distance.astype(str)))
    # Whole-number floats (1500.0 from a JSON client) cast back: no value changes.
    floats = pl.from_pandas(frame).with_columns(pl.col("distance").cast(pl.Float64))
    assert len(loaded.predict(floats)) == len(frame)
    with pytest.raises(SignatureError, match=r"column 'distance' is Float64, but .* Int64"):
        loaded.predict(floats.with_columns(pl.col("distance") + 0.5))
    # Whole numbers where floats were trained is a safe cast: accepted.
    whole = pl.from_pandas(frame).with_columns(pl.col("temp").round().cast(pl.Int64))
    assert len(loaded.predict(whole)) == len(frame)
    with_nulls = frame.astype({"temp": "float64"}).copy()
    with_nulls.loc[3, "temp"] = None
    with pytest.raises(
        SignatureError, match=r"column 'temp' has 1 null value\(s\) \(the first at row 3\)"
    ):
        loaded.predict(with_nulls)


@pytest.mark.parametrize("library", ["lightgbm", "xgboost"])
def test_boosted_trees_are_stored_in_their_native_format(ws: Workspace, library: str) -> None:
    frame = training_frame()
    features = frame[["distance", "temp"]]
    if library == "lightgbm":
        import lightgbm

        model: object = lightgbm.LGBMClassifier(n_estimators=20, verbose=-1)
    else:
        import xgboost

        model = xgboost.XGBClassifier(n_estimators=20)
    model.fit(features, labels(frame))  # type: ignore[attr-defined]
    record = hr.log_model(model, f"trees-{library}", frame=frame, workspace=ws)
    assert record.flavor == library
    loaded = hr.load_model(f"trees-{library}@latest", workspace=ws)
    assert (loaded.predict(frame) == model.predict(features)).all()  # type: ignore[attr-defined]
    probabilities = model.predict_proba(features)  # type: ignore[attr-defined]
    assert np.allclose(loaded.predict_proba(frame), probabilities, atol=1e-6)


def test_loading_never_runs_untrusted_code_without_consent(ws: Workspace) -> None:
    frame = training_frame()
    hr.log_model(Rule(), "rule", frame=frame[["distance"]], workspace=ws)
    with pytest.raises(UnsafeModelError, match="allow_pickle=True"):
        hr.load_model("rule", workspace=ws)
    rule = hr.load_model("rule", allow_pickle=True, workspace=ws)
    assert rule.predict(frame).sum() == (frame.distance > 1500).sum()
    custom = MajorityClass().fit(frame[["distance"]], labels(frame))
    record = hr.log_model(custom, "majority", frame=frame[["distance"]], workspace=ws)
    assert record.flavor == "sklearn"
    with pytest.raises(UnsafeModelError, match=r"MajorityClass"):
        hr.load_model("majority", workspace=ws)
    name = f"{MajorityClass.__module__}.MajorityClass"
    assert hr.load_model("majority", trusted=[name], workspace=ws).predict(frame).shape == (300,)


def test_bad_models_and_references(ws: Workspace) -> None:
    with pytest.raises(ModelFormatError, match="has no predict"):
        hr.log_model(object(), "nothing", workspace=ws)
    with pytest.raises(ModelFormatError, match="unknown model flavor 'onnx'"):
        hr.log_model(Rule(), "rule", flavor="onnx", workspace=ws)
    with pytest.raises(ModelFormatError, match="is not a sklearn model"):
        hr.log_model(Rule(), "rule", flavor="sklearn", workspace=ws)
    with pytest.raises(RegistryError, match="model name '1bad'"):
        hr.log_model(Rule(), "1bad", workspace=ws)
    hr.log_model(Rule(), "rule", workspace=ws)
    with pytest.raises(ModelNotFoundError, match="did you mean 'rule'"):
        hr.load_model("rul", workspace=ws)
    with pytest.raises(ModelNotFoundError, match="has no alias 'champion'; it has no aliases"):
        hr.load_model("rule@champion", workspace=ws)
    with pytest.raises(ModelNotFoundError, match="has no version 9"):
        hr.load_model("rule/9", workspace=ws)
    with pytest.raises(RegistryError, match="the version must be a number"):
        hr.load_model("rule/x", workspace=ws)


def test_a_model_logged_in_a_run_is_linked_to_it_and_its_data(ws: Workspace) -> None:
    model, frame = fitted_pipeline()
    with hr.start_run("delay", workspace=ws) as run:
        hr.log_metric("auc", 0.81)
        record = hr.log_model(model, "delay", frame=frame)
    assert record.run_id == run.id
    assert ws.store.registry.for_run(run.id)[0].version == 1
    with pytest.raises(Exception, match="no asset version"):
        hr.log_model(model, "delay", data_versions=["f" * 32], workspace=ws)

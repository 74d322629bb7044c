"""Signatures read off fitted estimators, for models logged without a frame."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import make_column_transformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from headrace.io.estimators import estimator_signature, signature_of
from headrace.io.signature import Signature


def data(rows: int = 80) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(7)
    x = pd.DataFrame({"speed": rng.normal(0, 1, rows), "load": rng.integers(0, 9, rows)})
    return x, (x.speed > 0).astype(int)


def columns(signature: Signature | None) -> list[tuple[str, str, bool]]:
    assert signature is not None
    return [(c.name, c.type, c.nullable) for c in signature.inputs]


def test_scikit_learn_on_named_columns_gives_float_columns() -> None:
    x, y = data()
    pipeline = make_pipeline(StandardScaler(), LogisticRegression()).fit(x, y)
    signature = estimator_signature(pipeline)
    assert columns(signature) == [("speed", "Float64", False), ("load", "Float64", False)]
    assert signature is not None and signature.output == "Int64"
    regressor = estimator_signature(LinearRegression().fit(x, x.speed))
    assert regressor is not None and regressor.output == "Float64"
    # an estimator that takes missing values: nullable columns
    boosted = estimator_signature(HistGradientBoostingClassifier(max_iter=5).fit(x, y))
    assert columns(boosted) == [("speed", "Float64", True), ("load", "Float64", True)]


def test_what_the_estimator_cannot_say_gives_no_signature() -> None:
    x, y = data()
    text = x.assign(kind=np.where(y == 1, "a", "b"))
    encoded = make_pipeline(
        make_column_transformer((OneHotEncoder(), ["kind"]), remainder="passthrough"),
        LogisticRegression(),
    ).fit(text, y)

    class Plain:
        feature_names_in_ = np.array(["speed"])

        def predict(self, x: Any) -> Any:
            return np.zeros(len(x))

    for model in (
        LogisticRegression().fit(x.to_numpy(), y),  # no names
        encoded,  # a text column inside
        LogisticRegression(),  # not fitted
        Plain(),  # not a library whose attributes are known
    ):
        assert estimator_signature(model) is None, model


def test_lightgbm_and_xgboost_name_their_features() -> None:
    lightgbm = pytest.importorskip("lightgbm")
    xgboost = pytest.importorskip("xgboost")
    x, y = data()
    named = [("speed", "Float64", True), ("load", "Float64", True)]
    light = lightgbm.LGBMClassifier(n_estimators=3, verbose=-1).fit(x, y)
    assert columns(estimator_signature(light)) == named
    assert columns(estimator_signature(light.booster_)) == named  # the bare booster too
    extreme = xgboost.XGBClassifier(n_estimators=3).fit(x, y)
    assert columns(estimator_signature(extreme)) == named
    assert columns(estimator_signature(extreme.get_booster())) == named
    category = x.assign(kind=pd.Categorical(np.where(y == 1, "a", "b")))
    for model in (
        lightgbm.LGBMClassifier(n_estimators=3, verbose=-1).fit(x.to_numpy(), y),
        xgboost.XGBClassifier(n_estimators=3).fit(x.to_numpy(), y),
        lightgbm.LGBMClassifier(n_estimators=3, verbose=-1).fit(category, y),
        xgboost.XGBClassifier(n_estimators=3, enable_categorical=True).fit(category, y),
    ):
        assert estimator_signature(model) is None, model


def test_a_frame_wins_over_the_estimator() -> None:
    x, y = data()
    model = LogisticRegression().fit(x, y)
    from_frame = signature_of(model, x)
    assert columns(from_frame) == [("speed", "Float64", False), ("load", "Int64", False)]
    assert columns(signature_of(model)) == [("speed", "Float64", False), ("load", "Float64", False)]

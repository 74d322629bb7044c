"""The serving workload, shared by the runners in this folder (stdlib only at import).

The model of ``../shared/peers/tracking-serving/train_log.py``: scikit-learn's
breast-cancer data (569 rows, 30 named features, ``as_frame=True``) and
``make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))`` fitted on all of
it. Each tool trains it in its own venv (the same scikit-learn version, a deterministic
solver) and registers it its own way; the bench checks that both servers answer the
request with the same prediction.

The request is the first row in the ``dataframe_split`` format, byte for byte the
shared ``req_split.json``: ``{"dataframe_split": {"columns": [...30 names...], "data":
[[...30 values...]]}}``, posted to ``/invocations`` as ``application/json``.

Runners print one ``RESULT {json}`` line.
"""

from __future__ import annotations

import json
from importlib.metadata import PackageNotFoundError, version
from typing import Any

MODEL = "cancer"
ALIAS = "champion"
FEATURES = 30


def training_data() -> tuple[Any, Any]:
    """(X, y): the breast-cancer frame with its feature names, and the target."""
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    return X, y


def fit(X: Any, y: Any) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y)


def request_body(X: Any) -> str:
    """The single-row ``dataframe_split`` request (the shared ``req_split.json``)."""
    row = [float(v) for v in X.iloc[0].tolist()]
    return json.dumps({"dataframe_split": {"columns": list(map(str, X.columns)), "data": [row]}})


def emit(record: dict[str, Any]) -> None:
    print("RESULT " + json.dumps(record, default=str), flush=True)


def library_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "?"

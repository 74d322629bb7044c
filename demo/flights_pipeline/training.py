"""Training: a classifier of "arrives more than 15 minutes late", tracked and governed.

``flight_delay`` is a model asset: each run that trains it logs its params and its
metrics on a fixed holdout (December), and the fitted model becomes a new version of
the registered model ``flight_delay``, linked to the run and to the exact version of
``flight_features`` it learned from. The promotion policy below decides which version
may be the ``champion``.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from sklearn.compose import make_column_transformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import headrace as hr
from flights_pipeline.features import WEATHER_FEATURES
from headrace import policies as p

#: What is known when a flight is scheduled.
NUMERIC = ("hour", "weekday", "distance", *WEATHER_FEATURES, "plane_age", "plane_seats")
CATEGORICAL = ("carrier", "origin")
FEATURES = (*NUMERIC, *CATEGORICAL)
#: Every version is judged on the same held-out month.
HOLDOUT_MONTH = 12


def _classifier(c: float) -> Pipeline:
    numeric = make_pipeline(SimpleImputer(strategy="median"), StandardScaler())
    categorical = OneHotEncoder(handle_unknown="ignore")
    columns = make_column_transformer((numeric, list(NUMERIC)), (categorical, list(CATEGORICAL)))
    return make_pipeline(columns, LogisticRegression(C=c, max_iter=500))


def calibration_error(labels: np.ndarray, scores: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error: how far predicted probabilities are from the observed
    rates, averaged over ten equal-width bins weighted by their flights."""
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(scores, edges) - 1, 0, bins - 1)
    error = 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            error += inside.mean() * abs(scores[inside].mean() - labels[inside].mean())
    return float(error)


@hr.model(group="ml", owner="ml-team", tags=("ml",), signature_from="flight_features")
def flight_delay(
    flight_features: pl.DataFrame, *, train_months: int = 2, c: float = 1.0
) -> Pipeline:
    """A logistic regression of ``delayed`` on what is known at scheduling time, trained
    on the first ``train_months`` months and measured on December."""
    if not 1 <= train_months < HOLDOUT_MONTH:
        raise ValueError(f"train_months must be 1 to {HOLDOUT_MONTH - 1}, got {train_months}")
    flown = flight_features.filter(pl.col("delayed").is_not_null())
    train = flown.filter(pl.col("month") <= train_months)
    holdout = flown.filter(pl.col("month") == HOLDOUT_MONTH)
    for label, part in (("training months", train), ("holdout month", holdout)):
        if part.is_empty():
            raise ValueError(
                f"flight_features has no arrived flights in the {label} (2013-01.."
                f"2013-{train_months:02d}, holdout 2013-{HOLDOUT_MONTH:02d}); materialize "
                "those months of flights_clean, then flight_features, first"
            )
    x_train = train.select(FEATURES).to_pandas()
    y_train = train["delayed"].cast(pl.Int8).to_numpy()
    model = _classifier(c).fit(x_train, y_train)
    scores = model.predict_proba(holdout.select(FEATURES).to_pandas())[:, 1]
    labels = holdout["delayed"].cast(pl.Int8).to_numpy()
    hr.log_params(
        {
            "train_months": train_months,
            "c": c,
            "features": len(FEATURES),
            "holdout": f"2013-{HOLDOUT_MONTH:02d}",
        }
    )
    hr.log_metrics(
        {
            "train_rows": float(len(y_train)),
            "holdout_rows": float(len(labels)),
            "holdout_auc": float(roc_auc_score(labels, scores)),
            "holdout_log_loss": float(log_loss(labels, scores)),
            "holdout_brier": float(brier_score_loss(labels, scores)),
            "holdout_calibration_error": calibration_error(labels, scores),
        }
    )
    return model


p.promotion_policy(
    "flight_delay",
    to="champion",
    rules=[
        p.beats("holdout_auc", by=0.005),
        p.metric_at_most("holdout_calibration_error", 0.15),
        p.data_checks_passed(),
        p.data_newer_than(days=30),
    ],
)

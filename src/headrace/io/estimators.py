"""Input signatures read off a fitted estimator, for models logged without a frame.

A model logged with its training frame gets its signature from the frame
(:func:`headrace.io.signature.signature_for`). Without one, the estimator often still
knows what it reads: scikit-learn keeps ``feature_names_in_`` (and ``n_features_in_``)
when fitted on a named frame, LightGBM and XGBoost keep their features' names and
whether any is categorical. When the names are known and every feature is numeric,
the signature is those names as ``Float64`` columns (integers are cast to them safely),
nullable where the estimator takes missing values (LightGBM, XGBoost, and scikit-learn
estimators whose tags allow NaN). Otherwise (no names, text or categorical features,
an encoder or a column transformer inside, or a model of another library) there is no
signature, and the scoring server answers a model that fails on its input with a 400.
"""

from __future__ import annotations

import re
from typing import Any

from headrace.io.signature import (
    ColumnSpec,
    Signature,
    call_predict,
    model_input,
    output_type,
    signature_for,
)

_LIBRARIES = ("sklearn", "lightgbm", "xgboost")
#: scikit-learn steps that take text or categories: their input types are not numbers.
_NOT_NUMERIC = ("ColumnTransformer", "OneHotEncoder", "OrdinalEncoder", "TargetEncoder")
#: LightGBM's names for the features of an unnamed matrix.
_UNNAMED = re.compile(r"Column_[0-9]+")


def signature_of(model: Any, frame: Any = None) -> Signature | None:
    """The model's input signature: from ``frame`` when given, else from the estimator
    when it can be known (see the module's docstring), else None."""
    if frame is not None:
        return signature_for(model, frame)
    return estimator_signature(model)


def _library(model: Any) -> str:
    return type(model).__module__.split(".")[0]


def _names(model: Any) -> list[str] | None:
    names = getattr(model, "feature_names_in_", None)
    if names is not None:
        return [str(n) for n in list(names)]
    library = _library(model)
    if library == "lightgbm":
        booster = getattr(model, "booster_", model)
        found = [str(n) for n in booster.feature_name()]
        return None if all(_UNNAMED.fullmatch(n) for n in found) else found
    if library == "xgboost":
        booster = model.get_booster() if hasattr(model, "get_booster") else model
        named = getattr(booster, "feature_names", None)
        return None if named is None else [str(n) for n in named]
    return None


def _steps(model: Any) -> list[Any]:
    """The model and every estimator inside it (pipelines and column transformers)."""
    found, waiting = [], [model]
    while waiting:
        step = waiting.pop()
        found.append(step)
        waiting.extend(s for _, s in getattr(step, "steps", None) or [])
        waiting.extend(t[1] for t in getattr(step, "transformers", None) or [])
    return found


def _numeric(model: Any) -> bool:
    library = _library(model)
    if library == "lightgbm":
        booster = getattr(model, "booster_", model)
        return not getattr(booster, "pandas_categorical", None)
    if library == "xgboost":
        booster = model.get_booster() if hasattr(model, "get_booster") else model
        types = getattr(booster, "feature_types", None) or []
        return "c" not in types
    return not any(
        type(step).__name__ in _NOT_NUMERIC
        or type(step).__module__.startswith("sklearn.feature_extraction")
        for step in _steps(model)
    )


def _takes_missing(model: Any) -> bool:
    if _library(model) in ("lightgbm", "xgboost"):
        return True
    try:
        return bool(model.__sklearn_tags__().input_tags.allow_nan)
    except Exception:  # an estimator without tags: assume it does not
        return False


def estimator_signature(model: Any) -> Signature | None:
    """The signature a fitted scikit-learn, LightGBM or XGBoost model's own attributes
    give, or None when they do not say enough."""
    if _library(model) not in _LIBRARIES:
        return None
    try:
        names = _names(model)
        if not names or len(set(names)) != len(names) or not _numeric(model):
            return None
        width = getattr(model, "n_features_in_", None)
        if isinstance(width, int) and width != len(names):
            return None
        nullable = _takes_missing(model)
    except Exception:  # an estimator that is not fitted, or of an unknown shape
        return None
    signature = Signature(inputs=tuple(ColumnSpec(n, "Float64", nullable) for n in names))
    return Signature(inputs=signature.inputs, output=_output(model, signature))


def _output(model: Any, signature: Signature) -> str | None:
    """The type of the model's predictions on one row of zeros (None if it refuses)."""
    import polars as pl

    row = pl.DataFrame({c: [0.0] for c in signature.columns})
    try:
        return output_type(call_predict(model.predict, model_input(model, row)))
    except Exception:  # the signature of the inputs stands without an output type
        return None

"""A model's performance over a window: measured from labels, or estimated before they
arrive.

Measured (labels attached to the prediction log): ROC AUC (from the logged positive-class
probabilities, by ranks), accuracy, precision, recall, F1 and log loss for a binary
classifier; accuracy and macro-averaged precision, recall and F1 for a classifier of
more classes; MAE and RMSE for a regressor.

Estimated (confidence-based performance estimation, for a binary classifier whose
probabilities are calibrated): each prediction counts as a fraction of a true or false
positive by its probability. With ``p`` the probability of the positive class and
``ŷ`` the prediction, the expected confusion matrix is TP = Σ p over ŷ=1, FP = Σ (1-p)
over ŷ=1, FN = Σ p over ŷ=0, TN = Σ (1-p) over ŷ=0; accuracy, precision, recall and F1
follow, and ROC AUC comes from the expected true and false positive rates at every
threshold. The expected log loss is the mean binary entropy of the probabilities.
Estimates are always reported as estimates, never mixed with measured values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

_CLIP = 1e-15


@dataclass(frozen=True)
class Performance:
    metrics: dict[str, float]
    rows: int
    estimated: bool


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    """The area under the ROC curve (the Mann-Whitney statistic; ties count half);
    None when one class is missing."""
    from scipy.stats import rankdata

    positives = int(labels.sum())
    negatives = labels.size - positives
    if positives == 0 or negatives == 0:
        return None
    ranks = rankdata(scores)
    return float(
        (ranks[labels == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives)
    )


def _ratio(top: float, bottom: float) -> float | None:
    return float(top / bottom) if bottom > 0 else None


def _confusion(tp: float, fp: float, fn: float, tn: float) -> dict[str, float | None]:
    total = tp + fp + fn + tn
    precision = _ratio(tp, tp + fp)
    recall = _ratio(tp, tp + fn)
    f1 = (
        2 * precision * recall / (precision + recall)
        if precision is not None and recall is not None and precision + recall > 0
        else None
    )
    return {
        "accuracy": _ratio(tp + tn, total),
        "precision": precision,
        "recall": recall,
        "f1": f1,
    }


def measured_binary(
    labels: np.ndarray, predicted: np.ndarray, scores: np.ndarray | None
) -> Performance:
    """``labels`` and ``predicted``: 1 for the positive class, 0 otherwise; ``scores``:
    the positive class's probabilities (None when not logged)."""
    labels = labels.astype(np.int8)
    predicted = predicted.astype(np.int8)
    tp = float(np.sum((predicted == 1) & (labels == 1)))
    fp = float(np.sum((predicted == 1) & (labels == 0)))
    fn = float(np.sum((predicted == 0) & (labels == 1)))
    tn = float(np.sum((predicted == 0) & (labels == 0)))
    metrics = _confusion(tp, fp, fn, tn)
    if scores is not None:
        metrics["roc_auc"] = roc_auc(labels, scores)
        p = np.clip(scores, _CLIP, 1 - _CLIP)
        metrics["log_loss"] = float(-np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p)))
    return Performance(_present(metrics), int(labels.size), estimated=False)


def measured_classes(labels: np.ndarray, predicted: np.ndarray) -> Performance:
    """Any classifier (labels and predictions compared as values): accuracy, and
    precision, recall and F1 averaged over the classes seen (macro; a class never
    predicted counts 0 precision, as scikit-learn's ``zero_division=0``)."""
    labels = np.asarray(labels)
    predicted = np.asarray(predicted)
    metrics: dict[str, float] = {"accuracy": float(np.mean(labels == predicted))}
    classes = np.unique(np.concatenate([labels, predicted]))
    precisions, recalls, f1s = [], [], []
    for value in classes:
        truth, guess = labels == value, predicted == value
        tp = float(np.sum(truth & guess))
        precision = tp / guess.sum() if guess.sum() else 0.0
        recall = tp / truth.sum() if truth.sum() else 0.0
        precisions.append(precision)
        recalls.append(recall)
        f1s.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
    if classes.size:
        metrics["precision"] = float(np.mean(precisions))
        metrics["recall"] = float(np.mean(recalls))
        metrics["f1"] = float(np.mean(f1s))
    return Performance(metrics, int(labels.size), estimated=False)


def measured_regression(labels: np.ndarray, predicted: np.ndarray) -> Performance:
    errors = predicted.astype(np.float64) - labels.astype(np.float64)
    return Performance(
        {"mae": float(np.mean(np.abs(errors))), "rmse": float(np.sqrt(np.mean(errors**2)))},
        int(labels.size),
        estimated=False,
    )


def estimated_binary(predicted: np.ndarray, scores: np.ndarray) -> Performance:
    """Confidence-based estimates from the probabilities alone (see the module's
    docstring)."""
    p = np.clip(scores.astype(np.float64), 0.0, 1.0)
    positive = predicted.astype(bool)
    tp = float(p[positive].sum())
    fp = float((1 - p[positive]).sum())
    fn = float(p[~positive].sum())
    tn = float((1 - p[~positive]).sum())
    metrics = _confusion(tp, fp, fn, tn)
    order = np.argsort(-p, kind="stable")
    expected_tp = np.concatenate([[0.0], np.cumsum(p[order])])
    expected_fp = np.concatenate([[0.0], np.cumsum(1 - p[order])])
    if expected_tp[-1] > 0 and expected_fp[-1] > 0:
        tpr, fpr = expected_tp / expected_tp[-1], expected_fp / expected_fp[-1]
        metrics["roc_auc"] = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))
    clipped = np.clip(p, _CLIP, 1 - _CLIP)
    metrics["log_loss"] = float(
        -np.mean(clipped * np.log(clipped) + (1 - clipped) * np.log(1 - clipped))
    )
    return Performance(_present(metrics), int(p.size), estimated=True)


def _present(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if v is not None and np.isfinite(v)}

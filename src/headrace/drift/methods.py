"""The drift tests: each takes a column's reference and current statistics and returns
a score and, where the test defines one, a p-value.

====================  ===============  ==========  ===================================
method                columns          default     drifted when
====================  ===============  ==========  ===================================
``ks``                numeric          0.05        p-value < threshold
``chi2``              categorical      0.05        p-value < threshold
``z``                 two categories   0.05        p-value < threshold
``wasserstein``       numeric          0.1         distance / reference std >= threshold
``jensen_shannon``    both             0.1         distance >= threshold
``psi``               both             0.1         index >= threshold
====================  ===============  ==========  ===================================

Kolmogorov-Smirnov uses scipy's exact test when both samples are small and the whole
reference is at hand, else the statistic from both empirical CDFs and Kolmogorov's
distribution for the effective sample size. Chi-squared is the two-sample test of
homogeneity (scipy's ``chi2_contingency``), the z-test compares two proportions. The
Wasserstein distance is divided by the reference's standard deviation (at least 0.001).
Jensen-Shannon is the distance (natural logarithm; 0 to 0.83). PSI and Jensen-Shannon
use the reference's decile bins for a numeric column and the levels for a categorical
one; PSI clips empty bins to 0.0001.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from headrace.core.drift import METHODS, Method
from headrace.drift.stats import (
    CategoricalCurrent,
    CategoricalReference,
    NumericCurrent,
    NumericReference,
    aligned,
)

EPSILON = 1e-4
EXACT_KS_SIZE = 10_000

__all__ = ["METHODS", "Method", "run"]


def run(method: str, reference: Any, current: Any) -> tuple[float, float | None]:
    """``(score, p_value)`` of ``method`` (a p-value test's score is its statistic)."""
    numeric = isinstance(reference, NumericReference)
    if method == "ks":
        return ks(reference, current)
    if method == "wasserstein":
        return wasserstein(reference, current), None
    if method == "chi2":
        return chi2(reference, current)
    if method == "z":
        return z_test(reference, current)
    ref, cur = _shares(reference, current) if numeric else _level_shares(reference, current)
    if method == "psi":
        return psi(ref, cur), None
    if method == "jensen_shannon":
        return jensen_shannon(ref, cur), None
    raise ValueError(f"unknown drift method {method!r}")


def ks(reference: NumericReference, current: NumericCurrent) -> tuple[float, float]:
    from scipy import stats

    n, m = reference.count, current.count
    if reference.exact and n <= EXACT_KS_SIZE and m <= EXACT_KS_SIZE:
        result = stats.ks_2samp(reference.values, current.values)
        return float(result.statistic), float(result.pvalue)
    _, ref, cur = current.cdfs(reference)
    statistic = float(np.max(np.abs(ref - cur)))
    effective = max(round(n * m / (n + m)), 1)
    return statistic, float(stats.kstwo.sf(statistic, effective))


def wasserstein(reference: NumericReference, current: NumericCurrent) -> float:
    merged, ref, cur = current.cdfs(reference)
    distance = float(np.sum(np.abs(ref[:-1] - cur[:-1]) * np.diff(merged)))
    return distance / max(reference.std, 0.001)


def chi2(
    reference: CategoricalReference | NumericReference,
    current: CategoricalCurrent | NumericCurrent,
) -> tuple[float, float]:
    from scipy import stats

    ref, cur = _counts(reference, current)
    keep = (ref + cur) > 0
    if keep.sum() < 2:
        return 0.0, 1.0  # one level on both sides: nothing can differ
    statistic, p_value, _, _ = stats.chi2_contingency(np.vstack([ref[keep], cur[keep]]))
    return float(statistic), float(p_value)


def z_test(
    reference: CategoricalReference | NumericReference,
    current: CategoricalCurrent | NumericCurrent,
) -> tuple[float, float]:
    """Two proportions: the share of the reference's most common level on each side."""
    from scipy import stats

    ref, cur = _counts(reference, current)
    n, m = ref.sum(), cur.sum()
    if n == 0 or m == 0:
        return 0.0, 1.0
    first = int(np.argmax(ref))
    p1, p2 = ref[first] / n, cur[first] / m
    pooled = (ref[first] + cur[first]) / (n + m)
    spread = np.sqrt(pooled * (1 - pooled) * (1 / n + 1 / m))
    if spread == 0:
        return 0.0, 1.0 if p1 == p2 else 0.0
    statistic = (p1 - p2) / spread
    return float(statistic), float(2 * stats.norm.sf(abs(statistic)))


def psi(ref: np.ndarray, cur: np.ndarray) -> float:
    ref = np.clip(ref, EPSILON, None)
    cur = np.clip(cur, EPSILON, None)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def jensen_shannon(ref: np.ndarray, cur: np.ndarray) -> float:
    from scipy.spatial.distance import jensenshannon

    if ref.sum() == 0 or cur.sum() == 0:
        return 0.0
    return float(jensenshannon(ref, cur))


def _shares(reference: NumericReference, current: NumericCurrent) -> tuple[np.ndarray, np.ndarray]:
    return reference.shares, current.shares(reference)


def _level_shares(
    reference: CategoricalReference, current: CategoricalCurrent
) -> tuple[np.ndarray, np.ndarray]:
    _, ref, cur = aligned(reference, current)
    return ref / max(ref.sum(), 1), cur / max(cur.sum(), 1)


def _counts(reference: Any, current: Any) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(reference, CategoricalReference):
        _, ref, cur = aligned(reference, current)
        return ref, cur
    raise TypeError("a categorical test needs a categorical column")

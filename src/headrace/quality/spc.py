"""Statistical process control: limits learned from a metric's history.

A metric (a row count, a null fraction, any check's observed value) is judged against
the mean ± k·σ of its last ``window`` values, or, for the rate-of-change variant, its
change from the previous value against the mean ± k·σ of past changes. Nothing is
judged until ``min_history`` values (changes) exist: the first versions only teach.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class Judgement:
    passed: bool
    lower: float | None
    upper: float | None
    message: str
    learning: bool = False


def finite_number(value: object) -> float | None:
    """A finite number (for limits and charts), else None: bools, text, NaN, infinity."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def judge(
    history: Sequence[float],
    value: float | None,
    *,
    window: int,
    k: float,
    min_history: int,
    change: bool = False,
) -> Judgement:
    """Judge ``value`` against limits learned from ``history`` (oldest first)."""
    points = [v for v in (finite_number(h) for h in history) if v is not None]
    if value is None or finite_number(value) is None:
        return Judgement(passed=False, lower=None, upper=None, message="no value to judge")
    if change:
        recent = points[-(window + 1) :]
        series = [b - a for a, b in itertools.pairwise(recent)]
        what = "changes"
    else:
        series = points[-window:]
        what = "values"
    if len(series) < min_history:
        return Judgement(
            passed=True,
            lower=None,
            upper=None,
            learning=True,
            message=f"learning: {len(series)} of {min_history} {what} of history",
        )
    center = statistics.fmean(series)
    sigma = statistics.stdev(series)
    if change:
        center += points[-1]
    lower, upper = center - k * sigma, center + k * sigma
    passed = lower <= value <= upper
    message = (
        ""
        if passed
        else (
            f"{value:,.6g} is outside the control limits [{lower:,.6g}, {upper:,.6g}] "
            f"(mean ± {k:g}σ of the last {len(series)} {what}, σ = {sigma:,.4g})"
        )
    )
    return Judgement(passed=passed, lower=lower, upper=upper, message=message)

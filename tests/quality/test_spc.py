"""Control limits learned from a metric's history."""

from __future__ import annotations

import statistics

import pytest

from headrace.quality.spc import judge


def test_learning_until_enough_history() -> None:
    verdict = judge([10, 11, 12], 1000, window=10, k=3, min_history=5)
    assert verdict.passed and verdict.learning
    assert verdict.lower is None and "3 of 5 values" in verdict.message


def test_level_limits_are_mean_plus_minus_k_sigma_of_the_window() -> None:
    history = [100.0, 102.0, 98.0, 101.0, 99.0, 1000.0]  # the outlier is outside the window
    verdict = judge(history[:5], 100.5, window=5, k=3, min_history=5)
    mean, sigma = statistics.fmean(history[:5]), statistics.stdev(history[:5])
    assert verdict.passed
    assert verdict.lower == pytest.approx(mean - 3 * sigma)
    assert verdict.upper == pytest.approx(mean + 3 * sigma)
    outside = judge(history[:5], mean + 3.01 * sigma, window=5, k=3, min_history=5)
    assert not outside.passed and "outside the control limits" in outside.message
    # Only the last `window` values count: the old outlier does not widen the limits.
    recent = judge([1000.0, *history[:5]], 120, window=5, k=3, min_history=5)
    assert not recent.passed


def test_rate_of_change_judges_the_step_from_the_previous_value() -> None:
    growing = [100.0, 110.0, 120.0, 130.0, 140.0, 150.0]
    # A steady +10 a version: 160 is right on course though far above the mean level.
    assert judge(growing, 160, window=10, k=1, min_history=5, change=True).passed
    assert not judge(growing, 160, window=10, k=1, min_history=5, change=False).passed
    jump = judge(growing, 200, window=10, k=3, min_history=5, change=True)
    assert not jump.passed
    assert jump.lower == pytest.approx(160) and jump.upper == pytest.approx(160)
    # Changes need one more value than levels.
    assert judge(growing[:5], 999, window=10, k=3, min_history=5, change=True).learning


def test_missing_or_non_finite_values() -> None:
    assert not judge([1, 2, 3, 4, 5], None, window=5, k=3, min_history=2).passed
    verdict = judge([1, float("nan"), 2, 3, None, 4], 2.5, window=10, k=3, min_history=4)  # type: ignore[list-item]
    assert verdict.passed and not verdict.learning

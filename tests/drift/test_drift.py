"""Drift detection: each test against scipy, the default choice of test, overrides,
input flavors, compact profiles, and bad input."""

from __future__ import annotations

import json
from datetime import date

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from headrace.drift import ColumnTest, DriftDetector, DriftError, drift


def frames(n: int, seed: int = 0, shift: float = 0.0, reweight: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    levels = np.array(["a", "b", "c", "d"])
    p = [0.1, 0.2, 0.3, 0.4] if reweight else [0.4, 0.3, 0.2, 0.1]
    return pd.DataFrame(
        {
            "x": rng.normal(shift, 1, n),
            "y": rng.exponential(1, n),
            "k": levels[rng.choice(4, n, p=p)],
            "few": rng.integers(0, 3, n),
        }
    )


def test_large_samples_use_effect_sizes_and_find_the_shifted_columns() -> None:
    result = drift(frames(20_000), frames(20_000, seed=1, shift=0.5, reweight=True))
    methods = {c.column: c.method for c in result.columns}
    assert methods == {
        "x": "wasserstein",
        "y": "wasserstein",
        "k": "jensen_shannon",
        "few": "jensen_shannon",  # three distinct numbers: compared as categories
    }
    assert result.drifted_columns == ["x", "k"]
    assert result.share == 0.5 and result.drifted  # 2 of 4 reaches the 0.5 default
    x = result.column("x")
    assert x.p_value is None and x.kind == "numeric" and x.reference_rows == 20_000


def test_small_samples_use_p_value_tests() -> None:
    reference = frames(500)
    reference["two"] = np.where(np.arange(500) % 3 == 0, "yes", "no")
    current = frames(400, seed=1, shift=1.0)
    current["two"] = np.where(np.arange(400) % 2 == 0, "yes", "no")
    result = drift(reference, current)
    methods = {c.column: c.method for c in result.columns}
    assert methods == {"x": "ks", "y": "ks", "k": "chi2", "few": "chi2", "two": "z"}
    assert result.column("x").drifted and result.column("x").p_value < 1e-10
    assert not result.column("y").drifted and result.column("y").p_value > 0.05
    assert result.column("two").drifted  # a third against a half


def test_ks_and_wasserstein_match_scipy_with_ties() -> None:
    rng = np.random.default_rng(7)
    ref = pd.DataFrame({"v": rng.integers(0, 50, 30_000).astype(float)})
    cur = pd.DataFrame({"v": rng.integers(3, 52, 20_000).astype(float)})
    both = DriftDetector(tests={"v": "ks"}).fit(ref).score(cur).column("v")
    expected = stats.ks_2samp(ref.v, cur.v, method="asymp")
    assert both.score == pytest.approx(expected.statistic, abs=1e-12)
    assert both.p_value == pytest.approx(expected.pvalue, rel=1e-6, abs=1e-300)
    w = DriftDetector(tests={"v": "wasserstein"}).fit(ref).score(cur).column("v")
    assert w.score == pytest.approx(stats.wasserstein_distance(ref.v, cur.v) / ref.v.std(ddof=0))


def test_small_ks_is_scipys_exact_test() -> None:
    rng = np.random.default_rng(3)
    ref, cur = rng.normal(0, 1, 80), rng.normal(0.3, 1, 60)
    result = drift({"v": ref}, {"v": cur}).column("v")
    expected = stats.ks_2samp(ref, cur)
    assert (result.score, result.p_value) == pytest.approx((expected.statistic, expected.pvalue))


def test_categorical_tests_match_scipy_and_see_new_levels() -> None:
    ref = pd.DataFrame({"k": ["a"] * 500 + ["b"] * 300 + ["c"] * 200})
    cur = pd.DataFrame({"k": ["a"] * 300 + ["b"] * 300 + ["c"] * 200 + ["new"] * 200})
    chi = DriftDetector(tests={"k": "chi2"}).fit(ref).score(cur).column("k")
    table = np.array([[500, 300, 200, 0], [300, 300, 200, 200]])
    statistic, p_value, _, _ = stats.chi2_contingency(table)
    assert (chi.score, chi.p_value) == pytest.approx((statistic, p_value)) and chi.drifted
    js = DriftDetector(tests={"k": "jensen_shannon"}).fit(ref).score(cur).column("k")
    assert js.score == pytest.approx(jensenshannon(table[0] / 1000, table[1] / 1000))
    psi = DriftDetector(tests={"k": "psi"}).fit(ref).score(cur).column("k")
    r = np.clip(table[0] / 1000, 1e-4, None)
    c = np.clip(table[1] / 1000, 1e-4, None)
    assert psi.score == pytest.approx(np.sum((c - r) * np.log(c / r))) and psi.drifted


def test_identical_data_does_not_drift_under_any_method() -> None:
    data = frames(5_000)
    for method in ("ks", "wasserstein", "psi", "jensen_shannon"):
        result = DriftDetector(["x"], tests={"x": method}).fit(data).score(data).column("x")
        assert not result.drifted and result.score == pytest.approx(0.0, abs=1e-12), method


def test_overrides_per_column_and_per_kind() -> None:
    ref, cur = frames(5_000), frames(5_000, seed=1, shift=0.05)
    strict = DriftDetector(tests={"x": ColumnTest("wasserstein", threshold=0.01)})
    assert strict.fit(ref).score(cur).column("x").drifted
    assert not drift(ref, cur).column("x").drifted  # 0.05 sd is under the 0.1 default
    kinds = DriftDetector(numeric="psi", categorical=ColumnTest("chi2", 0.01)).fit(ref).score(cur)
    assert {c.column: c.method for c in kinds.columns} == {
        "x": "psi",
        "y": "psi",
        "k": "chi2",
        "few": "chi2",
    }
    assert kinds.column("k").threshold == 0.01
    forced = DriftDetector(tests={"few": "ks"}).fit(ref).score(cur).column("few")
    assert forced.kind == "numeric" and forced.method == "ks"  # a numeric test keeps numbers
    as_levels = DriftDetector(categorical_columns=["y"]).fit(ref.head(300))
    assert as_levels.references["y"].__class__.__name__ == "CategoricalReference"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: DriftDetector(tests={"x": "t-test"}), "unknown drift method 't-test'"),
        (lambda: ColumnTest("ks", 1.5), "ks: the threshold is a p-value, between 0 and 1"),
        (lambda: ColumnTest("psi", 0), "psi: the threshold must be > 0"),
        (lambda: DriftDetector(drift_share=0), "drift_share must be in"),
        (lambda: DriftDetector(bins=1), "bins must be at least 2"),
    ],
)
def test_bad_options_are_refused_with_a_clear_error(make: object, message: str) -> None:
    with pytest.raises(DriftError, match=message):
        make()  # type: ignore[operator]


def test_bad_input_names_the_column() -> None:
    ref = frames(2_000)
    with pytest.raises(DriftError, match="column 'nope' is not in the table") as error:
        DriftDetector(["x", "nope"]).fit(ref)
    assert error.value.column == "nope"
    with pytest.raises(DriftError, match="a test is given for column 'z'"):
        DriftDetector(tests={"z": "ks"}).fit(ref)
    with pytest.raises(DriftError, match="column 'k' is categorical; ks compares numeric"):
        DriftDetector(tests={"k": "ks"}).fit(ref)
    detector = DriftDetector().fit(ref)
    with pytest.raises(DriftError, match="column 'y' is not in the table"):
        detector.score(ref.drop(columns="y"))
    with pytest.raises(
        DriftError,
        match=r"column 'x' is (large_)?string in the current table; the reference has numbers",
    ):
        detector.score(ref.assign(x="text"))
    with pytest.raises(DriftError, match="column 'x' has no values in the current table"):
        detector.score(ref.assign(x=np.nan))
    with pytest.raises(DriftError, match="not fitted"):
        DriftDetector().score(ref)
    with pytest.raises(DriftError, match="expected a pandas, polars or Arrow table"):
        DriftDetector().fit([1, 2, 3])


def test_unsupported_and_empty_columns_are_skipped_with_a_reason() -> None:
    ref = frames(100).assign(day=date(2026, 1, 1), empty=None)
    result = drift(ref, ref)
    assert "type date32[day] is neither numeric nor categorical" in result.skipped["day"]
    assert result.skipped["empty"] == "no values in the reference"
    assert {c.column for c in result.columns} == {"x", "y", "k", "few"}


def test_nulls_and_non_finite_values_are_left_out_and_counted() -> None:
    rng = np.random.default_rng(1)
    ref = pd.DataFrame({"v": rng.normal(0, 1, 1500)})
    ref.loc[::5, "v"] = np.nan
    ref.loc[1::5, "v"] = np.inf
    cur = pd.DataFrame({"v": rng.normal(0, 1, 1800)})
    cur.loc[::6, "v"] = None
    result = drift(ref, cur).column("v")
    assert result.kind == "numeric"
    assert (result.reference_rows, result.reference_nulls) == (900, 600)
    assert (result.current_rows, result.current_nulls) == (1500, 300)


def test_pandas_polars_and_arrow_give_the_same_answer() -> None:
    ref, cur = frames(3_000), frames(3_000, seed=2, shift=0.2, reweight=True)
    expected = drift(ref, cur).to_dict()
    assert drift(pl.from_pandas(ref), pl.from_pandas(cur)).to_dict() == expected
    assert drift(pa.Table.from_pandas(ref), pa.Table.from_pandas(cur)).to_dict() == expected
    categorical = ref.assign(k=ref.k.astype("category"))
    assert drift(categorical, cur).to_dict() == expected


def test_a_compact_profile_scores_like_the_reference() -> None:
    ref, cur = frames(50_000), frames(20_000, seed=8, shift=0.3, reweight=True)
    detector = DriftDetector(tests={"y": "ks"}).fit(ref)
    profile = json.loads(json.dumps(detector.profile()))
    assert len(profile["columns"]["x"]["values"]) == 1000  # quantiles, not 50,000 values
    assert len(json.dumps(profile)) < 100_000
    exact, compact = detector.score(cur), DriftDetector.from_profile(profile).score(cur)
    assert [c.method for c in compact.columns] == [c.method for c in exact.columns]
    assert compact.drifted_columns == exact.drifted_columns == ["x", "k"]
    for a, b in zip(exact.columns, compact.columns, strict=True):
        assert b.score == pytest.approx(a.score, abs=0.01), a.column
        assert b.reference_rows == a.reference_rows
    # 1,000 quantiles move the KS statistic by well under 1/1000 of the rows
    assert compact.column("y").score == pytest.approx(exact.column("y").score, abs=0.001)
    assert compact.column("y").p_value == pytest.approx(exact.column("y").p_value, abs=0.1)


def test_a_small_reference_profile_stays_exact() -> None:
    ref, cur = frames(300), frames(300, seed=1, shift=0.4)
    detector = DriftDetector().fit(ref)
    restored = DriftDetector.from_profile(json.loads(json.dumps(detector.profile())))
    exact, again = detector.score(cur), restored.score(cur)
    for a, b in zip(exact.columns, again.columns, strict=True):  # the same, up to rounding
        assert (a.method, a.drifted, a.reference_rows) == (b.method, b.drifted, b.reference_rows)
        assert b.score == pytest.approx(a.score, rel=1e-12)
        assert b.p_value == pytest.approx(a.p_value, rel=1e-9)


def test_a_bad_profile_is_refused() -> None:
    with pytest.raises(DriftError, match="not a drift profile"):
        DriftDetector.from_profile({"columns": {}})
    with pytest.raises(DriftError, match="column 'x': unknown kind 'text'"):
        DriftDetector.from_profile({"format": 1, "columns": {"x": {"kind": "text"}}})

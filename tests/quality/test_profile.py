"""Column profiles in one pass, and the starting suite suggested from them."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest
import yaml

from headrace.core.checks import Suite
from headrace.quality.engine import validate
from headrace.quality.profile import (
    BINS,
    QUANTILES,
    ProfileError,
    TableProfile,
    profile,
    suggest_suite,
)
from headrace.workspace.suites import load_suite_file


def _frame(n: int = 2_000, seed: int = 7) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    amount = rng.normal(50, 12, n)
    return pl.DataFrame(
        {
            "id": np.arange(n, dtype=np.int64),
            "amount": [None if i % 10 == 0 else float(v) for i, v in enumerate(amount)],
            "qty": rng.integers(-5, 40, n),
            "origin": rng.choice(["EWR", "JFK", "LGA"], n, p=[0.5, 0.3, 0.2]),
            "email": [None if i % 7 == 0 else f"user{i % 300}@example.com" for i in range(n)],
            "flag": [None if i % 13 == 0 else bool(i % 3) for i in range(n)],
            "day": [dt.date(2024, 1, 1) + dt.timedelta(days=int(i % 90)) for i in range(n)],
            "at": [dt.datetime(2024, 1, 1) + dt.timedelta(minutes=7 * i) for i in range(n)],
        }
    )


def _suite_file(tmp_path: Path, text: str) -> Suite:
    path = tmp_path / "suggested.checks.yaml"
    path.write_text(text)
    asset, checks = load_suite_file(path)
    return Suite(asset, checks)


def test_numeric_statistics_match_polars() -> None:
    df = _frame()
    made = profile(df)
    assert made.rows == df.height and made.names == df.columns
    for name in ("amount", "qty"):
        column, series = made[name], df[name]
        values = series.drop_nulls()
        assert column.kind == "numeric" and column.dtype == str(series.dtype)
        assert column.nulls == series.null_count()
        assert column.null_fraction == pytest.approx(series.null_count() / df.height)
        assert column.distinct == values.n_unique()
        assert column.min == values.min() and column.max == values.max()
        assert column.mean == pytest.approx(values.mean())
        assert column.std == pytest.approx(values.std())
        for q in QUANTILES:
            assert column.quantiles[f"{q:g}"] == pytest.approx(values.quantile(q, "nearest"))
        histogram = column.histogram
        assert histogram is not None
        assert len(histogram.counts) == BINS and len(histogram.edges) == BINS + 1
        assert sum(histogram.counts) == len(values)
        assert histogram.edges[0] <= values.min() and histogram.edges[-1] >= values.max()
        assert histogram.edges == sorted(histogram.edges)
        assert column.top_values == [] and column.values is None
    assert made["id"].distinct == df.height


def test_text_boolean_and_temporal_columns() -> None:
    df = _frame()
    made = profile(df)
    origin = made["origin"]
    counts = df["origin"].value_counts(sort=True)
    assert origin.kind == "text" and origin.distinct == 3
    assert origin.top_values == [(r["origin"], r["count"]) for r in counts.iter_rows(named=True)]
    assert origin.values == ["EWR", "JFK", "LGA"]
    assert (origin.min_length, origin.max_length) == (3, 3)
    assert origin.histogram is None and origin.min is None

    email = made["email"]
    assert email.nulls == df["email"].null_count()
    assert email.distinct == df["email"].drop_nulls().n_unique() == 300
    assert len(email.top_values) == 10 and email.values is None  # too many to keep them all
    top_count = df["email"].drop_nulls().value_counts()["count"].max()
    assert email.top_values[0][1] == top_count
    lengths = df["email"].drop_nulls().str.len_chars()
    assert (email.min_length, email.max_length) == (lengths.min(), lengths.max())

    flag = made["flag"]
    assert flag.kind == "boolean" and flag.values == [False, True]
    assert dict(flag.top_values) == {
        True: int(df["flag"].sum()),
        False: int((~df["flag"].drop_nulls()).sum()),
    }

    day = made["day"]
    assert day.kind == "temporal" and day.dtype == "Date"
    assert day.min == "2024-01-01" and day.max == "2024-03-30"
    median_days = df["day"].to_physical().quantile(0.5, "nearest")
    assert day.quantiles["0.5"] == (dt.date(1970, 1, 1) + dt.timedelta(median_days)).isoformat()
    assert day.mean is not None and day.std is not None and day.histogram is not None

    at = made["at"]
    assert at.dtype == str(df.schema["at"])
    assert at.min == "2024-01-01T00:00:00"
    last = dt.datetime(2024, 1, 1) + dt.timedelta(minutes=7 * (df.height - 1))
    assert at.max == last.isoformat()
    median_us = df["at"].to_physical().quantile(0.5, "nearest")
    expected = dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=median_us)
    assert at.quantiles["0.5"] == expected.isoformat()
    assert at.histogram is not None and sum(at.histogram.counts) == df.height
    spread_us = df["at"].to_physical().std()
    assert at.std == str(dt.timedelta(seconds=spread_us / 1e6))


def test_pandas_arrow_and_lazy_inputs_give_the_same_profile() -> None:
    df = _frame(300)
    expected = profile(df).to_dict()
    for data in (df.to_pandas(), df.to_arrow(), df.lazy()):
        got = profile(data).to_dict()
        assert got["rows"] == 300
        # pandas has no date type (the dates come back as datetimes); the rest agrees.
        same = [a for a in got["columns"] if a["name"] != "day" or a["dtype"] == "Date"]
        assert len(same) >= len(df.columns) - 1
        by_name = {b["name"]: b for b in expected["columns"]}
        for a in same:
            b = by_name[a["name"]]
            assert a.keys() == b.keys()
            for key, value in a.items():  # sums may differ in the last bit with chunking
                assert value == (pytest.approx(b[key]) if isinstance(value, float) else b[key])


def test_nan_and_infinity_are_counted_apart_from_the_statistics() -> None:
    df = pl.DataFrame({"x": [1.0, float("nan"), 3.0, None, float("inf"), 2.0]})
    column = profile(df)["x"]
    assert column.nulls == 1 and column.nan == 1
    assert column.min == 1.0 and column.max == math.inf
    assert column.histogram is not None and sum(column.histogram.counts) == 3  # finite only
    assert column.histogram.edges[-1] == pytest.approx(3.0)


def test_an_empty_frame() -> None:
    df = pl.DataFrame(schema={"a": pl.Int64, "b": pl.String, "c": pl.Float64, "d": pl.Date})
    made = profile(df)
    assert made.rows == 0
    for column in made.columns:
        assert column.nulls == 0 and column.null_fraction == 0.0 and column.distinct == 0
        assert column.min is None and column.max is None and column.mean is None
        assert column.quantiles == {} and column.histogram is None and column.top_values == []
    assert profile(pl.DataFrame()).rows == 0
    assert profile(pd.DataFrame()).columns == []


def test_all_null_columns() -> None:
    df = pl.DataFrame(
        {
            "f": pl.Series([None, None, None], dtype=pl.Float64),
            "s": pl.Series([None, None, None], dtype=pl.String),
            "n": [None, None, None],
        }
    )
    made = profile(df)
    for name in ("f", "s", "n"):
        column = made[name]
        assert column.nulls == 3 and column.null_fraction == 1.0 and column.distinct == 0
        assert column.min is None and column.histogram is None and column.top_values == []
    assert made["n"].dtype == "Null" and made["n"].kind == "other"
    assert made["s"].values == []


def test_other_types_get_nulls_and_distinct_values() -> None:
    df = pl.DataFrame(
        {
            "tags": [["a"], ["a"], None, ["b", "c"]],
            "point": [{"x": 1}, {"x": 1}, {"x": 2}, None],
            "cat": pl.Series(["lo", "hi", "lo", None], dtype=pl.Categorical),
            "level": pl.Series(["lo", "hi", "lo", "lo"], dtype=pl.Enum(["lo", "hi"])),
        }
    )
    made = profile(df)
    assert (made["tags"].kind, made["tags"].nulls, made["tags"].distinct) == ("other", 1, 2)
    assert (made["point"].kind, made["point"].nulls) == ("other", 1)
    assert made["cat"].kind == "text" and made["cat"].top_values == [("lo", 2), ("hi", 1)]
    assert (made["cat"].min_length, made["cat"].max_length) == (2, 2)
    assert made["level"].values == ["hi", "lo"]


def test_times_durations_decimals_and_unaggregatable_types() -> None:
    df = pl.DataFrame(
        {
            "t": [dt.time(1, 2, 3), dt.time(4, 5, 6), None],
            "dur": [dt.timedelta(seconds=1), dt.timedelta(minutes=2), None],
            "dec": pl.Series(
                [decimal.Decimal("1.50"), decimal.Decimal("2.25"), None], dtype=pl.Decimal(10, 2)
            ),
            "tz": pl.Series(
                [dt.datetime(2024, 1, 1), dt.datetime(2024, 6, 1), None]
            ).dt.replace_time_zone("Europe/Paris"),
            "obj": pl.Series([object(), object(), None], dtype=pl.Object),
            "__count": ["x", "y", "x"],  # the name value counts use internally
        }
    )
    made = profile(df)
    assert (made["t"].min, made["t"].max) == ("01:02:03", "04:05:06")
    assert (made["dur"].min, made["dur"].max) == ("0:00:01", "0:02:00")
    assert (made["dec"].min, made["dec"].max, made["dec"].mean) == (1.5, 2.25, 1.875)
    assert made["tz"].min == "2024-01-01T00:00:00+01:00"
    assert made["tz"].max == "2024-06-01T00:00:00+02:00"
    assert (made["obj"].kind, made["obj"].nulls, made["obj"].distinct) == ("other", 1, None)
    assert made["__count"].top_values == [("x", 2), ("y", 1)]
    TableProfile.from_dict(json.loads(json.dumps(made.to_dict())))


def test_profiles_survive_json() -> None:
    made = profile(_frame(500))
    text = json.dumps(made.to_dict())
    assert TableProfile.from_dict(json.loads(text)) == made


def test_only_tables_are_profiled() -> None:
    with pytest.raises(TypeError, match="pandas, polars or Arrow table, got dict"):
        profile({"a": [1, 2]})


def test_the_suggested_suite_loads_and_passes_on_the_profiled_data(tmp_path: Path) -> None:
    df = _frame()
    text = suggest_suite(profile(df), "orders", source="version 0123abcd of orders")
    assert text.startswith("# A starting point, generated by `headrace profile --suggest`")
    header = " ".join(line[2:] for line in text.splitlines() if line.startswith("# "))
    assert "from version 0123abcd of orders (2,000 rows in 1 table)" in header
    suite = _suite_file(tmp_path, text)
    assert suite.name == "orders"
    report = validate(df, suite)
    assert report.success and not report.failed, [r.message for r in report.failed]

    checks = {check.name: check for check in suite.checks}
    assert dict(checks["schema"].types) == {name: str(t) for name, t in df.schema.items()}
    assert checks["row_count"].min == df.height // 2
    assert checks["row_count"].max == math.ceil(df.height * 1.5)
    assert {"id_not_null", "qty_not_null", "origin_not_null", "day_not_null"} <= set(checks)
    assert "amount_not_null" not in checks and "email_not_null" not in checks
    assert "id_unique" in checks and "at_unique" in checks
    assert "qty_unique" not in checks and "amount_unique" not in checks  # repeats; floats
    assert checks["origin_in_set"].values == ("EWR", "JFK", "LGA")
    assert "email_in_set" not in checks  # 300 distinct values
    assert (checks["qty_between"].min, checks["qty_between"].max) == (
        df["qty"].min(),
        df["qty"].max(),
    )
    assert checks["amount_between"].min == df["amount"].min()
    fraction = df["amount"].null_count() / df.height
    assert fraction < checks["amount_null_fraction"].max <= fraction + 0.05
    assert "id_null_fraction" not in checks
    assert not any(name.startswith(("day_between", "flag_between")) for name in checks)


def test_suggestions_from_partitions_hold_for_each(tmp_path: Path) -> None:
    small = pl.DataFrame({"id": [1, 2, 3], "region": ["n", "s", "n"], "v": [1.5, 2.0, 9.0]})
    big = pl.DataFrame(
        {
            "id": [1, 2, 3, 4, 5, 6],
            "region": ["e", "e", "w", "n", None, "e"],
            "v": [-4.0, 0.0, 1.0, 1.0, 2.0, 3.0],
        }
    )
    suite = _suite_file(tmp_path, suggest_suite([profile(small), profile(big)], "p"))
    for part in (small, big):
        assert validate(part, suite).success
    checks = {c.name: c for c in suite.checks}
    assert (checks["row_count"].min, checks["row_count"].max) == (1, 9)
    assert (checks["v_between"].min, checks["v_between"].max) == (-4.0, 9.0)
    assert checks["region_in_set"].values == ("e", "n", "s", "w")
    assert "region_not_null" not in checks and "region_null_fraction" in checks
    assert "id_unique" in checks  # unique within each partition, which is what is checked


def test_names_that_are_taken_or_unusable(tmp_path: Path) -> None:
    df = pl.DataFrame({"id": [1, 2], "<script>x": ["a", "b"], "a b": [1, 1], "a_b": [2, 2]})
    text = suggest_suite(profile(df), "t", taken=["id_not_null"])
    assert "Left out, already declared on the asset: id_not_null." in text
    suite = _suite_file(tmp_path, text)
    names = [c.name for c in suite.checks]
    assert "id_not_null" not in names and "id_unique" in names
    assert "script_x_not_null" in names
    assert {"a_b_not_null", "a_b_not_null_2"} <= set(names)  # 'a b' and 'a_b' both
    assert validate(df, suite).success
    loaded = yaml.safe_load(text)
    assert loaded["asset"] == "t"


def test_nan_and_float_columns_get_no_unique_or_range(tmp_path: Path) -> None:
    df = pl.DataFrame({"f": [1.0, float("nan"), 2.5], "g": [0.5, 1.5, 2.5]})
    suite = _suite_file(tmp_path, suggest_suite(profile(df), "t"))
    names = {c.name for c in suite.checks}
    assert "f_between" not in names and "f_unique" not in names and "g_unique" not in names
    assert "g_between" in names
    assert validate(df, suite).success


def test_an_empty_table_suggests_only_what_it_can(tmp_path: Path) -> None:
    df = pl.DataFrame(schema={"a": pl.Int64})
    suite = _suite_file(tmp_path, suggest_suite(profile(df), "t"))
    assert [c.name for c in suite.checks] == ["schema", "row_count"]
    assert validate(df, suite).success


def test_suggesting_needs_a_profile() -> None:
    with pytest.raises(ProfileError, match="at least one profile"):
        suggest_suite([], "t")

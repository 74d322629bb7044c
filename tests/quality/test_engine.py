from __future__ import annotations

import datetime as dt

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

import headrace as hr
from headrace import checks as c
from headrace.core.checks import CheckDefinitionError


def _orders() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": [1, 2, 3, 4, 4, None],
            "amount": [10.0, 250.0, -5.0, 99.0, None, 12000.0],
            "category": ["a", "b", "c", "a", "z", None],
            "email": ["x@y.io", "bad", None, "p@q.org", "r@s.com", "nope"],
            "ts": pd.to_datetime(["2024-01-01"] * 6),
        }
    )


SUITE = hr.Suite(
    "orders",
    [
        c.not_null("id"),
        c.unique("id"),
        c.between("amount", 0, 10_000),
        c.in_set("category", ["a", "b", "c"], severity="warn"),
        c.matches("email", r"^[^@]+@[^@]+\.[a-z]+$"),
        c.row_count(min=1, max=10),
        c.mean("amount", min=0, max=1000),
        c.null_fraction("email", max=0.2),
        c.distinct_count("category", min=3),
        c.expression("amount IS NULL OR amount < 11000", mostly=0.8),
    ],
)


@pytest.mark.parametrize("flavor", ["pandas", "polars", "arrow"])
def test_one_pass_finds_each_failure_with_counts_and_samples(flavor: str) -> None:
    data = _orders()
    frame = {"pandas": data, "polars": pl.from_pandas(data), "arrow": pa.Table.from_pandas(data)}
    report = hr.validate(frame[flavor], SUITE)
    assert report.rows == 6
    assert not report.success
    by_name = {r.name: r for r in report.results}
    assert by_name["id_not_null"].failing_rows == 1
    assert by_name["id_unique"].failing_rows == 1
    amount = by_name["amount_between"]
    assert amount.failing_rows == 2 and not amount.passed
    assert sorted(row["amount"] for row in amount.sample) == [-5.0, 12000.0]
    category = by_name["category_in_set"]
    assert category.failing_rows == 1 and category.severity == "warn"
    assert category.sample[0]["category"] == "z"  # None is not checked
    email = by_name["email_matches"]
    assert email.failing_rows == 2 and {r["email"] for r in email.sample} == {"bad", "nope"}
    assert by_name["row_count"].passed and by_name["row_count"].observed == 6
    assert by_name["amount_mean"].passed is False  # 12000 pulls it up
    assert by_name["email_null_fraction"].passed  # 1 of 6
    assert by_name["category_distinct_count"].passed
    assert by_name["amount_IS_NULL_OR_amount_11000"].passed  # 5/6 >= 0.8
    assert [r.name for r in report.warnings] == ["category_in_set"]
    assert "category_in_set" not in [r.name for r in report.errors]
    assert report["id_unique"].sample and report["id_unique"].sample[0]["id"] == 4


def test_mostly_tolerates_a_share_of_failing_rows() -> None:
    df = pl.DataFrame({"x": [1, 2, 3, 4, None, None, None, None, None, None]})
    strict = hr.validate(df, hr.Suite("s", [c.not_null("x")]))
    loose = hr.validate(df, hr.Suite("s", [c.not_null("x", mostly=0.4)]))
    tight = hr.validate(df, hr.Suite("s", [c.not_null("x", mostly=0.5)]))
    assert not strict.success and loose.success and not tight.success
    assert loose.results[0].failing_fraction == pytest.approx(0.6)


def test_multi_column_unique_statistics_schema_and_freshness() -> None:
    now = dt.datetime.now()
    df = pl.DataFrame(
        {
            "a": [1, 1, 2, 2],
            "b": ["x", "y", "x", "x"],
            "v": [1.0, 2.0, 3.0, 4.0],
            "at": [now - dt.timedelta(hours=h) for h in (5, 4, 3, 2)],
        }
    )
    report = hr.validate(
        df,
        hr.Suite(
            "t",
            [
                c.unique("a", "b"),
                c.stddev("v", min=1.0, max=1.5),
                c.quantile("v", 0.5, min=2.0, max=3.0),
                c.freshness("at", max_age_seconds=3 * 3600),
                c.freshness("at", max_age_seconds=60, name="too_stale"),
                c.schema({"a": "Int64", "b": "String", "v": "Float64"}),
                c.schema({"a": "Int64"}, allow_extra=False, name="strict_schema"),
            ],
        ),
    )
    by_name = {r.name: r for r in report.results}
    assert by_name["a_b_unique"].failing_rows == 1
    assert {(r["a"], r["b"]) for r in by_name["a_b_unique"].sample} == {(2, "x")}
    assert by_name["v_stddev"].passed and by_name["v_q0_5"].passed
    assert by_name["at_freshness"].passed
    assert not by_name["too_stale"].passed and "s old" in by_name["too_stale"].message
    assert by_name["schema"].passed
    assert not by_name["strict_schema"].passed
    assert "b is not expected" in by_name["strict_schema"].message


@pytest.mark.parametrize(
    ("check", "message"),
    [
        (
            c.not_null("idd"),
            r"suite 'orders', check 'idd_not_null': column 'idd' does not exist "
            r"\(did you mean 'id'\?\)",
        ),
        (c.between("category", 0, 1), "column 'category' is String, not numeric"),
        (c.matches("amount", "x"), "column 'amount' is Float64, not text"),
        (c.matches("email", "(?<=a)b"), "is not supported"),
        (c.expression("amount >>> 3"), "the SQL expression cannot be used"),
        (c.freshness("amount", max_age_seconds=5), "not a date or time"),
    ],
)
def test_definition_errors_come_before_any_data_is_read(check: object, message: str) -> None:
    with pytest.raises(CheckDefinitionError, match=message):
        hr.validate(_orders(), hr.Suite("orders", [check]))  # type: ignore[list-item]


def test_non_tables_are_refused_clearly() -> None:
    with pytest.raises(TypeError, match="pandas, polars or Arrow table, got list"):
        hr.validate([1, 2], SUITE)  # type: ignore[arg-type]


def test_an_empty_table() -> None:
    empty = pl.DataFrame({"x": []}, schema={"x": pl.Int64})
    report = hr.validate(empty, hr.Suite("e", [c.not_null("x"), c.row_count(min=1)]))
    assert report.rows == 0
    assert report["x_not_null"].passed and not report["row_count"].passed


def test_samples_are_found_wherever_the_failures_are() -> None:
    n = 400_000
    values = list(range(n))
    for position in (299_990, 350_000, 399_999):
        values[position] = -1
    df = pd.DataFrame({"x": values, "tag": ["ok"] * n})
    report = hr.validate(df, hr.Suite("late", [c.between("x", 0, None)]), sample=5)
    result = report["x_between"]
    assert result.failing_rows == 3
    assert [row["x"] for row in result.sample] == [-1, -1, -1]
    assert all(row["tag"] == "ok" for row in result.sample)  # whole rows, unchecked columns too


@pytest.mark.parametrize("flavor", ["pandas", "polars"])
def test_sql_checks_count_and_sample_the_rows_a_query_returns(flavor: str) -> None:
    data = pd.DataFrame({"dep": [100, 200, 300, 400], "arr": [150, 190, 350, 380]})
    frame = data if flavor == "pandas" else pl.from_pandas(data)
    suite = hr.Suite(
        "times",
        [
            c.sql("SELECT * FROM data WHERE arr < dep", name="arrives_after_leaving"),
            c.sql("SELECT * FROM data WHERE dep < 0", name="no_negative", severity="warn"),
        ],
    )
    report = hr.validate(frame, suite)
    failing = report["arrives_after_leaving"]
    assert not failing.passed and failing.failing_rows == 2
    assert sorted(row["dep"] for row in failing.sample) == [200, 400]
    assert report["no_negative"].passed
    with pytest.raises(CheckDefinitionError, match="check 'bad_sql': the SQL query cannot run"):
        hr.validate(frame, hr.Suite("t", [c.sql("SELECT nope FROM data", name="bad_sql")]))
    with pytest.raises(CheckDefinitionError, match="named data"):
        c.sql("SELECT 1")

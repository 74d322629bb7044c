"""references, custom, anomaly and schema-drift checks on plain tables (no pipeline)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import polars as pl
import pytest

from headrace import checks as c
from headrace import validate
from headrace.core.checks import CheckDefinitionError, CheckExecutionError, Suite

FLIGHTS = pl.DataFrame(
    {
        "id": [1, 2, 3, 4, 5],
        "tailnum": ["N1", "N2", "N9", None, "N8"],
        "carrier": ["AA", "UA", "AA", "B6", "AA"],
        "delay": [5.0, -3.0, 1500.0, 12.0, 7.0],
        "parent": [None, 1, 1, 9, 2],
    }
)
PLANES = pl.DataFrame({"tailnum": ["N1", "N2", "N3"], "seats": [100, 150, 200]})


@pytest.mark.parametrize("flavor", ["polars", "pandas", "arrow"])
def test_references_counts_values_missing_from_the_other_table(flavor: str) -> None:
    data: Any = {"polars": FLIGHTS, "pandas": FLIGHTS.to_pandas(), "arrow": FLIGHTS.to_arrow()}[
        flavor
    ]
    planes: Any = {"polars": PLANES, "pandas": PLANES.to_pandas(), "arrow": PLANES.to_arrow()}[
        flavor
    ]
    suite = Suite("flights", [c.references("tailnum", "planes")])
    result = validate(data, suite, references={"planes": planes})["tailnum_in_planes"]
    assert not result.passed
    assert result.failing_rows == 2  # N9 and N8; the null is not checked
    assert [row["tailnum"] for row in result.sample] == ["N9", "N8"]
    assert result.threshold == "every value is in planes.tailnum"
    tolerant = Suite("flights", [c.references("tailnum", "planes", mostly=0.6)])
    assert validate(data, tolerant, references={"planes": planes}).success


def test_references_another_column_name_a_series_and_the_same_table() -> None:
    known = pl.DataFrame({"code": ["AA", "UA", "B6"]})
    suite = Suite("flights", [c.references("carrier", "airlines", to_column="code")])
    assert validate(FLIGHTS, suite, references={"airlines": known}).success
    series = Suite("flights", [c.references("carrier", "airlines", name="carrier_known")])
    report = validate(FLIGHTS, series, references={"airlines": pl.Series(["AA"])})
    assert report["carrier_known"].failing_rows == 2
    # A column referencing another column of the same table (parent → id).
    own = Suite("flights", [c.references("parent", "flights", to_column="id")])
    result = validate(FLIGHTS, own)["parent_in_flights"]
    assert result.failing_rows == 1 and result.sample[0]["parent"] == 9


def test_references_mistakes_are_named_before_reading() -> None:
    suite = Suite("flights", [c.references("tailnum", "planes")])
    with pytest.raises(CheckDefinitionError, match=r"'planes', whose table was not given"):
        validate(FLIGHTS, suite)
    with pytest.raises(CheckDefinitionError, match=r"planes' has no column 'tail'"):
        validate(
            FLIGHTS,
            Suite("flights", [c.references("tailnum", "planes", to_column="tail")]),
            references={"planes": PLANES},
        )
    with pytest.raises(CheckDefinitionError, match=r"cannot be compared with column 'tailnum'"):
        validate(
            FLIGHTS,
            Suite("flights", [c.references("tailnum", "planes", to_column="seats")]),
            references={"planes": PLANES},
        )
    # Integers of another width are the same kind of value: compared.
    narrow = PLANES.with_columns(pl.col("seats").cast(pl.Int16))
    ids = Suite("flights", [c.references("id", "planes", to_column="seats")])
    assert validate(FLIGHTS, ids, references={"planes": narrow})["id_in_planes"].failing_rows == 5
    with pytest.raises(CheckDefinitionError, match="not an asset name"):
        c.references("tailnum", "planes.tailnum")


def no_huge_delays(df: pl.DataFrame) -> pl.Series:
    return df["delay"] < 20 * 60


def enough_carriers(df: pd.DataFrame) -> c.Outcome:
    carriers = df["carrier"].nunique()
    return c.Outcome(carriers >= 4, observed=carriers, message=f"{carriers} carriers")


def test_custom_checks_are_plain_functions() -> None:
    def all_ids_positive(df: pl.DataFrame) -> bool:
        return bool((df["id"] > 0).all())

    suite = Suite(
        "flights", [no_huge_delays, c.custom(enough_carriers, severity="warn"), all_ids_positive]
    )
    report = validate(FLIGHTS, suite)
    huge = report["no_huge_delays"]
    assert not huge.passed and huge.failing_rows == 1 and huge.sample[0]["id"] == 3
    carriers = report["enough_carriers"]  # annotated pandas: received a pandas frame
    assert not carriers.passed and carriers.observed == 3 and carriers.message == "3 carriers"
    assert carriers.severity == "warn"
    assert report["all_ids_positive"].passed
    assert [r.name for r in report.errors] == ["no_huge_delays"]
    tolerant = Suite("flights", [c.custom(no_huge_delays, mostly=0.8)])
    assert validate(FLIGHTS.to_arrow(), tolerant).success


def test_custom_check_failures_name_the_check() -> None:
    def broken(df: pl.DataFrame) -> bool:
        raise KeyError("nope")

    def wrong_length(df: pl.DataFrame) -> pl.Series:
        return pl.Series([True, False])

    def text(df: pl.DataFrame) -> str:
        return "yes"

    with pytest.raises(CheckExecutionError, match=r"check 'broken': the function raised KeyError"):
        validate(FLIGHTS, Suite("flights", [broken]))
    with pytest.raises(CheckExecutionError, match=r"2 Boolean values; expected .* \(5 rows"):
        validate(FLIGHTS, Suite("flights", [wrong_length]))
    with pytest.raises(CheckExecutionError, match="check 'text'"):
        validate(FLIGHTS, Suite("flights", [text]))
    with pytest.raises(CheckDefinitionError, match="a lambda needs a name="):
        c.custom(lambda df: True)
    with pytest.raises(CheckDefinitionError, match="needs a function"):
        c.custom("not a function")  # type: ignore[arg-type]


def test_anomaly_checks_judge_against_the_given_history() -> None:
    suite = Suite(
        "flights",
        [
            c.anomaly("row_count"),
            c.anomaly("mean", "delay", severity="error"),
            c.not_null("tailnum", severity="warn", name="tail_present"),
            c.anomaly("check", check="tail_present", min_history=3),
        ],
    )
    learning = validate(FLIGHTS, suite)
    assert all(r.passed for r in learning.results if r.kind == "anomaly")
    assert "learning: 0 of 5" in learning["row_count_anomaly"].message
    history = {
        "row_count_anomaly": [5, 5, 6, 4, 5],
        "delay_mean_anomaly": [6.0, 7.0, 5.0, 6.5, 5.5, 6.2],
        "tail_present_check_anomaly": [1, 0, 1, 2],
    }
    report = validate(FLIGHTS, suite, history=history)
    rows = report["row_count_anomaly"]
    assert rows.passed and rows.observed == 5 and rows.lower is not None and rows.lower < 5
    mean = report["delay_mean_anomaly"]
    assert not mean.passed and mean.observed == pytest.approx(304.2)
    assert "outside the control limits" in mean.message and mean.upper is not None
    assert mean.severity == "error" and not report.success
    assert report["tail_present_check_anomaly"].observed == 1
    assert report["tail_present_check_anomaly"].passed


def test_anomaly_definition_mistakes() -> None:
    with pytest.raises(CheckDefinitionError, match="unknown metric 'median'"):
        c.anomaly("median", "x")
    with pytest.raises(CheckDefinitionError, match="needs a column"):
        c.anomaly("mean")
    with pytest.raises(CheckDefinitionError, match="takes no column"):
        c.anomaly("row_count", "x")
    with pytest.raises(CheckDefinitionError, match="needs check="):
        c.anomaly("check")
    with pytest.raises(CheckDefinitionError, match="min_history 30 is above window 20"):
        c.anomaly("row_count", min_history=30)
    with pytest.raises(CheckDefinitionError, match="k must be > 0"):
        c.anomaly("row_count", k=0)
    with pytest.raises(CheckDefinitionError, match="watches check 'nope'"):
        Suite("s", [c.anomaly("check", check="nope")])
    with pytest.raises(CheckDefinitionError, match="with a numeric observed value"):
        Suite("s", [c.schema({"a": "Int64"}), c.anomaly("check", check="schema")])
    with pytest.raises(CheckDefinitionError, match=r"column 'dly' does not exist \(did you"):
        validate(FLIGHTS, Suite("s", [c.anomaly("mean", "dly")]))
    with pytest.raises(CheckDefinitionError, match="is String, not numeric"):
        validate(FLIGHTS, Suite("s", [c.anomaly("mean", "carrier")]))


def test_schema_drift_against_the_previous_version() -> None:
    previous = [["id", "int64"], ["tailnum", "large_string"], ["gone", "double"]]
    current = FLIGHTS.with_columns(pl.col("id").cast(pl.Float64))
    report = validate(current, Suite("f", [c.schema()]), previous_schema=previous)
    message = report["schema"].message
    assert not report["schema"].passed
    assert "added carrier, delay, parent" in message
    assert "removed gone" in message and "retyped id int64 → double" in message
    # Stored by pandas (string) or polars (large_string): the same columns, no drift.
    same = [["id", "int64"], ["tailnum", "string"], ["carrier", "large_string"]]
    same += [["delay", "double"], ["parent", "int64"]]
    assert validate(FLIGHTS, Suite("f", [c.schema()]), previous_schema=same).success
    relaxed = Suite("f", [c.schema({"id": "Float64"}, allow_drift=True)])
    assert validate(current, relaxed, previous_schema=previous).success
    # Without a previous version there is nothing to drift from.
    assert validate(current, Suite("f", [c.schema()])).success
    with pytest.raises(CheckDefinitionError, match="checks nothing"):
        c.schema(allow_drift=True)

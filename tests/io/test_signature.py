"""Signature enforcement: only casts that keep every value."""

from __future__ import annotations

import polars as pl
import pytest

from headrace.io.signature import ColumnSpec, Signature, SignatureError, enforce, infer_signature


def signature(kind: str, nullable: bool = False) -> Signature:
    return Signature((ColumnSpec("x", kind, nullable),))


@pytest.mark.parametrize(
    ("values", "dtype", "trained"),
    [
        ([1, 2], pl.Int32, "Int64"),  # wider
        ([1, 2], pl.Int64, "Float64"),  # integers as floats
        ([1.5, 2.0], pl.Float32, "Float64"),
        ([1.0, 2.0], pl.Float64, "Int64"),  # whole numbers (JSON clients)
        ([1, 127], pl.Int64, "Int8"),  # JSON's 64-bit integers that fit
        (["a", "b"], pl.String, "Categorical"),
    ],
)
def test_value_preserving_casts_are_done(values: list[object], dtype: object, trained: str) -> None:
    out = enforce(signature(trained), pl.DataFrame({"x": pl.Series(values, dtype=dtype)}))
    assert str(out.schema["x"]) == trained
    assert out["x"].cast(pl.Float64 if trained != "Categorical" else pl.String).to_list() == [
        (float(v) if trained != "Categorical" else v) for v in values
    ]


@pytest.mark.parametrize(
    ("values", "dtype", "trained"),
    [
        ([1.5], pl.Float64, "Int64"),
        ([128], pl.Int64, "Int8"),
        ([-1], pl.Int64, "UInt8"),
        (["1"], pl.String, "Int64"),
        ([1.0], pl.Float64, "Float32"),
        ([True], pl.Boolean, "Int64"),
    ],
)
def test_casts_that_would_change_a_value_are_refused(
    values: list[object], dtype: object, trained: str
) -> None:
    with pytest.raises(SignatureError, match="column 'x' is"):
        enforce(signature(trained), pl.DataFrame({"x": pl.Series(values, dtype=dtype)}))


def test_nulls_and_columns() -> None:
    frame = pl.DataFrame({"x": [1, None, 3], "y": ["a", "b", None]})
    inferred = infer_signature(frame, ["y", "x"])
    assert [(c.name, c.type, c.nullable) for c in inferred.inputs] == [
        ("y", "String", True),
        ("x", "Int64", True),
    ]
    with pytest.raises(SignatureError, match=r"'x' has 1 null value\(s\) \(the first at row 1\)"):
        enforce(signature("Int64"), frame)
    with pytest.raises(SignatureError, match="column 'z' is missing"):
        enforce(Signature((ColumnSpec("z", "Int64", False),)), frame)
    with pytest.raises(SignatureError, match="does not have"):
        infer_signature(frame, ["nope"])

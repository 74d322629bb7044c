"""Model input signatures: inferred from the training frame, enforced on every predict.

A signature lists the columns a model reads, in order, with their types (polars type
names) and whether nulls were seen in training. Enforcing it selects those columns,
casts safely where the type differs but the values cannot change (a narrower integer
to a wider one or to a float, float32 to float64, text to categorical and back), and
refuses anything else with an error naming the column.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from headrace.errors import HeadraceError


class SignatureError(HeadraceError):
    """Input that does not fit a model's signature: names the column and the problem."""

    def __init__(self, message: str, *, column: str | None = None) -> None:
        super().__init__(message)
        self.column = column


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    type: str
    nullable: bool


@dataclass(frozen=True)
class Signature:
    inputs: tuple[ColumnSpec, ...]
    output: str | None = None  # e.g. "Int64" or "Float64[2]" (values per row)

    @property
    def columns(self) -> list[str]:
        return [c.name for c in self.inputs]

    @functools.cached_property
    def dtypes(self) -> list[Any]:
        """The polars type of each column (None where the name is not a simple type)."""
        return [_dtype(c.type) for c in self.inputs]

    @functools.cached_property
    def required(self) -> list[str]:
        """Columns trained without nulls."""
        return [c.name for c in self.inputs if not c.nullable]

    def to_dict(self) -> dict[str, Any]:
        return {
            "inputs": [
                {"name": c.name, "type": c.type, "nullable": c.nullable} for c in self.inputs
            ],
            "output": self.output,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Signature:
        return cls(
            inputs=tuple(
                ColumnSpec(str(c["name"]), str(c["type"]), bool(c["nullable"]))
                for c in data["inputs"]
            ),
            output=data.get("output"),
        )


def _polars(data: Any) -> Any:
    import polars as pl

    from headrace.io.frames import table_flavor

    flavor = table_flavor(data)
    if flavor == "polars":
        return data.collect() if isinstance(data, pl.LazyFrame) else data
    if flavor == "pandas":
        return pl.from_pandas(data)
    if flavor == "arrow":
        return pl.from_arrow(data)
    raise SignatureError(
        f"expected a pandas, polars or Arrow table, got {type(data).__module__}."
        f"{type(data).__name__}"
    )


def feature_names(model: Any) -> list[str] | None:
    """The columns a fitted model was trained on, when it remembers them."""
    for attribute in ("feature_names_in_", "feature_name_"):
        names = getattr(model, attribute, None)
        if names is not None:
            return [str(n) for n in list(names)]
    steps = getattr(model, "steps", None)  # a Pipeline: its first step saw the frame
    if steps:
        return feature_names(steps[0][1])
    return None


def infer_signature(frame: Any, columns: Sequence[str] | None = None) -> Signature:
    """The signature of ``frame`` (restricted to ``columns``, in that order)."""
    table = _polars(frame)
    chosen = list(columns) if columns is not None else list(table.columns)
    missing = [c for c in chosen if c not in table.columns]
    if missing:
        raise SignatureError(
            f"the model reads column {missing[0]!r}, which the training frame does not have",
            column=missing[0],
        )
    nulls = table.select(chosen).null_count().row(0) if chosen else ()
    return Signature(
        inputs=tuple(
            ColumnSpec(name, str(table.schema[name]), bool(count))
            for name, count in zip(chosen, nulls, strict=True)
        )
    )


def output_type(values: Any) -> str:
    """A prediction's type for the signature: element type, and values per row if > 1."""
    import numpy as np

    array = np.asarray(values)
    kind = {"i": "Int64", "u": "UInt64", "f": "Float64", "b": "Boolean"}.get(
        array.dtype.kind, "String" if array.dtype.kind in "OUS" else str(array.dtype)
    )
    return kind if array.ndim <= 1 else f"{kind}[{array.shape[1]}]"


def _safe(source: Any, target: Any) -> bool:
    import polars as pl

    if source == target or source == pl.Null:
        return True
    if source.is_integer() and (target.is_float() or target.is_integer()):
        if target.is_float():
            return True
        signed = target.is_signed_integer()
        if source.is_signed_integer() and not signed:
            return False
        width = {
            pl.Int8: 8,
            pl.Int16: 16,
            pl.Int32: 32,
            pl.Int64: 64,
            pl.UInt8: 8,
            pl.UInt16: 16,
            pl.UInt32: 32,
            pl.UInt64: 64,
        }
        grow = 0 if source.is_signed_integer() == signed else 1
        return width.get(source, 64) + grow <= width.get(target, 64)
    if source.is_float() and target.is_float():
        return bool(source == pl.Float32 and target == pl.Float64)
    text = (pl.String, pl.Categorical)
    return any(source == t for t in text) and any(target == t for t in text)


def _whole_numbers(column: Any, target: Any) -> bool:
    """Numbers that all fit ``target`` exactly (``1500.0`` for an integer column, or
    JSON's 64-bit integers for an Int8 column): casting them changes no value."""
    import polars as pl

    values = column.drop_nulls()
    if values.is_empty():
        return True
    finite = values.is_finite().all()
    whole = (values == values.round(0)).all()
    if not (finite and whole):
        return False
    converted = values.cast(target, strict=False)
    return bool(converted.null_count() == 0 and (converted.cast(pl.Float64) == values).all())


def _dtype(name: str) -> Any:
    import polars as pl

    simple = {
        "Int8": pl.Int8,
        "Int16": pl.Int16,
        "Int32": pl.Int32,
        "Int64": pl.Int64,
        "UInt8": pl.UInt8,
        "UInt16": pl.UInt16,
        "UInt32": pl.UInt32,
        "UInt64": pl.UInt64,
        "Float32": pl.Float32,
        "Float64": pl.Float64,
        "Boolean": pl.Boolean,
        "String": pl.String,
        "Utf8": pl.String,
        "Categorical": pl.Categorical,
        "Date": pl.Date,
        "Null": pl.Null,
    }
    return simple.get(name)


def enforce(signature: Signature, data: Any) -> Any:
    """``data`` as a polars frame holding exactly the signature's columns, in order,
    safely cast; anything that does not fit is refused with the column named."""
    import polars as pl

    table = _polars(data)
    present = set(table.columns)
    missing = [c.name for c in signature.inputs if c.name not in present]
    if missing:
        from headrace.core.graph import suggest

        raise SignatureError(
            f"column {missing[0]!r} is missing{suggest(missing[0], table.columns)}; the model "
            f"reads {', '.join(signature.columns)}",
            column=missing[0],
        )
    names = signature.columns
    in_order = table.columns == names
    schema = None if in_order else table.schema
    have_types = table.dtypes if in_order else [schema[n] for n in names]  # type: ignore[index]
    # simple types are compared by class (fast: no equality dispatch per column)
    if all(type(h) is w for h, w in zip(have_types, signature.dtypes, strict=True)):
        # the usual case: every column already has the trained type
        selected = table if in_order else table.select(names)
        if signature.required:
            nulls = dict(zip(selected.columns, selected.null_count().row(0), strict=True))
            flagged = [n for n in signature.required if nulls[n]]
            if flagged:
                bad = flagged[0]
                first = int(selected.get_column(bad).is_null().arg_true()[0])
                raise SignatureError(
                    f"column {bad!r} has {selected.get_column(bad).null_count():,} null "
                    f"value(s) (the first at row {first}); the model was trained without "
                    "nulls there",
                    column=bad,
                )
        return selected
    schema = table.schema
    exprs = []
    casts = False
    for spec in signature.inputs:
        have = schema[spec.name]
        want = _dtype(spec.type)
        column = pl.col(spec.name)
        if str(have) != spec.type:
            casts = True
            whole = (
                want is not None
                and (have.is_float() or have.is_integer())
                and want.is_integer()
                and _whole_numbers(table[spec.name], want)
            )
            if want is None or not (_safe(have, want) or whole):
                raise SignatureError(
                    f"column {spec.name!r} is {have}, but the model was trained on "
                    f"{spec.type}; cast it first (only casts that cannot change a value, "
                    "such as Int32 to Int64, Float32 to Float64, or numbers that fit the "
                    "narrower integer type exactly, are done for you)",
                    column=spec.name,
                )
            column = column.cast(want)
        exprs.append(column)
        if not spec.nullable:
            nulls = table.get_column(spec.name).null_count()
            if nulls:
                first = int(table[spec.name].is_null().arg_true()[0])
                raise SignatureError(
                    f"column {spec.name!r} has {nulls:,} null value(s) (the first at row "
                    f"{first}); the model was trained without nulls there",
                    column=spec.name,
                )
    if not casts:  # the usual case: the columns, in order, as they are
        return table.select(signature.columns)
    return table.select(exprs)


def _head(frame: Any, n: int) -> Any:
    head = getattr(frame, "head", None)
    if callable(head):
        return head(n)
    return frame.slice(0, n)


def _reads_names(model: Any) -> bool:
    """Whether the model selects columns by name (a ColumnTransformer somewhere), so it
    needs a pandas frame rather than an array in the signature's order."""
    if type(model).__name__ == "ColumnTransformer":
        return True
    steps = getattr(model, "steps", None) or []
    return any(_reads_names(step) for _, step in steps)


def model_input(model: Any, table: Any) -> Any:
    """What a model's predict takes: an array in the signature's column order (fast,
    and what a model fitted on those columns expects), or a pandas frame for models
    that select columns by name or hold text columns."""
    from headrace.io.models import Booster

    if isinstance(model, Booster):
        return table.to_numpy()
    module = type(model).__module__
    named = feature_names(model) is not None or module.startswith("sklearn")
    if not named:
        return table.to_numpy()
    numeric = all(dtype.is_numeric() for dtype in table.schema.values())
    if numeric and not _reads_names(model):
        return _Unnamed(table.to_numpy())
    return table.to_pandas()


def input_maker(model: Any, table: Any) -> Any:
    """:func:`model_input` decided once for a model and a table's column types: a
    function from table to model input (the server's fast path)."""
    sample = model_input(model, table.head(0))
    if isinstance(sample, _Unnamed):
        return lambda t: _Unnamed(t.to_numpy())
    if type(sample).__module__.startswith("pandas"):
        return lambda t: t.to_pandas()
    return lambda t: t.to_numpy()


def float_matrix_maker(model: Any, signature: Signature) -> Any:
    """How a float64 matrix in the signature's column order reaches ``model``, when
    every column of the signature is ``Float64`` and the model takes an array: a
    function from matrix to model input; None when the model needs a frame or a column
    is of another type (the server's numeric fast path)."""
    import polars as pl

    if not signature.inputs or any(c.type != "Float64" for c in signature.inputs):
        return None
    empty = pl.DataFrame(schema={c.name: pl.Float64 for c in signature.inputs})
    sample = model_input(model, empty)
    if isinstance(sample, _Unnamed):
        return _Unnamed
    if type(sample).__module__.startswith("numpy"):
        return lambda array: array
    return None


class _Unnamed:
    """An array for a model fitted on named columns, in their order (marker type)."""

    __slots__ = ("array",)

    def __init__(self, array: Any) -> None:
        self.array = array


def call_predict(method: Any, inputs: Any) -> Any:
    """Call ``predict`` (or ``predict_proba``) on what :func:`model_input` made."""
    if isinstance(inputs, _Unnamed):
        import warnings

        with warnings.catch_warnings():
            # fitted on names, given the same columns in the same order as an array
            warnings.filterwarnings("ignore", message="X does not have valid feature names")
            return method(inputs.array)
    return method(inputs)


def signature_for(model: Any, frame: Any) -> Signature:
    """The input signature from the training frame (the columns the model was fitted on,
    when it remembers them) and the type of its predictions on a few rows."""
    signature = infer_signature(frame, feature_names(model))
    try:
        sample = enforce(signature, _head(frame, 5))
        predicted = call_predict(model.predict, model_input(model, sample))
        return Signature(inputs=signature.inputs, output=output_type(predicted))
    except Exception:  # the signature of the inputs stands without an output type
        return signature

"""Request bodies in the formats ``mlflow models serve`` accepts, read into a table.

JSON (``application/json``) holds exactly one of:

- ``dataframe_split``: ``{"columns": [...], "data": [[...], ...]}`` (``index`` ignored);
- ``dataframe_records``: ``[{"col": value, ...}, ...]``;
- ``instances`` or ``inputs``: a list of records, a mapping of columns to lists, or a
  list of rows in the signature's column order.

CSV (``text/csv``) has a header row. Anything else is a 415; a body that does not parse
or does not fit is a 400 naming the field. Bodies larger than the limit are a 413.

JSON is read by orjson, which refuses nesting past 1,024 levels cleanly (Python's
parser recurses until it fails), and a value nested deeper than :data:`MAX_DEPTH` levels
is refused before anything recurses on it (a request needs four: an object, its rows, a
row, a value; tensors a few more); ``NaN``, ``Infinity`` and
numbers beyond a float's range, which orjson refuses too, are read by Python's parser
so that the answer can name the column holding one: a JSON number must be finite, in
CSV as in JSON, and a value that is missing is sent as null (or left empty in CSV).
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from typing import Any, NamedTuple

from headrace.errors import HeadraceError
from headrace.io.jsonnesting import shallow

KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")
#: JSON nested deeper is refused (polars, numpy and repr() recurse on nested values).
MAX_DEPTH = 32


class ScoringInputError(HeadraceError):
    """A request that cannot be scored: carries the HTTP status and the field at fault."""

    def __init__(self, message: str, *, status: int = 400, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.field = field


def _rows_to_frame(columns: Sequence[str], rows: Sequence[Any], field: str) -> Any:
    import polars as pl

    width = len(columns)
    for index, row in enumerate(rows):
        if not isinstance(row, list | tuple) or len(row) != width:
            raise ScoringInputError(
                f"{field}[{index}] must be a list of {width} values (one per column)",
                field=f"{field}[{index}]",
            )
    try:
        return pl.DataFrame(
            [list(r) for r in rows], schema=list(columns), orient="row", infer_schema_length=None
        )
    except Exception as exc:
        raise ScoringInputError(
            f"{field}: the values cannot form a table: {exc}", field=field
        ) from exc


def _records(records: Any, field: str) -> Any:
    import polars as pl

    if not isinstance(records, list) or not records:
        raise ScoringInputError(f"{field} must be a non-empty list of records", field=field)
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise ScoringInputError(
                f"{field}[{index}] must be an object of column: value", field=f"{field}[{index}]"
            )
    try:
        return pl.DataFrame(records, infer_schema_length=None)
    except Exception as exc:
        raise ScoringInputError(
            f"{field}: the records cannot form a table: {exc}", field=field
        ) from exc


def _columns(mapping: dict[str, Any], field: str) -> Any:
    import polars as pl

    lengths = {k: len(v) if isinstance(v, list) else -1 for k, v in mapping.items()}
    if not mapping or any(n < 0 for n in lengths.values()) or len(set(lengths.values())) != 1:
        raise ScoringInputError(
            f"{field} as an object must map each column to a list of values, all of the same "
            "length",
            field=field,
        )
    try:
        return pl.DataFrame(mapping)
    except Exception as exc:
        raise ScoringInputError(
            f"{field}: the columns cannot form a table: {exc}", field=field
        ) from exc


def _too_deep() -> ScoringInputError:
    return ScoringInputError(
        f"the JSON body is nested more than {MAX_DEPTH} levels deep; a scoring request "
        "needs four (an object, its rows, a row, a value)",
        field="body",
    )


class Json(NamedTuple):
    """A body's JSON value; ``finite``: orjson read it, so it holds no NaN or infinity
    (the table needs no check for them)."""

    value: Any
    finite: bool


def read_json(body: bytes) -> Json:
    """The body's JSON value; a body that is not JSON, or nested too deep, is a 400."""
    import orjson

    finite = True
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        finite = False
        refused = str(exc)
        if "depth" in refused or "recursion" in refused:
            raise _too_deep() from exc
        # NaN, Infinity or a number beyond a float's range (which Python's json and
        # pandas write) parse here, so that the check of the table can name the column
        try:
            data = json.loads(body)
        except RecursionError as deep:
            raise _too_deep() from deep
        except (ValueError, UnicodeDecodeError) as bad:
            raise ScoringInputError(f"the body is not valid JSON: {bad}", field="body") from bad
    # counting brackets is cheap; only a body with many of them is walked
    nested = type(data) is list or type(data) is dict
    if nested and body.count(b"[") + body.count(b"{") > MAX_DEPTH and not shallow(data, MAX_DEPTH):
        raise _too_deep()
    return Json(data, finite)


def parse_json(body: bytes | Json, columns: Sequence[str] | None) -> Any:
    """A polars DataFrame from an MLflow-style JSON body, or its value already read by
    :func:`read_json` (``columns``: the signature's, for bare rows); NaN and infinities
    are refused, naming the column."""
    parsed = body if isinstance(body, Json) else read_json(body)
    table = _json_table(parsed.value, columns)
    return table if parsed.finite else finite(table)


def _json_table(data: Any, columns: Sequence[str] | None) -> Any:
    if not isinstance(data, dict):
        raise ScoringInputError(
            f"the JSON body must be an object with exactly one of {', '.join(KEYS)}", field="body"
        )
    given = [k for k in KEYS if k in data]
    if len(given) != 1:
        unknown = sorted(set(data) - {"params"})
        found = f"found {', '.join(given) or ', '.join(unknown) or 'nothing'}"
        raise ScoringInputError(
            f"the JSON body must hold exactly one of {', '.join(KEYS)}; {found}", field="body"
        )
    field = given[0]
    value = data[field]
    if field == "dataframe_split":
        if not isinstance(value, dict) or "data" not in value:
            raise ScoringInputError(
                "dataframe_split must be an object with 'columns' and 'data'", field=field
            )
        names = value.get("columns") if value.get("columns") is not None else columns
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ScoringInputError(
                "dataframe_split.columns must be a list of column names",
                field="dataframe_split.columns",
            )
        rows = value["data"]
        if not isinstance(rows, list) or not rows:
            raise ScoringInputError(
                "dataframe_split.data must be a non-empty list of rows",
                field="dataframe_split.data",
            )
        return _rows_to_frame(names, rows, "dataframe_split.data")
    if field == "dataframe_records":
        return _records(value, field)
    if isinstance(value, dict):
        return _columns(value, field)
    if isinstance(value, list) and value and isinstance(value[0], dict):
        return _records(value, field)
    if isinstance(value, list) and value and isinstance(value[0], list | tuple):
        if not columns:
            raise ScoringInputError(
                f"{field} as rows needs the model's signature to name the columns; send "
                "records or dataframe_split instead",
                field=field,
            )
        return _rows_to_frame(columns, value, field)
    raise ScoringInputError(
        f"{field} must be a non-empty list of records, a list of rows, or an object of columns",
        field=field,
    )


def parse_csv(body: bytes) -> Any:
    import polars as pl

    if not body.strip():
        raise ScoringInputError("the CSV body is empty", field="body")
    try:
        return pl.read_csv(io.BytesIO(body), infer_schema_length=None)
    except Exception as exc:
        raise ScoringInputError(f"the CSV body cannot be read: {exc}", field="body") from exc


def finite(table: Any) -> Any:
    """``table`` when every float in it is finite; else a 400 naming the first column
    holding NaN or an infinity, and its row."""
    import polars as pl

    floats = [name for name, kind in table.schema.items() if kind.is_float()]
    if not floats:
        return table
    flagged = table.select(pl.col(floats).is_finite().not_().any()).row(0)
    for name, bad in zip(floats, flagged, strict=True):
        if bad:
            column = table.get_column(name)
            row = int(column.is_finite().not_().arg_true()[0])
            value = column[row]
            said = "NaN" if value != value else "an infinity (Infinity, or a number too large)"
            raise ScoringInputError(
                f"column {name!r} holds {said} at row {row}; numbers must be finite: send "
                "null for a missing value",
                field=name,
            )
    return table


def parse(
    body: bytes,
    content_type: str | None,
    columns: Sequence[str] | None,
    parsed: Json | None = None,
) -> Any:
    """The request's table, by content type (parameters such as charset ignored);
    ``parsed``: a JSON body already read by :func:`read_json`."""
    kind = (content_type or "").split(";")[0].strip().lower()
    if kind == "application/json":
        if parsed is not None:
            return parse_json(parsed, columns)
        if not body.strip():
            raise ScoringInputError("the request body is empty", field="body")
        return parse_json(body, columns)
    if kind == "text/csv":
        return finite(parse_csv(body))
    raise ScoringInputError(
        f"content type {content_type or '(none)'!r} is not supported; use application/json "
        "or text/csv",
        status=415,
        field="content-type",
    )


def jsonable(values: Any) -> list[Any]:
    """Predictions as JSON values (numpy scalars and arrays made plain)."""
    tolist = getattr(values, "tolist", None)
    out = tolist() if callable(tolist) else list(values)
    return list(out)

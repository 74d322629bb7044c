"""The check engine: a whole suite in ONE aggregate pass on Polars.

Every check becomes one or two aggregate expressions of a single ``select``; only the
row-level checks that failed get a second, early-stopping pass to collect samples of
failing rows. Column names, types, regular expressions and SQL expressions are checked
against the frame's schema before any data is read.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

from headrace.core.checks import (
    STATISTICS,
    Check,
    CheckDefinitionError,
    CheckExecutionError,
    Outcome,
    Suite,
)
from headrace.core.graph import suggest
from headrace.quality import spc
from headrace.quality.results import CheckResult, ValidationReport

#: Check kinds that may read any column (so the whole table is converted).
_READ_ALL = frozenset({"expression", "sql", "custom"})


def to_polars(data: Any, columns: list[str] | None = None) -> Any:
    """A polars DataFrame or LazyFrame for pandas, polars or Arrow input.

    ``columns`` limits the conversion to what the checks read: converting a pandas frame
    copies it, so columns no check needs are never copied.
    """
    import polars as pl

    from headrace.io.frames import table_flavor

    flavor = table_flavor(data)
    if flavor == "polars":
        return data if columns is None else data.select(columns)
    if flavor == "pandas":
        return pl.from_pandas(data if columns is None else data[columns])
    if flavor == "arrow":
        return pl.from_arrow(data if columns is None else data.select(columns))
    raise TypeError(f"validate() needs a pandas, polars or Arrow table, got {type(data).__name__}")


def _schema_of(data: Any) -> dict[str, Any]:
    """The polars schema of the input, from zero rows (no data converted)."""
    import polars as pl

    from headrace.io.frames import table_flavor

    flavor = table_flavor(data)
    if flavor == "polars":
        return dict(data.collect_schema())
    if flavor == "pandas":
        return dict(pl.from_pandas(data.head(0)).schema)
    if flavor == "arrow":
        return dict(pl.from_arrow(data.slice(0, 0)).schema)  # type: ignore[union-attr]
    raise TypeError(f"validate() needs a pandas, polars or Arrow table, got {type(data).__name__}")


def _needed(suite: Suite, schema: dict[str, Any]) -> list[str] | None:
    """The columns the suite reads (None: all, when a SQL expression may read any)."""
    if any(check.kind in _READ_ALL for check in suite.checks):
        return None
    wanted = {column for check in suite.checks for column in check.columns}
    wanted |= {
        check.reference_column or ""
        for check in suite.checks
        if check.reference == suite.name and check.reference
    }
    if not wanted:  # row counts only: one column keeps the height
        return list(schema)[:1] or None
    return [column for column in schema if column in wanted]


def _first_positions(lazy: Any, mask: Any, size: int, *, duplicates: bool) -> list[int]:
    """Positions of the first ``size`` failing rows, searched in growing slices so that
    failures near the top cost a sliver of the table, not a second full scan."""
    frame = lazy.collect() if type(lazy).__name__ == "LazyFrame" else lazy
    if duplicates:  # whether a row is a duplicate depends on the whole column
        found = frame.with_row_index("__row").filter(mask).head(size)
        return list(found["__row"].to_list())
    total = frame.height
    positions: list[int] = []
    offset, window = 0, 65_536
    while offset < total and len(positions) < size:
        part = frame.slice(offset, window).with_row_index("__row", offset=offset)
        positions.extend(part.filter(mask).head(size - len(positions))["__row"].to_list())
        offset += window
        window *= 4
    return positions


def _rows_at(data: Any, positions: list[int]) -> list[dict[str, Any]]:
    """Whole rows of the original input at ``positions`` (for failing-row samples)."""
    from headrace.io.frames import table_flavor

    flavor = table_flavor(data)
    if flavor == "pandas":
        return list(data.iloc[positions].to_dict("records"))
    if flavor == "arrow":
        return list(data.take(positions).to_pylist())
    if type(data).__name__ == "LazyFrame":
        return list(data.collect()[positions].to_dicts())
    return list(data[positions].to_dicts())


def _fail(suite: Suite, check: Check, problem: str) -> CheckDefinitionError:
    return CheckDefinitionError(
        f"suite {suite.name!r}, check {check.name!r}: {problem}", suite=suite.name, check=check.name
    )


def _compile_check(suite: Suite, check: Check, schema: dict[str, Any]) -> None:
    """Refuse, before reading data, what cannot work on this frame's schema."""
    import polars as pl

    for column in check.columns:
        if column not in schema:
            raise _fail(
                suite,
                check,
                f"column {column!r} does not exist{suggest(column, schema)}; the table has "
                f"{', '.join(list(schema)[:15])}",
            )
    dtype = schema.get(check.column) if check.column else None
    numeric = check.kind in ("between", "mean", "stddev", "quantile") or (
        check.kind == "anomaly" and check.metric in ("mean", "stddev", "min", "max")
    )
    if numeric and dtype is not None and not (dtype.is_numeric() or dtype.is_temporal()):
        raise _fail(suite, check, f"column {check.column!r} is {dtype}, not numeric")
    if check.kind == "matches":
        if dtype is not None and dtype not in (pl.String, pl.Categorical):
            raise _fail(suite, check, f"column {check.column!r} is {dtype}, not text")
        try:
            pl.Series([""], dtype=pl.String).str.contains(check.pattern or "")
        except Exception as exc:
            raise _fail(
                suite, check, f"the regular expression {check.pattern!r} is not supported: {exc}"
            ) from exc
    if check.kind == "freshness" and dtype is not None and not dtype.is_temporal():
        raise _fail(suite, check, f"column {check.column!r} is {dtype}, not a date or time")
    if check.kind == "expression":
        try:
            pl.DataFrame(schema=schema).select(pl.sql_expr(check.expression or ""))
        except Exception as exc:
            raise _fail(suite, check, f"the SQL expression cannot be used: {exc}") from exc
    if check.kind == "sql":
        try:
            _run_sql(pl.DataFrame(schema=schema), check.expression or "", 0)
        except Exception as exc:
            raise _fail(suite, check, f"the SQL query cannot run: {exc}") from exc


def _reference_values(
    suite: Suite, check: Check, schema: dict[str, Any], data: Any, given: Mapping[str, Any]
) -> Any:
    """The distinct values of the referenced column, typed like the checked column; a
    missing table or column, or values of another kind, are refused before reading."""
    import polars as pl

    asset, column = check.reference or "", check.reference_column or ""
    if asset in given:
        table = given[asset]
    elif asset == suite.name:  # a column referencing another of the same table
        table = data
    else:
        raise _fail(
            suite,
            check,
            f"it references asset {asset!r}, whose table was not given "
            f"(pass references={{{asset!r}: table}})",
        )
    if isinstance(table, pl.Series):
        values = table
    else:
        their = _schema_of(table)
        if column not in their:
            raise _fail(
                suite,
                check,
                f"the referenced asset {asset!r} has no column {column!r}"
                f"{suggest(column, their)}; it has {', '.join(list(their)[:15])}",
            )
        values = to_polars(table, [column]).lazy().select(pl.col(column)).collect()[column]
    wanted = schema[check.column or ""]
    if values.dtype != wanted:
        try:
            if _family(values.dtype) != _family(wanted):
                raise TypeError(f"{values.dtype} is not {wanted}")
            values = values.cast(wanted, strict=True)
        except Exception as exc:
            raise _fail(
                suite,
                check,
                f"{asset}.{column} holds {values.dtype} values, which cannot be compared "
                f"with column {check.column!r} ({wanted})",
            ) from exc
    return values.drop_nulls().unique()


def _family(dtype: Any) -> str:
    """The kind of values a type holds: values of two kinds are never compared."""
    import polars as pl

    if dtype.is_numeric():
        return "number"
    if dtype.is_temporal():
        return "time"
    if dtype in (pl.String, pl.Categorical, pl.Enum) or isinstance(dtype, pl.Categorical | pl.Enum):
        return "text"
    return str(dtype.base_type())


def _failing_mask(check: Check, references: Mapping[str, Any] | None = None) -> Any:
    """A row-level check's failing rows (nulls pass every check but not_null)."""
    import polars as pl

    column: Any = pl.col(check.column or "")
    if check.kind == "references":
        return (~column.is_in((references or {})[check.name].implode())).fill_null(False)
    if check.kind == "not_null":
        return column.is_null()
    if check.kind == "between":
        low_ok, high_ok = check.inclusive
        too_low: Any = pl.lit(False)
        too_high: Any = pl.lit(False)
        if check.min is not None:
            too_low = column < check.min if low_ok else column <= check.min
        if check.max is not None:
            too_high = column > check.max if high_ok else column >= check.max
        return (too_low | too_high).fill_null(False)
    if check.kind == "in_set":
        return (~column.is_in(list(check.values))).fill_null(False)
    if check.kind == "matches":
        return (~column.str.contains(check.pattern or "")).fill_null(False)
    if check.kind == "expression":
        return (~pl.sql_expr(check.expression or "")).fill_null(True)
    raise AssertionError(check.kind)


#: One expression per column statistic: what statistic checks bound and anomaly
#: checks watch.
_STATISTICS: dict[str, Any] = {
    "mean": lambda column, check: column.mean(),
    "stddev": lambda column, check: column.std(),
    "quantile": lambda column, check: column.quantile(check.quantile or 0.5),
    "null_fraction": lambda column, check: column.null_count() / column.len(),
    "distinct_count": lambda column, check: column.n_unique(),
    "min": lambda column, check: column.min(),
    "max": lambda column, check: column.max(),
}


def _aggregates(check: Check, index: int, references: Mapping[str, Any]) -> list[Any]:
    import polars as pl

    key = f"c{index}"
    column: Any = pl.col(check.column or "")
    if check.kind == "unique":
        together = pl.struct(list(check.columns)) if len(check.columns) > 1 else column
        return [(pl.len() - together.n_unique()).alias(key)]
    if check.row_level:
        return [_failing_mask(check, references).sum().alias(key)]
    statistic = check.metric if check.kind == "anomaly" else check.kind
    if statistic in _STATISTICS:
        return [_STATISTICS[statistic](column, check).alias(key)]
    if check.kind == "freshness":
        return [column.max().alias(key)]
    return []  # row_count uses the shared row count; schema needs no data


def _run_sql(frame: Any, query: str, sample: int) -> tuple[int, list[dict[str, Any]]]:
    """Run a failure query with DuckDB over the frame (as ``data``): count and samples."""
    import duckdb

    with duckdb.connect() as con:
        con.register("data", frame.to_arrow())
        count = con.execute(f"SELECT count(*) FROM ({query}) AS failures").fetchone()
        rows: list[dict[str, Any]] = []
        if sample > 0 and count and count[0]:
            found = con.execute(f"SELECT * FROM ({query}) AS failures LIMIT {int(sample)}")
            names = [d[0] for d in found.description]
            rows = [dict(zip(names, row, strict=True)) for row in found.fetchall()]
    return int(count[0]) if count else 0, rows


def _within(value: Any, check: Check) -> bool:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    low_ok, high_ok = check.inclusive
    if check.min is not None and (value < check.min if low_ok else value <= check.min):
        return False
    return not (check.max is not None and (value > check.max if high_ok else value >= check.max))


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    return str(value)


def _normal_type(name: str) -> str:
    """An Arrow type name without the storage details that are not drift
    (large_string and string hold the same values)."""
    text = str(name).lower().replace("large_", "").replace("_view", "")
    return "dictionary" if text.startswith("dictionary") else text


def _arrow_types(schema: dict[str, Any]) -> dict[str, str]:
    import polars as pl

    table = pl.DataFrame(schema=schema).to_arrow()
    return {field.name: _normal_type(str(field.type)) for field in table.schema}


def _drift(previous: Mapping[str, str] | Sequence[Sequence[str]], schema: dict[str, Any]) -> str:
    """What changed in the columns since the previous version, in words ("" if nothing)."""
    pairs = previous.items() if isinstance(previous, Mapping) else previous
    before = {str(name): _normal_type(str(kind)) for name, kind in pairs}
    now = _arrow_types(schema)
    added = [c for c in now if c not in before]
    removed = [c for c in before if c not in now]
    retyped = [f"{c} {before[c]} → {now[c]}" for c in now if c in before and before[c] != now[c]]
    parts = []
    if added:
        parts.append("added " + ", ".join(added))
    if removed:
        parts.append("removed " + ", ".join(removed))
    if retyped:
        parts.append("retyped " + ", ".join(retyped))
    return "; ".join(parts)


def _schema_result(
    check: Check,
    schema: dict[str, Any],
    previous: Mapping[str, str] | Sequence[Sequence[str]] | None = None,
) -> tuple[bool, str, str]:
    problems: list[str] = []
    for column, wanted in check.types:
        actual = schema.get(column)
        if actual is None:
            problems.append(f"{column} is missing")
        elif str(actual).lower() != wanted.lower():
            problems.append(f"{column} is {actual}, expected {wanted}")
    if not check.allow_extra:
        expected = {c for c, _ in check.types}
        problems.extend(f"{c} is not expected" for c in schema if c not in expected)
    if previous is not None and not check.allow_drift:
        drift = _drift(previous, schema)
        if drift:
            problems.append(f"schema drift since the previous version: {drift}")
    observed = ", ".join(f"{c}: {t}" for c, t in schema.items())
    return not problems, observed, "; ".join(problems)


def validate(
    data: Any,
    suite: Suite,
    *,
    sample: int = 5,
    references: Mapping[str, Any] | None = None,
    history: Mapping[str, Sequence[float]] | None = None,
    previous_schema: Mapping[str, str] | Sequence[Sequence[str]] | None = None,
) -> ValidationReport:
    """Run ``suite`` on a pandas, polars or Arrow table; one pass, plus samples of failures.

    Args:
        references: asset name → its table (or a polars Series of allowed values), for
            ``references`` checks.
        history: anomaly check name → its metric's previous values, oldest first.
        previous_schema: the previous version's columns and Arrow types, against which
            ``schema`` checks report drift.

    Raises:
        CheckDefinitionError: a check names a missing column, a wrong type, or a regex,
            expression or reference that cannot work, before any data is read.
        CheckExecutionError: a custom check function raised or returned no verdict.
    """
    import polars as pl

    started = time.perf_counter()
    schema = _schema_of(data)
    for check in suite.checks:
        _compile_check(suite, check, schema)
    allowed = {
        check.name: _reference_values(suite, check, schema, data, references or {})
        for check in suite.checks
        if check.kind == "references"
    }
    frame = to_polars(data, _needed(suite, schema))
    lazy = frame.lazy() if isinstance(frame, pl.DataFrame) else frame
    exprs = [pl.len().alias("__rows")]
    for i, check in enumerate(suite.checks):
        exprs.extend(_aggregates(check, i, allowed))
    # An in-memory frame is aggregated eagerly: measured faster and leaner than the lazy
    # engine for one wide select; a LazyFrame input stays lazy.
    aggregated = (
        frame.select(exprs) if isinstance(frame, pl.DataFrame) else lazy.select(exprs).collect()
    )
    row = aggregated.row(0, named=True)
    rows = int(row["__rows"])
    collected = frame if isinstance(frame, pl.DataFrame) else None

    def whole() -> Any:
        nonlocal collected
        if collected is None:
            collected = lazy.collect()
        return collected

    results: dict[str, CheckResult] = {}
    masks: dict[str, Any] = {}  # custom row-level checks: their failing rows
    for i, check in enumerate(suite.checks):
        if check.kind == "anomaly":
            continue  # judged below, once the values they watch are known
        observed = row.get(f"c{i}")
        fields: dict[str, Any] = {}
        if check.kind == "sql":
            failing, found = _run_sql(whole(), check.expression or "", sample)
            fields = _row_level_fields(check, failing, rows, "the query returned")
            fields["sample"] = [{k: _jsonable(v) for k, v in r.items()} for r in found]
        elif check.kind == "custom":
            fields, mask = _run_custom(suite, check, data, whole, rows)
            if mask is not None:
                masks[check.name] = mask
        elif check.row_level:
            fields = _row_level_fields(check, int(observed or 0), rows, "")
        elif check.kind == "row_count":
            fields = {"passed": _within(rows, check), "observed": rows}
        elif check.kind in STATISTICS:
            fields = {"passed": _within(observed, check), "observed": observed}
        elif check.kind == "freshness":
            fields = _freshness_fields(check, observed)
        elif check.kind == "schema":
            passed, shown, message = _schema_result(check, schema, previous_schema)
            fields = {"passed": passed, "observed": shown, "message": message}
        else:
            raise AssertionError(check.kind)
        results[check.name] = _result(check, **fields)
    for i, check in enumerate(suite.checks):
        if check.kind == "anomaly":
            if check.metric == "row_count":
                value: Any = rows
            elif check.metric == "check":
                value = results[check.of_check or ""].observed
            else:
                value = row.get(f"c{i}")
            results[check.name] = _anomaly_result(
                suite, check, value, (history or {}).get(check.name, ())
            )
    ordered = [results[check.name] for check in suite.checks]
    ordered = _with_samples(data, whole, suite, ordered, sample, allowed, masks)
    return ValidationReport(
        suite=suite.name, rows=rows, seconds=time.perf_counter() - started, results=ordered
    )


def _result(
    check: Check,
    *,
    passed: bool,
    observed: Any,
    message: str = "",
    failing_rows: int | None = None,
    failing_fraction: float | None = None,
    sample: list[dict[str, Any]] | None = None,
    lower: float | None = None,
    upper: float | None = None,
) -> CheckResult:
    """One check's result; bounds of a statistic become its chart's limits."""
    if lower is None and upper is None and (check.kind in STATISTICS or check.kind == "row_count"):
        lower, upper = check.min, check.max
    if not passed and not message:
        message = f"observed {_jsonable(observed)}, expected {check.threshold()}"
    return CheckResult(
        name=check.name,
        kind=check.kind,
        columns=check.columns,
        severity=check.severity,
        passed=passed,
        observed=_jsonable(observed),
        threshold=check.threshold(),
        failing_rows=failing_rows,
        failing_fraction=failing_fraction,
        message=message,
        sample=sample or [],
        lower=None if lower is None else float(lower),
        upper=None if upper is None else float(upper),
    )


def _row_level_fields(check: Check, failing: int, rows: int, lead: str) -> dict[str, Any]:
    fraction = failing / rows if rows else 0.0
    passed = failing == 0 if check.mostly is None else (1 - fraction) >= check.mostly
    message = ""
    if failing:
        message = (
            f"{lead} {failing:,} rows"
            if lead
            else f"{failing:,} of {rows:,} rows fail ({fraction:.4%})"
        )
    return {
        "passed": passed,
        "observed": failing,
        "failing_rows": failing,
        "failing_fraction": fraction,
        "message": message,
    }


def _freshness_fields(check: Check, newest: Any) -> dict[str, Any]:
    if newest is None:
        return {"passed": False, "observed": None, "message": "the column has no values"}
    if isinstance(newest, dt.date) and not isinstance(newest, dt.datetime):
        newest = dt.datetime.combine(newest, dt.time())
    now = dt.datetime.now(newest.tzinfo) if newest.tzinfo else dt.datetime.now()
    age = (now - newest).total_seconds()
    return {
        "passed": age <= (check.max_age_seconds or 0),
        "observed": newest,
        "message": f"newest value is {age:,.0f} s old",
    }


def _anomaly_result(
    suite: Suite, check: Check, value: Any, history: Sequence[float]
) -> CheckResult:
    if check.metric == "check" and value is not None and spc.finite_number(value) is None:
        raise CheckExecutionError(
            f"suite {suite.name!r}, check {check.name!r}: check {check.of_check!r} observed "
            f"{value!r}, not a number, so it has no control limits",
            suite=suite.name,
            check=check.name,
        )
    verdict = spc.judge(
        history,
        spc.finite_number(value),
        window=check.window,
        k=check.k,
        min_history=check.min_history,
        change=check.change,
    )
    return _result(
        check,
        passed=verdict.passed,
        observed=value,
        message=verdict.message,
        lower=verdict.lower,
        upper=verdict.upper,
    )


def _custom_input(check: Check, data: Any, whole: Any) -> Any:
    """The table in the flavor the function's first parameter asks for (polars if none)."""
    import inspect

    from headrace.core.params import type_hints
    from headrace.io.frames import annotation_flavor, from_arrow, table_flavor, to_arrow

    function = check.function
    assert function is not None
    parameters = list(inspect.signature(function).parameters)
    wanted = annotation_flavor(type_hints(function).get(parameters[0])) if parameters else None
    flavor = table_flavor(data)
    if wanted is None or wanted == "polars":
        return whole()
    if wanted == flavor:
        return data
    return from_arrow(to_arrow(data, flavor or "polars"), wanted)


def _run_custom(
    suite: Suite, check: Check, data: Any, whole: Any, rows: int
) -> tuple[dict[str, Any], Any]:
    """Call a custom check; its verdict, and for a row-level one the mask of bad rows."""
    import polars as pl

    where = f"suite {suite.name!r}, check {check.name!r}"
    try:
        verdict = check.function(_custom_input(check, data, whole))  # type: ignore[misc]
    except Exception as exc:
        raise CheckExecutionError(
            f"{where}: the function raised {type(exc).__name__}: {exc}",
            suite=suite.name,
            check=check.name,
        ) from exc
    if isinstance(verdict, Outcome):
        fields = {"passed": bool(verdict.passed), "observed": verdict.observed}
        return fields | {"message": verdict.message}, None
    if isinstance(verdict, bool) or type(verdict).__name__ == "bool_":
        return {"passed": bool(verdict), "observed": bool(verdict)}, None
    try:
        column = pl.Series(verdict) if not isinstance(verdict, pl.Series) else verdict
    except Exception:
        column = None
    if column is None or column.dtype != pl.Boolean or len(column) != rows:
        shape = (
            f"a column of {len(column):,} {column.dtype} values"
            if column is not None
            else type(verdict).__name__
        )
        raise CheckExecutionError(
            f"{where}: the function returned {shape}; expected True/False, an Outcome, or "
            f"one boolean per row ({rows:,} rows, True where the row is fine)",
            suite=suite.name,
            check=check.name,
        )
    bad = ~column.fill_null(False)
    failing = int(bad.sum())
    return _row_level_fields(check, failing, rows, ""), bad


def _with_samples(
    data: Any,
    whole: Any,
    suite: Suite,
    results: list[CheckResult],
    size: int,
    references: Mapping[str, Any],
    masks: Mapping[str, Any],
) -> list[CheckResult]:
    """The second pass, for failed row-level checks only: a few failing rows each,
    streamed so that the scan stops once enough rows are found."""
    import polars as pl

    if size <= 0:
        return results
    out: list[CheckResult] = []
    for check, result in zip(suite.checks, results, strict=True):
        if result.passed or not result.failing_rows or check.kind == "sql":
            out.append(result)
            continue
        if check.kind == "custom":
            if check.name not in masks:
                out.append(result)
                continue
            positions = masks[check.name].arg_true().head(size).to_list()
        elif not check.row_level:
            out.append(result)
            continue
        else:
            if check.kind == "unique":
                together: Any = (
                    pl.struct(list(check.columns))
                    if len(check.columns) > 1
                    else pl.col(check.columns[0])
                )
                mask = together.is_duplicated()
            else:
                mask = _failing_mask(check, references)
            positions = _first_positions(whole(), mask, size, duplicates=check.kind == "unique")
        rows = _rows_at(data, positions)
        sample = [{k: _jsonable(v) for k, v in r.items()} for r in rows]
        out.append(CheckResult(**{**result.__dict__, "sample": sample}))
    return out

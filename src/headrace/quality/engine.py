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
from typing import Any

from headrace.core.checks import STATISTICS, Check, CheckDefinitionError, Suite
from headrace.core.graph import suggest
from headrace.quality.results import CheckResult, ValidationReport


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
    if any(check.kind in ("expression", "sql") for check in suite.checks):
        return None
    wanted = {column for check in suite.checks for column in check.columns}
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
    numeric = check.kind in ("between", "mean", "stddev", "quantile")
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


def _failing_mask(check: Check) -> Any:
    """A row-level check's failing rows (nulls pass every check but not_null)."""
    import polars as pl

    column: Any = pl.col(check.column or "")
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


def _aggregates(check: Check, index: int) -> list[Any]:
    import polars as pl

    key = f"c{index}"
    column: Any = pl.col(check.column or "")
    if check.kind == "unique":
        together = pl.struct(list(check.columns)) if len(check.columns) > 1 else column
        return [(pl.len() - together.n_unique()).alias(key)]
    if check.row_level:
        return [_failing_mask(check).sum().alias(key)]
    if check.kind == "mean":
        return [column.mean().alias(key)]
    if check.kind == "stddev":
        return [column.std().alias(key)]
    if check.kind == "quantile":
        return [column.quantile(check.quantile or 0.5).alias(key)]
    if check.kind == "null_fraction":
        return [(column.null_count() / pl.len()).alias(key)]
    if check.kind == "distinct_count":
        return [column.n_unique().alias(key)]
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


def _schema_result(check: Check, schema: dict[str, Any]) -> tuple[bool, str, str]:
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
    observed = ", ".join(f"{c}: {t}" for c, t in schema.items())
    return not problems, observed, "; ".join(problems)


def validate(data: Any, suite: Suite, *, sample: int = 5) -> ValidationReport:
    """Run ``suite`` on a pandas, polars or Arrow table; one pass, plus samples of failures.

    Raises:
        CheckDefinitionError: a check names a missing column, a wrong type, or a regex or
            expression that cannot run, before any data is read.
    """
    import polars as pl

    started = time.perf_counter()
    schema = _schema_of(data)
    for check in suite.checks:
        _compile_check(suite, check, schema)
    frame = to_polars(data, _needed(suite, schema))
    lazy = frame.lazy() if isinstance(frame, pl.DataFrame) else frame
    exprs = [pl.len().alias("__rows")]
    for i, check in enumerate(suite.checks):
        exprs.extend(_aggregates(check, i))
    # An in-memory frame is aggregated eagerly: measured faster and leaner than the lazy
    # engine for one wide select; a LazyFrame input stays lazy.
    aggregated = (
        frame.select(exprs) if isinstance(frame, pl.DataFrame) else lazy.select(exprs).collect()
    )
    row = aggregated.row(0, named=True)
    rows = int(row["__rows"])
    results: list[CheckResult] = []
    for i, check in enumerate(suite.checks):
        observed = row.get(f"c{i}")
        failing: int | None = None
        fraction: float | None = None
        message = ""
        if check.row_level:
            failing = int(observed or 0)
            fraction = failing / rows if rows else 0.0
            passed = failing == 0 if check.mostly is None else (1 - fraction) >= check.mostly
            observed = failing
            if failing:
                message = f"{failing:,} of {rows:,} rows fail ({fraction:.4%})"
        elif check.kind == "row_count":
            observed = rows
            passed = _within(rows, check)
        elif check.kind in STATISTICS:
            passed = _within(observed, check)
        elif check.kind == "freshness":
            newest = observed
            if newest is None:
                passed, message = False, "the column has no values"
            else:
                if isinstance(newest, dt.date) and not isinstance(newest, dt.datetime):
                    newest = dt.datetime.combine(newest, dt.time())
                now = dt.datetime.now(newest.tzinfo) if newest.tzinfo else dt.datetime.now()
                age = (now - newest).total_seconds()
                passed = age <= (check.max_age_seconds or 0)
                message = f"newest value is {age:,.0f} s old"
        elif check.kind == "schema":
            passed, observed, message = _schema_result(check, schema)
        elif check.kind == "sql":
            failing, rows_found = _run_sql(
                frame if isinstance(frame, pl.DataFrame) else lazy.collect(),
                check.expression or "",
                sample,
            )
            observed, passed = failing, failing == 0
            fraction = failing / rows if rows else 0.0
            if failing:
                message = f"the query returned {failing:,} rows"
            results.append(
                CheckResult(
                    name=check.name,
                    kind=check.kind,
                    columns=check.columns,
                    severity=check.severity,
                    passed=passed,
                    observed=failing,
                    threshold=check.threshold(),
                    failing_rows=failing,
                    failing_fraction=fraction,
                    message=message,
                    sample=[{k: _jsonable(v) for k, v in r.items()} for r in rows_found],
                )
            )
            continue
        else:
            raise AssertionError(check.kind)
        if not passed and not message:
            message = f"observed {_jsonable(observed)}, expected {check.threshold()}"
        results.append(
            CheckResult(
                name=check.name,
                kind=check.kind,
                columns=check.columns,
                severity=check.severity,
                passed=passed,
                observed=_jsonable(observed),
                threshold=check.threshold(),
                failing_rows=failing,
                failing_fraction=fraction,
                message=message,
            )
        )
    results = _with_samples(
        data, frame if isinstance(frame, pl.DataFrame) else lazy, suite, results, sample
    )
    return ValidationReport(
        suite=suite.name, rows=rows, seconds=time.perf_counter() - started, results=results
    )


def _with_samples(
    data: Any, lazy: Any, suite: Suite, results: list[CheckResult], size: int
) -> list[CheckResult]:
    """The second pass, for failed row-level checks only: a few failing rows each,
    streamed so that the scan stops once enough rows are found."""
    import polars as pl

    if size <= 0:
        return results
    out: list[CheckResult] = []
    for check, result in zip(suite.checks, results, strict=True):
        if result.passed or not check.row_level or not result.failing_rows:
            out.append(result)
            continue
        if check.kind == "unique":
            together: Any = (
                pl.struct(list(check.columns))
                if len(check.columns) > 1
                else pl.col(check.columns[0])
            )
            mask = together.is_duplicated()
        else:
            mask = _failing_mask(check)
        positions = _first_positions(lazy, mask, size, duplicates=check.kind == "unique")
        rows = _rows_at(data, positions)
        sample = [{k: _jsonable(v) for k, v in r.items()} for r in rows]
        out.append(CheckResult(**{**result.__dict__, "sample": sample}))
    return out

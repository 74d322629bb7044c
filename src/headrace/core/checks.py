"""Check specs: declarative data-quality rules, validated when built.

Pure definitions: which rule, on which columns, with which bounds and severity. The
quality engine compiles a whole suite into one aggregate pass over the data.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from headrace.core.errors import DefinitionError

SEVERITIES = ("error", "warn")
ROW_LEVEL = frozenset({"not_null", "unique", "between", "in_set", "matches", "expression"})
STATISTICS = frozenset({"mean", "stddev", "quantile", "null_fraction", "distinct_count"})


class CheckDefinitionError(DefinitionError):
    """A check or suite is malformed: names the suite, the check and the problem."""

    def __init__(self, message: str, *, suite: str | None = None, check: str | None = None):
        super().__init__(message)
        self.suite = suite
        self.check = check


@dataclass(frozen=True, kw_only=True)
class Check:
    """One rule. Build it with the functions below (``not_null("id")``, ...).

    Row-level checks (not_null, unique, between, in_set, matches, expression) count the
    failing rows; ``mostly=0.99`` lets up to 1% fail. Aggregate checks (row_count,
    statistics, freshness, schema) compare one observed value with bounds.
    """

    kind: str
    name: str
    columns: tuple[str, ...] = ()
    severity: str = "error"
    mostly: float | None = None
    min: float | None = None
    max: float | None = None
    inclusive: tuple[bool, bool] = (True, True)
    values: tuple[Any, ...] = ()
    pattern: str | None = None
    expression: str | None = None
    quantile: float | None = None
    max_age_seconds: float | None = None
    types: tuple[tuple[str, str], ...] = ()
    allow_extra: bool = True

    @property
    def column(self) -> str | None:
        return self.columns[0] if self.columns else None

    @property
    def row_level(self) -> bool:
        return self.kind in ROW_LEVEL

    def threshold(self) -> str:
        """The rule in words, for reports."""
        low, high = self.min, self.max
        if self.kind == "between" or self.kind in STATISTICS or self.kind == "row_count":
            left = "" if low is None else f"{'≥' if self.inclusive[0] else '>'} {low:g}"
            right = "" if high is None else f"{'≤' if self.inclusive[1] else '<'} {high:g}"
            bounds = " and ".join(part for part in (left, right) if part)
            if self.row_level and self.mostly is not None:
                bounds += f" for at least {self.mostly:.2%} of rows"
            return bounds
        if self.kind == "in_set":
            shown = ", ".join(map(repr, self.values[:8])) + (" ..." if len(self.values) > 8 else "")
            return f"in {{{shown}}}"
        if self.kind == "matches":
            return f"matches /{self.pattern}/"
        if self.kind == "freshness":
            return f"newest value at most {self.max_age_seconds:g} s old"
        if self.kind == "expression":
            return f"{self.expression} is true"
        if self.kind == "sql":
            return "the query returns no rows"
        if self.kind == "schema":
            return ", ".join(f"{n}: {t}" for n, t in self.types)
        rule = {"not_null": "no nulls", "unique": "no duplicates"}.get(self.kind, self.kind)
        return rule + (f" for at least {self.mostly:.2%} of rows" if self.mostly else "")


def _name(given: str | None, default: str) -> str:
    name = given or default
    if not re.fullmatch(r"[A-Za-z0-9_.:\-\[\]]+", name):
        raise CheckDefinitionError(f"check name {name!r} is invalid", check=name)
    return name


def _common(
    kind: str, columns: Sequence[str], *, name: str | None, severity: str, mostly: float | None
) -> dict[str, Any]:
    label = _name(name, "_".join([*columns, kind]) if columns else kind)
    for column in columns:
        if not isinstance(column, str) or not column:
            raise CheckDefinitionError(
                f"check {label!r}: column names must be strings", check=label
            )
    if severity not in SEVERITIES:
        raise CheckDefinitionError(
            f"check {label!r}: severity {severity!r} is unknown; expected 'error' or 'warn'",
            check=label,
        )
    if mostly is not None:
        if kind not in ROW_LEVEL:
            raise CheckDefinitionError(
                f"check {label!r}: mostly= applies to row-level checks only", check=label
            )
        if not 0 < mostly <= 1:
            raise CheckDefinitionError(
                f"check {label!r}: mostly must be in (0, 1], got {mostly!r}", check=label
            )
    return {
        "kind": kind,
        "name": label,
        "columns": tuple(columns),
        "severity": severity,
        "mostly": mostly,
    }


def _bounds(label: str, low: float | None, high: float | None, *, need_one: bool) -> None:
    for value in (low, high):
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value)
        ):
            raise CheckDefinitionError(
                f"check {label!r}: bounds must be numbers, got {value!r}", check=label
            )
    if need_one and low is None and high is None:
        raise CheckDefinitionError(f"check {label!r}: give min=, max= or both", check=label)
    if low is not None and high is not None and low > high:
        raise CheckDefinitionError(f"check {label!r}: min {low} is above max {high}", check=label)


def not_null(
    column: str, *, severity: str = "error", mostly: float | None = None, name: str | None = None
) -> Check:
    """Every value of ``column`` is present."""
    return Check(**_common("not_null", [column], name=name, severity=severity, mostly=mostly))


def unique(
    *columns: str, severity: str = "error", mostly: float | None = None, name: str | None = None
) -> Check:
    """No two rows share the value of ``columns`` (one column or several together)."""
    if not columns:
        raise CheckDefinitionError("unique() needs at least one column")
    return Check(**_common("unique", columns, name=name, severity=severity, mostly=mostly))


def between(
    column: str,
    min: float | None = None,
    max: float | None = None,
    *,
    inclusive: tuple[bool, bool] = (True, True),
    severity: str = "error",
    mostly: float | None = None,
    name: str | None = None,
) -> Check:
    """Values of ``column`` lie within [min, max] (nulls are not checked)."""
    base = _common("between", [column], name=name, severity=severity, mostly=mostly)
    _bounds(base["name"], min, max, need_one=True)
    return Check(**base, min=min, max=max, inclusive=inclusive)


def in_set(
    column: str,
    values: Iterable[Any],
    *,
    severity: str = "error",
    mostly: float | None = None,
    name: str | None = None,
) -> Check:
    """Values of ``column`` are among ``values`` (nulls are not checked)."""
    base = _common("in_set", [column], name=name, severity=severity, mostly=mostly)
    chosen = tuple(values)
    if not chosen:
        raise CheckDefinitionError(
            f"check {base['name']!r}: the set of values is empty", check=base["name"]
        )
    return Check(**base, values=chosen)


def matches(
    column: str,
    pattern: str,
    *,
    severity: str = "error",
    mostly: float | None = None,
    name: str | None = None,
) -> Check:
    """String values of ``column`` match the regular expression (nulls are not checked)."""
    base = _common("matches", [column], name=name, severity=severity, mostly=mostly)
    try:
        re.compile(pattern)
    except (re.error, TypeError) as exc:
        raise CheckDefinitionError(
            f"check {base['name']!r}: the regular expression {pattern!r} does not compile: {exc}",
            check=base["name"],
        ) from exc
    return Check(**base, pattern=pattern)


def expression(
    sql: str, *, severity: str = "error", mostly: float | None = None, name: str | None = None
) -> Check:
    """A row-level SQL boolean expression (``amount >= 0 AND qty > 0``) true on every row."""
    if not isinstance(sql, str) or not sql.strip():
        raise CheckDefinitionError("expression() needs a SQL boolean expression")
    label = name or re.sub(r"[^A-Za-z0-9_]+", "_", sql).strip("_")[:60] or "expression"
    base = _common("expression", [], name=label, severity=severity, mostly=mostly)
    return Check(**base, expression=sql)


def sql(query: str, *, severity: str = "error", name: str | None = None) -> Check:
    """A SQL query over the table (named ``data``) whose returned rows are the failures,
    e.g. ``SELECT * FROM data WHERE arr_time < dep_time AND NOT overnight``."""
    if not isinstance(query, str) or "data" not in query.lower():
        raise CheckDefinitionError(
            "sql() needs a query over the table, which is named data (SELECT ... FROM data ...)"
        )
    base = _common("sql", [], name=name or "sql", severity=severity, mostly=None)
    return Check(**base, expression=query)


def row_count(
    *,
    min: int | None = None,
    max: int | None = None,
    severity: str = "error",
    name: str | None = None,
) -> Check:
    """The number of rows lies within [min, max]."""
    base = _common("row_count", [], name=name, severity=severity, mostly=None)
    _bounds(base["name"], min, max, need_one=True)
    return Check(**base, min=min, max=max)


def _statistic(
    kind: str,
    column: str,
    min: float | None,
    max: float | None,
    severity: str,
    name: str | None,
    quantile: float | None = None,
) -> Check:
    base = _common(kind, [column], name=name, severity=severity, mostly=None)
    _bounds(base["name"], min, max, need_one=True)
    return Check(**base, min=min, max=max, quantile=quantile)


def mean(
    column: str,
    *,
    min: float | None = None,
    max: float | None = None,
    severity: str = "error",
    name: str | None = None,
) -> Check:
    """The mean of ``column`` lies within [min, max]."""
    return _statistic("mean", column, min, max, severity, name)


def stddev(
    column: str,
    *,
    min: float | None = None,
    max: float | None = None,
    severity: str = "error",
    name: str | None = None,
) -> Check:
    """The standard deviation of ``column`` lies within [min, max]."""
    return _statistic("stddev", column, min, max, severity, name)


def quantile(
    column: str,
    q: float,
    *,
    min: float | None = None,
    max: float | None = None,
    severity: str = "error",
    name: str | None = None,
) -> Check:
    """The ``q`` quantile of ``column`` lies within [min, max]."""
    if isinstance(q, bool) or not isinstance(q, int | float) or not 0 <= q <= 1:
        raise CheckDefinitionError(f"quantile(): q must be in [0, 1], got {q!r}")
    label = name or f"{column}_q{q:g}".replace(".", "_")
    return _statistic("quantile", column, min, max, severity, label, quantile=float(q))


def null_fraction(
    column: str,
    *,
    min: float | None = None,
    max: float | None = None,
    severity: str = "error",
    name: str | None = None,
) -> Check:
    """The fraction of nulls in ``column`` lies within [min, max]."""
    return _statistic("null_fraction", column, min, max, severity, name)


def distinct_count(
    column: str,
    *,
    min: float | None = None,
    max: float | None = None,
    severity: str = "error",
    name: str | None = None,
) -> Check:
    """The number of distinct values of ``column`` lies within [min, max]."""
    return _statistic("distinct_count", column, min, max, severity, name)


def freshness(
    column: str, *, max_age_seconds: float, severity: str = "error", name: str | None = None
) -> Check:
    """The newest timestamp in ``column`` is at most ``max_age_seconds`` old."""
    base = _common("freshness", [column], name=name, severity=severity, mostly=None)
    if isinstance(max_age_seconds, bool) or not max_age_seconds > 0:
        raise CheckDefinitionError(
            f"check {base['name']!r}: max_age_seconds must be > 0", check=base["name"]
        )
    return Check(**base, max_age_seconds=float(max_age_seconds))


def schema(
    columns: Mapping[str, str],
    *,
    allow_extra: bool = True,
    severity: str = "error",
    name: str | None = None,
) -> Check:
    """Expected columns and their types (polars type names: ``Int64``, ``String``, ...)."""
    if not columns:
        raise CheckDefinitionError("schema() needs at least one column")
    base = _common("schema", [], name=name, severity=severity, mostly=None)
    return Check(
        **base, types=tuple((str(k), str(v)) for k, v in columns.items()), allow_extra=allow_extra
    )


@dataclass(frozen=True)
class Suite:
    """A named list of checks, validated when built (unique names, real checks)."""

    name: str
    checks: tuple[Check, ...] = field(default_factory=tuple)

    def __init__(self, name: str, checks: Iterable[Check] = ()) -> None:
        object.__setattr__(self, "name", name)
        items = tuple(checks)
        seen: set[str] = set()
        for item in items:
            if not isinstance(item, Check):
                raise CheckDefinitionError(
                    f"suite {name!r}: {item!r} is not a check; build checks with "
                    "headrace.checks (not_null, between, ...)",
                    suite=name,
                )
            if item.name in seen:
                raise CheckDefinitionError(
                    f"suite {name!r}: two checks are named {item.name!r}; give one name=",
                    suite=name,
                    check=item.name,
                )
            seen.add(item.name)
        object.__setattr__(self, "checks", items)

    def __len__(self) -> int:
        return len(self.checks)

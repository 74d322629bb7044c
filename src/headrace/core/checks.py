"""Check specs: declarative data-quality rules, validated when built.

Pure definitions: which rule, on which columns, with which bounds and severity. The
quality engine compiles a whole suite into one aggregate pass over the data.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from headrace.core.errors import DefinitionError
from headrace.errors import HeadraceError

SEVERITIES = ("error", "warn")
ROW_LEVEL = frozenset(
    {"not_null", "unique", "between", "in_set", "matches", "expression", "references"}
)
STATISTICS = frozenset({"mean", "stddev", "quantile", "null_fraction", "distinct_count"})
#: What an anomaly check can watch: table metrics, column statistics, or ``check``
#: (the observed value of another check of the suite).
METRICS = frozenset(
    {"row_count", "null_fraction", "mean", "stddev", "distinct_count", "min", "max", "check"}
)


class CheckDefinitionError(DefinitionError):
    """A check or suite is malformed: names the suite, the check and the problem."""

    def __init__(self, message: str, *, suite: str | None = None, check: str | None = None):
        super().__init__(message)
        self.suite = suite
        self.check = check


class CheckExecutionError(HeadraceError):
    """A custom check function raised, or returned something that is not a verdict."""

    def __init__(self, message: str, *, suite: str | None = None, check: str | None = None):
        super().__init__(message)
        self.suite = suite
        self.check = check


@dataclass(frozen=True)
class Outcome:
    """What a custom check function may return when a bare ``bool`` says too little:
    the verdict, the value it observed, and a message for people."""

    passed: bool
    observed: Any = None
    message: str = ""


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
    allow_drift: bool = False
    #: references: the asset and column whose values this column must be among.
    reference: str | None = None
    reference_column: str | None = None
    #: custom: the user's function (called with the table).
    function: Callable[..., Any] | None = field(default=None, compare=False, repr=False)
    #: anomaly: the metric watched, its window of history and the width of the limits.
    metric: str | None = None
    of_check: str | None = None
    window: int = 20
    k: float = 3.0
    min_history: int = 5
    change: bool = False

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
            parts = [", ".join(f"{n}: {t}" for n, t in self.types)]
            if not self.allow_drift:
                parts.append("no drift from the previous version")
            return "; ".join(p for p in parts if p)
        if self.kind == "references":
            return f"every value is in {self.reference}.{self.reference_column}" + (
                f" for at least {self.mostly:.2%} of rows" if self.mostly else ""
            )
        if self.kind == "custom":
            return f"{getattr(self.function, '__name__', 'function')}() holds" + (
                f" for at least {self.mostly:.2%} of rows" if self.mostly else ""
            )
        if self.kind == "anomaly":
            watched = f"check {self.of_check}" if self.metric == "check" else self.metric
            if self.column:
                watched = f"{watched} of {self.column}"
            how = "change from the previous value" if self.change else "value"
            return (
                f"{watched}: {how} within mean ± {self.k:g}σ of the last {self.window} "
                f"versions (judged after {self.min_history})"
            )
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
        if kind not in ROW_LEVEL and kind != "custom":
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
    columns: Mapping[str, str] | None = None,
    *,
    allow_extra: bool = True,
    allow_drift: bool = False,
    severity: str = "error",
    name: str | None = None,
) -> Check:
    """Expected columns and their types (polars type names: ``Int64``, ``String``, ...).

    Where the asset has a previous version, a change of columns against it (one added,
    removed or retyped) is schema drift and fails the check unless ``allow_drift=True``;
    with no ``columns`` the check watches for drift alone.
    """
    base = _common("schema", [], name=name, severity=severity, mostly=None)
    if not columns and allow_drift:
        raise CheckDefinitionError(
            f"check {base['name']!r}: give expected columns, or watch for drift "
            "(allow_drift=False); with neither it checks nothing",
            check=base["name"],
        )
    if columns is not None and not isinstance(columns, Mapping):
        raise CheckDefinitionError(
            f"check {base['name']!r}: columns must map column names to type names",
            check=base["name"],
        )
    return Check(
        **base,
        types=tuple((str(k), str(v)) for k, v in (columns or {}).items()),
        allow_extra=allow_extra,
        allow_drift=allow_drift,
    )


def references(
    column: str,
    asset: str,
    *,
    to_column: str | None = None,
    severity: str = "error",
    mostly: float | None = None,
    name: str | None = None,
) -> Check:
    """Every value of ``column`` exists in ``asset``'s column ``to_column`` (by default a
    column of the same name), like a foreign key; nulls are not checked. In a pipeline
    the referenced asset is read at its current version and runs first."""
    base = _common(
        "references",
        [column],
        name=name or f"{column}_in_{asset}",
        severity=severity,
        mostly=mostly,
    )
    if not isinstance(asset, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", asset):
        raise CheckDefinitionError(
            f"check {base['name']!r}: {asset!r} is not an asset name", check=base["name"]
        )
    target = to_column or column
    if not isinstance(target, str):
        raise CheckDefinitionError(
            f"check {base['name']!r}: to_column must be a column name", check=base["name"]
        )
    return Check(**base, reference=asset, reference_column=target)


def custom(
    function: Callable[..., Any],
    *,
    severity: str = "error",
    mostly: float | None = None,
    name: str | None = None,
) -> Check:
    """A check that is a plain function of the table.

    The function receives the table (a polars DataFrame, or pandas / Arrow when its first
    parameter is annotated so) and returns ``True``/``False``, an :class:`Outcome`, or a
    boolean column with one value per row (``True`` where the row is fine): then it is a
    row-level check with failing-row counts, samples and ``mostly=``.
    """
    if not callable(function):
        raise CheckDefinitionError(f"custom() needs a function, got {function!r}")
    label = name or getattr(function, "__name__", "") or "custom"
    if label == "<lambda>":
        raise CheckDefinitionError("custom(): a lambda needs a name= to be reported by")
    base = _common("custom", [], name=label, severity=severity, mostly=mostly)
    return Check(**base, function=function)


def anomaly(
    metric: str,
    column: str | None = None,
    *,
    check: str | None = None,
    window: int = 20,
    k: float = 3.0,
    min_history: int = 5,
    change: bool = False,
    severity: str = "warn",
    name: str | None = None,
) -> Check:
    """Statistical process control: ``metric`` judged against limits learned from its
    history on the asset: the mean ± ``k`` standard deviations of its last ``window``
    values (``change=True``: of its changes from one version to the next). Until
    ``min_history`` values exist it only records. Metrics: ``row_count``;
    ``null_fraction``, ``mean``, ``stddev``, ``distinct_count``, ``min``, ``max`` of a
    column; ``check`` with ``check=`` another check's name (its observed value).

    Severity defaults to ``warn``: an unusual value is worth a look before it is worth
    stopping a pipeline; say ``severity="error"`` to quarantine on it.
    """
    if metric not in METRICS:
        raise CheckDefinitionError(
            f"anomaly(): unknown metric {metric!r}; expected one of {', '.join(sorted(METRICS))}"
        )
    needs_column = metric not in ("row_count", "check")
    if needs_column and not column:
        raise CheckDefinitionError(f"anomaly(): metric {metric!r} needs a column")
    if not needs_column and column:
        raise CheckDefinitionError(f"anomaly(): metric {metric!r} takes no column")
    if (metric == "check") != (check is not None):
        raise CheckDefinitionError(
            "anomaly(): metric 'check' needs check= (the name of the watched check), "
            "and check= goes with metric 'check' only"
        )
    default = "_".join(p for p in (check or column or "", metric, "anomaly") if p)
    base = _common(
        "anomaly", [column] if column else [], name=name or default, severity=severity, mostly=None
    )
    label = base["name"]
    for field_name, value, low in (("window", window, 2), ("min_history", min_history, 2)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise CheckDefinitionError(
                f"check {label!r}: {field_name} must be a whole number ≥ {low}, got {value!r}",
                check=label,
            )
    if min_history > window:
        raise CheckDefinitionError(
            f"check {label!r}: min_history {min_history} is above window {window}", check=label
        )
    if isinstance(k, bool) or not isinstance(k, int | float) or not k > 0:
        raise CheckDefinitionError(f"check {label!r}: k must be > 0, got {k!r}", check=label)
    return Check(
        **base,
        metric=metric,
        of_check=check,
        window=window,
        k=float(k),
        min_history=min_history,
        change=bool(change),
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
        items = tuple(custom(item) if _plain_function(item) else item for item in items)  # type: ignore[arg-type]
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
        for item in items:
            if item.kind == "anomaly" and item.of_check is not None:
                watched = next((c for c in items if c.name == item.of_check), None)
                if watched is None or watched.kind in ("anomaly", "schema", "freshness"):
                    raise CheckDefinitionError(
                        f"suite {name!r}, check {item.name!r}: it watches check "
                        f"{item.of_check!r}, which is not a check of this suite"
                        + (" with a numeric observed value" if watched else ""),
                        suite=name,
                        check=item.name,
                    )
        object.__setattr__(self, "checks", items)

    @property
    def references(self) -> dict[str, set[str]]:
        """Assets the suite's ``references`` checks read, with the columns they read."""
        out: dict[str, set[str]] = {}
        for item in self.checks:
            if item.reference is not None and item.reference_column is not None:
                out.setdefault(item.reference, set()).add(item.reference_column)
        return out

    def __len__(self) -> int:
        return len(self.checks)


def _plain_function(item: Any) -> bool:
    """A plain function given where a check is expected: it is a custom check."""
    import inspect

    return inspect.isfunction(item) or inspect.ismethod(item)

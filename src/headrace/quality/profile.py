"""Column profiles of a table in ONE Polars ``select``, and a starting suite from them.

For every column: its type, nulls, distinct values; for numbers, dates and times: min,
max, mean, standard deviation, quantiles and a histogram; for text and booleans: the
most frequent values (and every value when there are few) and the text lengths.
Histograms and value counts are imploded into list scalars, so every statistic of
every column is one aggregate of the same pass. Profiles are plain, JSON-serializable
dataclasses (``to_dict`` / ``from_dict``), stored with the version they describe.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import textwrap
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from headrace.errors import HeadraceError

#: The quantiles every numeric or temporal column gets.
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
#: Bins of a histogram (equal width between the smallest and largest finite value).
BINS = 20
#: Most frequent values kept per text or boolean column.
TOP = 10
#: Every distinct value is kept when a text or boolean column has at most this many.
CATEGORIES = 20

_COUNT = "__count"


def _count_name(column: str) -> str:
    """The field of a column's value counts that holds the counts (not its own name)."""
    return _COUNT if column != _COUNT else _COUNT + "_"


class ProfileError(HeadraceError):
    """A profile cannot be made: not a table, or a suite file that would be overwritten."""


@dataclass(frozen=True, kw_only=True)
class Histogram:
    """Counts of values in equal-width bins; ``edges`` has one more item than ``counts``.

    Dates and times are binned on their physical values (days, or time units since the
    epoch or midnight).
    """

    edges: list[float]
    counts: list[int]

    def to_dict(self) -> dict[str, Any]:
        return {"edges": list(self.edges), "counts": list(self.counts)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Histogram:
        return cls(edges=[float(e) for e in data["edges"]], counts=[int(c) for c in data["counts"]])


@dataclass(frozen=True, kw_only=True)
class ColumnProfile:
    """What one column holds. Statistics that do not apply to its kind are None/empty.

    ``kind`` is ``numeric``, ``temporal``, ``text``, ``boolean`` or ``other``. ``distinct``
    counts non-null values (None when the type cannot be counted). Float statistics
    leave NaN out (counted in ``nan``). Dates and times are ISO strings; the standard
    deviation of a temporal column is a duration string.
    """

    name: str
    dtype: str
    kind: str
    nulls: int
    null_fraction: float
    distinct: int | None
    nan: int = 0
    min: Any = None
    max: Any = None
    mean: Any = None
    std: Any = None
    quantiles: dict[str, Any] = field(default_factory=dict)
    histogram: Histogram | None = None
    top_values: list[tuple[Any, int]] = field(default_factory=list)
    values: list[Any] | None = None
    min_length: int | None = None
    max_length: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "dtype": self.dtype,
            "kind": self.kind,
            "nulls": self.nulls,
            "null_fraction": self.null_fraction,
            "distinct": self.distinct,
            "nan": self.nan,
            "min": self.min,
            "max": self.max,
            "mean": self.mean,
            "std": self.std,
            "quantiles": dict(self.quantiles),
            "histogram": None if self.histogram is None else self.histogram.to_dict(),
            "top_values": [[value, count] for value, count in self.top_values],
            "values": None if self.values is None else list(self.values),
            "min_length": self.min_length,
            "max_length": self.max_length,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ColumnProfile:
        histogram = data.get("histogram")
        values = data.get("values")
        return cls(
            name=data["name"],
            dtype=data["dtype"],
            kind=data["kind"],
            nulls=int(data["nulls"]),
            null_fraction=float(data["null_fraction"]),
            distinct=data.get("distinct"),
            nan=int(data.get("nan", 0)),
            min=data.get("min"),
            max=data.get("max"),
            mean=data.get("mean"),
            std=data.get("std"),
            quantiles=dict(data.get("quantiles") or {}),
            histogram=None if histogram is None else Histogram.from_dict(histogram),
            top_values=[(value, int(count)) for value, count in data.get("top_values") or []],
            values=None if values is None else list(values),
            min_length=data.get("min_length"),
            max_length=data.get("max_length"),
        )


@dataclass(frozen=True, kw_only=True)
class TableProfile:
    """The profile of a whole table: its row count and one profile per column."""

    rows: int
    columns: list[ColumnProfile]
    seconds: float = 0.0

    def __getitem__(self, name: str) -> ColumnProfile:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)

    @property
    def names(self) -> list[str]:
        return [column.name for column in self.columns]

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "seconds": self.seconds,
            "columns": [column.to_dict() for column in self.columns],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TableProfile:
        return cls(
            rows=int(data["rows"]),
            seconds=float(data.get("seconds", 0.0)),
            columns=[ColumnProfile.from_dict(c) for c in data["columns"]],
        )


# -- computing ------------------------------------------------------------------------


def _kind(dtype: Any) -> str:
    import polars as pl

    if dtype == pl.Boolean:
        return "boolean"
    if dtype.is_numeric():
        return "numeric"
    if dtype.is_temporal():
        return "temporal"
    if dtype in (pl.String, pl.Categorical) or isinstance(dtype, pl.Enum):
        return "text"
    return "other"


def _expressions(index: int, name: str, dtype: Any, kind: str) -> list[Any]:
    """Every aggregate of one column, aliased ``{index}|{statistic}``."""
    import polars as pl

    key = f"{index}|"
    column: Any = pl.col(name)
    out = [column.null_count().alias(key + "nulls")]
    if kind in ("numeric", "temporal"):
        values: Any = column.to_physical() if kind == "temporal" else column
        if isinstance(dtype, pl.Decimal):
            values = values.cast(pl.Float64)
        finite = values
        if dtype.is_float():
            out.append(column.is_nan().sum().alias(key + "nan"))
            values = values.fill_nan(None)
            finite = values.filter(values.is_finite())
        out += [
            column.drop_nulls().n_unique().alias(key + "distinct"),
            values.min().alias(key + "min"),
            values.max().alias(key + "max"),
            values.mean().alias(key + "mean"),
            values.std().alias(key + "std"),
            values.quantile(list(QUANTILES)).alias(key + "quantiles"),
            finite.hist(bin_count=BINS, include_breakpoint=True).implode().alias(key + "hist"),
        ]
    elif kind in ("text", "boolean"):
        # One hash pass (shared by both aggregates) gives the distinct count and the
        # most frequent values; ties go to the smaller value, so profiles are stable.
        counts = column.drop_nulls().value_counts(parallel=True, name=_count_name(name))
        top = counts.top_k_by(
            [counts.struct.field(_count_name(name)), counts.struct.field(name)],
            CATEGORIES,
            reverse=[False, True],
        )
        out += [counts.len().alias(key + "distinct"), top.implode().alias(key + "top")]
        if kind == "text":
            lengths = column.str.len_chars() if dtype == pl.String else column.cat.len_chars()
            out += [
                lengths.min().alias(key + "min_length"),
                lengths.max().alias(key + "max_length"),
            ]
    else:
        out.append(column.drop_nulls().n_unique().alias(key + "distinct"))
    return out


def _usable(name: str, dtype: Any, expressions: list[Any]) -> bool:
    """Whether Polars accepts these aggregates on this type (tried on zero rows)."""
    import polars as pl

    try:
        pl.DataFrame(schema={name: dtype}).select(expressions)
    except Exception:
        return False
    return True


def _finite(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


def _temporal_value(value: Any, dtype: Any) -> Any:
    """A physical value (days, time units) back as an ISO string of the column's type."""
    import polars as pl

    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    physical = pl.Series([round(value)], dtype=pl.Int64)
    item = physical.cast(dtype).item()
    return item.isoformat() if hasattr(item, "isoformat") else str(item)


def _temporal_spread(value: Any, dtype: Any) -> Any:
    """A standard deviation in physical units as a duration string."""
    import polars as pl

    if value is None or not math.isfinite(value):
        return None
    if dtype == pl.Date:
        return str(dt.timedelta(days=value))
    unit = getattr(dtype, "time_unit", None) or "ns"
    per_second = {"ns": 1e9, "us": 1e6, "ms": 1e3}[unit]
    return str(dt.timedelta(seconds=value / per_second))


def _histogram(bins: list[dict[str, Any]] | None) -> Histogram | None:
    if not bins or not any(b["count"] for b in bins) or len(bins) < 2:
        return None
    breaks = [float(b["breakpoint"]) for b in bins]
    width = breaks[1] - breaks[0]
    return Histogram(edges=[breaks[0] - width, *breaks], counts=[int(b["count"]) for b in bins])


def _plain(value: Any) -> Any:
    """A JSON value for a top value (text, categorical or boolean)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _column(
    index: int, name: str, dtype: Any, kind: str, rows: int, row: dict[str, Any], usable: bool
) -> ColumnProfile:
    def key(i: int, statistic: str) -> str:
        return f"{i}|{statistic}"

    nulls = int(row[key(index, "nulls")])
    base: dict[str, Any] = {
        "name": name,
        "dtype": str(dtype),
        "kind": kind if usable else "other",
        "nulls": nulls,
        "null_fraction": nulls / rows if rows else 0.0,
        "distinct": row.get(key(index, "distinct")),
    }
    if not usable:
        return ColumnProfile(**base)
    if kind in ("numeric", "temporal"):
        quantiles = row[key(index, "quantiles")] or []
        stats = {s: _finite(row[key(index, s)]) for s in ("min", "max", "mean", "std")}
        pairs = dict(zip((f"{q:g}" for q in QUANTILES), quantiles, strict=True))
        if kind == "temporal":
            stats = {
                "min": _temporal_value(stats["min"], dtype),
                "max": _temporal_value(stats["max"], dtype),
                "mean": _temporal_value(stats["mean"], dtype),
                "std": _temporal_spread(stats["std"], dtype),
            }
            pairs = {q: _temporal_value(v, dtype) for q, v in pairs.items()}
        return ColumnProfile(
            **base,
            nan=int(row.get(key(index, "nan")) or 0),
            **stats,
            quantiles={q: v for q, v in pairs.items() if v is not None},
            histogram=_histogram(row[key(index, "hist")]),
        )
    if kind in ("text", "boolean"):
        tally = _count_name(name)
        counted = [(_plain(item[name]), int(item[tally])) for item in row[key(index, "top")]]
        counted.sort(key=lambda pair: (-pair[1], str(pair[0])))
        distinct = int(base["distinct"] or 0)
        return ColumnProfile(
            **base,
            top_values=counted[:TOP],
            values=sorted((v for v, _ in counted), key=str) if distinct <= CATEGORIES else None,
            min_length=row.get(key(index, "min_length")),
            max_length=row.get(key(index, "max_length")),
        )
    return ColumnProfile(**base)


def profile(data: Any) -> TableProfile:
    """Profile a pandas, polars or Arrow table in one aggregate pass.

    Raises:
        TypeError: ``data`` is not a table.
    """
    import polars as pl

    from headrace.io.frames import table_flavor
    from headrace.quality.engine import to_polars

    if table_flavor(data) is None:
        raise TypeError(
            f"profile() needs a pandas, polars or Arrow table, got {type(data).__name__}"
        )
    started = time.perf_counter()
    frame = to_polars(data)
    if isinstance(frame, pl.LazyFrame):
        # The eager engine shares each column's value counts between its aggregates
        # (measured: the lazy one recomputed them, three times slower) and breaks ties
        # the same way every time.
        frame = frame.collect()
    schema = dict(frame.schema)
    exprs: list[Any] = [pl.len().alias("__rows")]
    usable: dict[str, bool] = {}
    kinds: dict[str, str] = {}
    for index, (name, dtype) in enumerate(schema.items()):
        kinds[name] = _kind(dtype)
        column_exprs = _expressions(index, name, dtype, kinds[name])
        usable[name] = _usable(name, dtype, column_exprs)
        if not usable[name]:  # a type Polars cannot aggregate so: nulls only
            column_exprs = [pl.col(name).null_count().alias(f"{index}|nulls")]
        exprs.extend(column_exprs)
    row = frame.select(exprs).row(0, named=True)
    rows = int(row["__rows"])
    columns = [
        _column(index, name, dtype, kinds[name], rows, row, usable[name])
        for index, (name, dtype) in enumerate(schema.items())
    ]
    return TableProfile(rows=rows, columns=columns, seconds=time.perf_counter() - started)


# -- suggesting a suite ---------------------------------------------------------------


def _label(name: str) -> str:
    """A check name with the characters check names cannot hold replaced."""
    return re.sub(r"[^A-Za-z0-9_.:\-\[\]]+", "_", name).strip("_") or "check"


def _bound(values: list[Any], pick: Any) -> Any:
    """The outermost of finite bounds, or None when one of them is infinite."""
    if not all(isinstance(v, int | float) and math.isfinite(v) for v in values):
        return None
    return pick(values)


def _ceil(value: float, digits: int = 3) -> float:
    scale = 10**digits
    return float(math.ceil(value * scale - 1e-9) / scale)


def _flow(value: Any) -> str:
    """One value as inline YAML (``id``, ``{column: x, max: 1}``, ``[a, b]``)."""
    import yaml

    text: str = yaml.safe_dump(
        value, default_flow_style=True, allow_unicode=True, sort_keys=False, width=2**30
    )
    return text.rstrip("\n").removesuffix("\n...").strip()


def _comment(text: str) -> str:
    return "# " + " ".join(text.split())


class _Suggestions:
    """Suggested checks as YAML lines, with unique names, skipping names the asset
    already declares elsewhere."""

    def __init__(self, taken: Iterable[str]) -> None:
        self.lines: list[str] = []
        self.count = 0
        self.skipped: list[str] = []
        self._taken = set(taken)
        self._used: set[str] = set()

    def note(self, text: str) -> None:
        self.lines.append("  " + _comment(text))

    def add(self, kind: str, default: str, args: Any, *, block: bool = False) -> None:
        import yaml

        if default in self._taken:
            self.skipped.append(default)
            return
        name, n = _label(default), 2
        base = name
        while name in self._used or name in self._taken:
            name, n = f"{base}_{n}", n + 1
        self._used.add(name)
        if name != default:  # the builder's own name is invalid or taken: give one
            if not isinstance(args, dict):
                args = {"columns": list(args)} if kind == "unique" else {"column": args}
            args = {**args, "name": name}
        self.count += 1
        if block:
            text = yaml.safe_dump(
                args, default_flow_style=False, allow_unicode=True, sort_keys=False
            )
            self.lines.append(f"  - {kind}:")
            self.lines.extend("      " + line for line in text.rstrip("\n").split("\n"))
        else:
            self.lines.append(f"  - {kind}: {_flow(args)}")


def _summary(column: ColumnProfile) -> str:
    parts = [f"{column.name} ({column.dtype}): {column.null_fraction:.2%} null"]
    if column.distinct is not None:
        parts.append(f"{column.distinct:,} distinct")
    if column.min is not None:
        parts.append(f"{column.min} .. {column.max}")
    return ", ".join(parts)


def suggest_suite(
    profiles: TableProfile | Sequence[TableProfile],
    asset: str,
    *,
    source: str | None = None,
    taken: Iterable[str] = (),
) -> str:
    """A YAML check suite that the profiled data passes: a starting point to edit.

    Given several profiles (the partitions of an asset, each checked on its own), every
    suggestion holds for each of them. Checks named in ``taken`` (declared on the asset
    elsewhere) are left out, so the file loads beside them.

    Suggests: the schema with the observed types; row_count from half the smallest to
    1.5 times the largest row count; not_null for columns without nulls; unique for
    non-float columns whose distinct count equals the row count; in_set for text columns
    with at most 20 distinct values; between with the observed min and max for integer
    and float columns without NaN; null_fraction a little above the observed one for
    columns with nulls.
    """
    items = [profiles] if isinstance(profiles, TableProfile) else list(profiles)
    if not items:
        raise ProfileError("suggest_suite() needs at least one profile")
    out = _Suggestions(taken)
    by_name = [{c.name: c for c in p.columns} for p in items]
    shared = [c for c in items[0].columns if all(c.name in b for b in by_name)]
    types = {c.name: c.dtype for c in shared if all(b[c.name].dtype == c.dtype for b in by_name)}
    if types:
        out.add("schema", "schema", {"columns": types}, block=True)
    low, high = min(p.rows for p in items), max(p.rows for p in items)
    out.add("row_count", "row_count", {"min": low // 2, "max": math.ceil(high * 1.5)})
    for column in shared:
        name = column.name
        seen = [b[name] for b in by_name]
        filled = [(p.rows, c) for p, c in zip(items, seen, strict=True) if p.rows]
        out.note(_summary(column) if len(items) == 1 else f"{name} ({column.dtype})")
        if filled and all(c.nulls == 0 for _, c in filled):
            out.add("not_null", f"{name}_not_null", name)
        if (
            column.kind in ("numeric", "temporal", "text")
            and not any(c.dtype.startswith("Float") for c in seen)
            and filled
            and all(rows >= 2 and c.nulls == 0 and c.distinct == rows for rows, c in filled)
        ):
            out.add("unique", f"{name}_unique", [name])
        if column.kind == "text" and all(c.values is not None for c in seen):
            values = sorted({str(v) for c in seen for v in c.values or []})
            if 0 < len(values) <= CATEGORIES:
                out.add("in_set", f"{name}_in_set", {"column": name, "values": values})
        # NaN compares above every bound in Polars: a column with NaN gets no range.
        numbers = all(
            c.kind == "numeric" and c.dtype.startswith(("Int", "UInt", "Float")) and not c.nan
            for c in seen
        )
        ranged = [c for c in seen if c.min is not None and c.max is not None]
        if numbers and ranged:
            bounds = {
                "min": _bound([c.min for c in ranged], min),
                "max": _bound([c.max for c in ranged], max),
            }
            kept = {k: v for k, v in bounds.items() if v is not None}
            if kept:
                out.add("between", f"{name}_between", {"column": name, **kept})
        fraction = max(c.null_fraction for c in seen)
        if fraction > 0:
            ceiling = min(1.0, _ceil(fraction * 1.2 + 0.01))
            out.add("null_fraction", f"{name}_null_fraction", {"column": name, "max": ceiling})
    total = sum(p.rows for p in items)
    header = [
        f"A starting point, generated by `headrace profile --suggest` from "
        f"{source or 'the profiled data'} ({total:,} rows in {len(items)} "
        f"table{'s' * (len(items) != 1)}).",
        "Every bound is what that data showed: widen or tighten them, and delete the checks "
        "that are not rules of this data.",
    ]
    if out.skipped:
        header.append("Left out, already declared on the asset: " + ", ".join(out.skipped) + ".")
    lines = [_comment(part) for h in header for part in textwrap.wrap(h, 86)]
    lines += [f"asset: {_flow(asset)}", "checks:" if out.count else "checks: []", *out.lines]
    return "\n".join(lines) + "\n"

"""Column and dataset drift between a reference table and a current one.

``DriftDetector`` follows the estimator contract: ``fit(reference)`` reads each column
once and keeps what the tests need (sorted values, bin edges and shares, level counts);
``score(current)`` reads the current columns once and runs each column's test on what
was kept. Columns are processed in parallel threads (numpy, scipy and Arrow release
the GIL for the heavy parts). ``profile()`` turns the fitted reference into a compact
JSON-able dict (1,000 quantiles a numeric column, level counts a categorical one) and
``DriftDetector.from_profile`` scores against it without the reference data.

The test of a column is, unless given: for a reference of at most 1,000 values, a
p-value test (Kolmogorov-Smirnov for numbers; chi-squared for categories, a z-test for
two); for a larger one an effect size (Wasserstein distance normed by the reference's
standard deviation for numbers, Jensen-Shannon distance for categories), since at a
million rows a p-value flags shifts too small to matter. A numeric column with at most
five distinct values counts as categorical. The dataset drifts when the share of
drifted columns reaches ``drift_share`` (0.5).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

from headrace.errors import HeadraceError

SMALL_SAMPLE = 1000
BINS = 10


class DriftError(HeadraceError):
    """Bad input to a drift detector: names the column and what was expected."""

    def __init__(self, message: str, *, column: str | None = None) -> None:
        super().__init__(message)
        self.column = column


@dataclass(frozen=True)
class ColumnTest:
    """How one column is tested: a method (see ``headrace.drift.methods``) and its
    threshold (the method's default when None)."""

    method: str
    threshold: float | None = None

    def __post_init__(self) -> None:
        from headrace.drift.methods import METHODS

        if self.method not in METHODS:
            raise DriftError(
                f"unknown drift method {self.method!r}; expected one of {', '.join(METHODS)}"
            )
        spec = METHODS[self.method]
        if self.threshold is not None:
            if spec.p_value and not 0 < self.threshold < 1:
                raise DriftError(
                    f"{self.method}: the threshold is a p-value, between 0 and 1 "
                    f"(got {self.threshold})"
                )
            if not spec.p_value and not self.threshold > 0:
                raise DriftError(f"{self.method}: the threshold must be > 0 (got {self.threshold})")


@dataclass(frozen=True)
class ColumnDrift:
    column: str
    kind: str  # "numeric" or "categorical"
    method: str
    score: float
    p_value: float | None
    threshold: float
    drifted: bool
    reference_rows: int
    current_rows: int
    reference_nulls: int = 0
    current_nulls: int = 0

    @property
    def is_p_value(self) -> bool:
        return self.p_value is not None


@dataclass(frozen=True)
class DatasetDrift:
    columns: list[ColumnDrift]
    share: float
    threshold: float
    drifted: bool
    skipped: dict[str, str] = field(default_factory=dict)  # column -> why it was not tested

    @property
    def drifted_columns(self) -> list[str]:
        return [c.column for c in self.columns if c.drifted]

    def column(self, name: str) -> ColumnDrift:
        for c in self.columns:
            if c.column == name:
                return c
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "share": self.share,
            "threshold": self.threshold,
            "drifted": self.drifted,
            "columns": [asdict(c) for c in self.columns],
            "skipped": dict(self.skipped),
        }


def _arrow_columns(table: Any, names: Sequence[str] | None) -> dict[str, Any]:
    """Each wanted column as an Arrow array (zero-copy where the source allows)."""
    import pyarrow as pa

    from headrace.io.frames import table_flavor

    flavor = table_flavor(table)
    if flavor == "polars":
        import polars as pl

        frame = table.collect() if isinstance(table, pl.LazyFrame) else table
        chosen = list(names) if names is not None else frame.columns
        _missing(chosen, frame.columns)
        return {c: frame.get_column(c).to_arrow() for c in chosen}
    if flavor == "pandas":
        chosen = list(names) if names is not None else [str(c) for c in table.columns]
        _missing(chosen, [str(c) for c in table.columns])
        return {c: _from_pandas(table[c]) for c in chosen}
    if flavor == "arrow":
        chosen = list(names) if names is not None else table.column_names
        _missing(chosen, table.column_names)
        return {c: table.column(c).combine_chunks() for c in chosen}
    if isinstance(table, Mapping):
        chosen = list(names) if names is not None else [str(c) for c in table]
        _missing(chosen, [str(c) for c in table])
        return {c: pa.array(table[c]) for c in chosen}
    raise DriftError(
        f"expected a pandas, polars or Arrow table, got {type(table).__module__}."
        f"{type(table).__name__}"
    )


def _from_pandas(series: Any) -> Any:
    import pyarrow as pa

    try:
        return pa.array(series, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed objects: compared as text
        return pa.array(series.astype("string"), from_pandas=True)


def _missing(wanted: Sequence[str], present: Sequence[str]) -> None:
    have = set(present)
    for name in wanted:
        if name not in have:
            raise DriftError(
                f"column {name!r} is not in the table (it has {', '.join(present)})",
                column=name,
            )


def _kind(array: Any) -> str | None:
    import pyarrow as pa

    kind = array.type
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        return "numeric"
    if (
        pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
        or pa.types.is_string_view(kind)
        or pa.types.is_boolean(kind)
    ):
        return "categorical"
    if pa.types.is_null(kind):
        return "empty"
    return None


def _numeric_values(array: Any) -> tuple[Any, int]:
    """The finite values, sorted, and how many were null or not finite."""
    import pyarrow as pa

    from headrace.drift.stats import sorted_finite

    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    if pa.types.is_decimal(array.type):
        array = array.cast(pa.float64())
    values = sorted_finite(array.drop_null().to_numpy(zero_copy_only=False))
    return values, len(array) - int(values.size)


def _level_counts(array: Any) -> tuple[dict[Any, int], int]:
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    counted = pc.value_counts(array.drop_null())
    levels = counted.field("values").to_pylist()
    counts = counted.field("counts").to_pylist()
    return dict(zip(levels, counts, strict=True)), array.null_count


def _workers(columns: int) -> int:
    return max(1, min(columns, os.cpu_count() or 1))


class DriftDetector:
    """Drift of a current table against a reference (see the module's docstring).

    ``columns``: the columns to compare (every column of the reference by default);
    ``tests``: per column, a method name or a :class:`ColumnTest`; ``numeric`` and
    ``categorical``: the test for every column of that kind (instead of the size-based
    default); ``categorical_columns``: columns compared as categories whatever their
    type; ``drift_share``: the share of drifted columns at which the dataset drifts."""

    def __init__(
        self,
        columns: Sequence[str] | None = None,
        *,
        tests: Mapping[str, str | ColumnTest] | None = None,
        numeric: str | ColumnTest | None = None,
        categorical: str | ColumnTest | None = None,
        categorical_columns: Sequence[str] = (),
        drift_share: float = 0.5,
        bins: int = BINS,
        workers: int | None = None,
    ) -> None:
        if not 0 < drift_share <= 1:
            raise DriftError(f"drift_share must be in (0, 1] (got {drift_share})")
        if bins < 2:
            raise DriftError(f"bins must be at least 2 (got {bins})")
        self.columns = list(columns) if columns is not None else None
        self.tests = {name: _test(t) for name, t in (tests or {}).items()}
        self.numeric = _test(numeric) if numeric is not None else None
        self.categorical = _test(categorical) if categorical is not None else None
        self.categorical_columns = set(categorical_columns)
        self.drift_share = drift_share
        self.bins = bins
        self.workers = workers
        self.references: dict[str, Any] = {}
        self.skipped: dict[str, str] = {}

    # -- fit ------------------------------------------------------------------------

    def fit(self, reference: Any) -> DriftDetector:
        """Read each reference column once and keep what its test needs."""
        arrays = _arrow_columns(reference, self.columns)
        for name in self.tests:
            if name not in arrays:
                raise DriftError(
                    f"a test is given for column {name!r}, which is not compared", column=name
                )
        self.references, self.skipped = {}, {}
        with ThreadPoolExecutor(self.workers or _workers(len(arrays))) as pool:
            fitted = list(pool.map(lambda item: (item[0], self._fit(*item)), arrays.items()))
        for name, result in fitted:
            if isinstance(result, str):
                self.skipped[name] = result
            else:
                self.references[name] = result
                self._choose(name, result)  # a test that cannot apply fails now
        return self

    def _fit(self, name: str, array: Any) -> Any:
        from headrace.drift.stats import FEW_VALUES, CategoricalReference, NumericReference

        kind = _kind(array)
        if kind is None:
            if name in self.tests:
                raise DriftError(
                    f"column {name!r} is {array.type}; drift needs numbers or categories",
                    column=name,
                )
            return f"type {array.type} is neither numeric nor categorical"
        if kind == "empty" or array.null_count == len(array):
            return "no values in the reference"
        if kind == "numeric" and name not in self.categorical_columns:
            values, nulls = _numeric_values(array)
            if values.size == 0:
                return "no finite values in the reference"
            numeric = NumericReference.of(values, self.bins, nulls)
            if numeric.distinct > FEW_VALUES or self._forced_numeric(name):
                return numeric
        counts, nulls = _level_counts(array)
        return CategoricalReference(counts, sum(counts.values()), nulls)

    def _forced_numeric(self, name: str) -> bool:
        from headrace.drift.methods import METHODS

        given = self.tests.get(name)
        return given is not None and "categorical" not in METHODS[given.method].kinds

    def _choose(self, name: str, reference: Any) -> ColumnTest:
        from headrace.drift.methods import METHODS
        from headrace.drift.stats import CategoricalReference

        kind = "categorical" if isinstance(reference, CategoricalReference) else "numeric"
        test = self.tests.get(name) or (self.numeric if kind == "numeric" else self.categorical)
        if test is None:
            small = reference.count <= SMALL_SAMPLE
            if kind == "numeric":
                test = ColumnTest("ks" if small else "wasserstein")
            elif small:
                test = ColumnTest("z" if len(reference.counts) <= 2 else "chi2")
            else:
                test = ColumnTest("jensen_shannon")
        if kind not in METHODS[test.method].kinds:
            raise DriftError(
                f"column {name!r} is {kind}; {test.method} compares "
                f"{' or '.join(sorted(METHODS[test.method].kinds))} columns",
                column=name,
            )
        return test

    # -- score ----------------------------------------------------------------------

    def score(self, current: Any) -> DatasetDrift:
        """Each column's drift against the fitted reference, and the dataset's."""
        if not self.references and not self.skipped:
            raise DriftError("the detector is not fitted: call fit(reference) first")
        arrays = _arrow_columns(current, list(self.references))
        with ThreadPoolExecutor(self.workers or _workers(len(arrays))) as pool:
            results = list(pool.map(lambda item: self._score(*item), arrays.items()))
        drifted = sum(r.drifted for r in results)
        share = drifted / len(results) if results else 0.0
        return DatasetDrift(
            columns=results,
            share=share,
            threshold=self.drift_share,
            drifted=bool(results) and share >= self.drift_share,
            skipped=dict(self.skipped),
        )

    def _score(self, name: str, array: Any) -> ColumnDrift:
        from headrace.drift.methods import METHODS, run
        from headrace.drift.stats import CategoricalCurrent, CategoricalReference, NumericCurrent

        reference = self.references[name]
        test = self._choose(name, reference)
        kind = _kind(array)
        if isinstance(reference, CategoricalReference):
            if kind not in ("numeric", "categorical", "empty"):
                raise DriftError(
                    f"column {name!r} is {array.type} in the current table; the reference "
                    "has categories",
                    column=name,
                )
            counts, nulls = _level_counts(array)
            current: Any = CategoricalCurrent(counts, nulls)
            column_kind = "categorical"
        else:
            if kind not in ("numeric", "empty"):
                raise DriftError(
                    f"column {name!r} is {array.type} in the current table; the reference "
                    "has numbers",
                    column=name,
                )
            values, nulls = _numeric_values(array)
            current = NumericCurrent(values, nulls)
            column_kind = "numeric"
        if current.count == 0:
            raise DriftError(f"column {name!r} has no values in the current table", column=name)
        method = METHODS[test.method]
        threshold = test.threshold if test.threshold is not None else method.threshold
        score, p_value = run(test.method, reference, current)
        drifted = (
            p_value < threshold if method.p_value and p_value is not None else score >= threshold
        )
        return ColumnDrift(
            column=name,
            kind=column_kind,
            method=test.method,
            score=score,
            p_value=p_value,
            threshold=threshold,
            drifted=bool(drifted),
            reference_rows=reference.count,
            current_rows=current.count,
            reference_nulls=reference.nulls,
            current_nulls=nulls,
        )

    # -- profiles -------------------------------------------------------------------

    def profile(self) -> dict[str, Any]:
        """The fitted reference as a compact JSON-able dict (see the module docstring)."""
        if not self.references and not self.skipped:
            raise DriftError("the detector is not fitted: call fit(reference) first")
        return {
            "format": 1,
            "drift_share": self.drift_share,
            "bins": self.bins,
            "columns": {name: ref.to_profile() for name, ref in self.references.items()},
            "skipped": dict(self.skipped),
            "tests": {
                name: {"method": t.method, "threshold": t.threshold}
                for name, t in self.tests.items()
            },
        }

    @classmethod
    def from_profile(cls, data: Mapping[str, Any], **options: Any) -> DriftDetector:
        """A fitted detector from :meth:`profile` (``options`` override its settings)."""
        from headrace.drift.stats import CategoricalReference, NumericReference

        if data.get("format") != 1 or "columns" not in data:
            raise DriftError("not a drift profile (expected format 1 with columns)")
        settings: dict[str, Any] = {
            "drift_share": data.get("drift_share", 0.5),
            "bins": data.get("bins", BINS),
            "tests": {
                name: ColumnTest(t["method"], t.get("threshold"))
                for name, t in data.get("tests", {}).items()
            },
        }
        settings.update(options)
        detector = cls(list(data["columns"]), **settings)
        for name, column in data["columns"].items():
            kind = column.get("kind")
            if kind == "numeric":
                detector.references[name] = NumericReference.from_profile(column)
            elif kind == "categorical":
                detector.references[name] = CategoricalReference.from_profile(column)
            else:
                raise DriftError(f"column {name!r}: unknown kind {kind!r} in the profile")
            detector._choose(name, detector.references[name])
        detector.skipped = dict(data.get("skipped", {}))
        return detector


def _test(value: str | ColumnTest) -> ColumnTest:
    return value if isinstance(value, ColumnTest) else ColumnTest(str(value))


def drift(reference: Any, current: Any, **options: Any) -> DatasetDrift:
    """``DriftDetector(**options).fit(reference).score(current)`` in one call."""
    return DriftDetector(**options).fit(reference).score(current)

"""What a drift test needs of a column, computed once: the reference side (kept by
``fit`` or rebuilt from a stored profile) and the current side (built per ``score``).

A numeric reference keeps its values sorted. A reference restored from a compact
profile keeps its quantiles instead (a sorted sample standing for the whole column),
with the true count for p-values. Both give the same kind of object to the tests, so a
monitor need not re-read the training data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: distinct values at or under which a numeric column is compared as categories
FEW_VALUES = 5
#: quantiles kept for a numeric column in a compact profile
PROFILE_QUANTILES = 1000
#: levels kept for a categorical column in a compact profile (the rest are summed)
PROFILE_LEVELS = 10_000
OTHER = "(other)"


def sorted_finite(values: Any) -> np.ndarray:
    """A column's finite values as a sorted float64 array (nulls, NaN and ±inf dropped)."""
    array = np.asarray(values, dtype=np.float64)
    if array.size and not np.isfinite(array).all():
        array = array[np.isfinite(array)]
    else:
        array = array.copy()
    array.sort()
    return array


def distinct_sorted(array: np.ndarray) -> int:
    return 0 if array.size == 0 else int(np.count_nonzero(np.diff(array)) + 1)


def quantile_edges(sorted_values: np.ndarray, bins: int) -> np.ndarray:
    """Interior cut points splitting the values into ``bins`` near-equal groups."""
    if sorted_values.size == 0:
        return np.empty(0)
    points = np.quantile(sorted_values, np.linspace(0, 1, bins + 1)[1:-1])
    return np.unique(points)


def bin_shares(sorted_values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """The share of values in each bin (``len(edges) + 1`` bins; right edge inclusive)."""
    cuts = np.searchsorted(sorted_values, edges, side="right")
    counts = np.diff(np.concatenate([[0], cuts, [sorted_values.size]]))
    return counts / max(sorted_values.size, 1)


@dataclass
class NumericReference:
    values: np.ndarray  # sorted: every value, or the quantiles of a profile
    count: int  # finite values in the reference
    mean: float
    std: float
    distinct: int
    edges: np.ndarray  # bin cut points for PSI and Jensen-Shannon
    shares: np.ndarray  # the reference's share per bin
    exact: bool  # values holds every value (not a quantile sketch)
    nulls: int = 0

    @classmethod
    def of(cls, sorted_values: np.ndarray, bins: int, nulls: int = 0) -> NumericReference:
        edges = quantile_edges(sorted_values, bins)
        return cls(
            values=sorted_values,
            count=int(sorted_values.size),
            mean=float(sorted_values.mean()) if sorted_values.size else float("nan"),
            std=float(sorted_values.std()) if sorted_values.size else float("nan"),
            distinct=distinct_sorted(sorted_values),
            edges=edges,
            shares=bin_shares(sorted_values, edges),
            exact=True,
            nulls=nulls,
        )

    def to_profile(self, quantiles: int = PROFILE_QUANTILES) -> dict[str, Any]:
        values = self.values
        if self.exact and values.size > quantiles:
            values = np.quantile(values, (np.arange(quantiles) + 0.5) / quantiles)
        return {
            "kind": "numeric",
            "values": values.tolist(),
            "exact": bool(self.exact and values.size == self.count),
            "count": self.count,
            "mean": self.mean,
            "std": self.std,
            "distinct": self.distinct,
            "edges": self.edges.tolist(),
            "shares": self.shares.tolist(),
            "nulls": self.nulls,
        }

    @classmethod
    def from_profile(cls, data: dict[str, Any]) -> NumericReference:
        return cls(
            values=np.asarray(data["values"], dtype=np.float64),
            count=int(data["count"]),
            mean=float(data["mean"]),
            std=float(data["std"]),
            distinct=int(data["distinct"]),
            edges=np.asarray(data["edges"], dtype=np.float64),
            shares=np.asarray(data["shares"], dtype=np.float64),
            exact=bool(data["exact"]),
            nulls=int(data.get("nulls", 0)),
        )


@dataclass
class CategoricalReference:
    counts: dict[Any, int]  # level -> rows
    count: int
    nulls: int = 0

    def to_profile(self, levels: int = PROFILE_LEVELS) -> dict[str, Any]:
        items = sorted(self.counts.items(), key=lambda kv: -kv[1])
        kept, rest = items[:levels], items[levels:]
        if rest:
            kept.append((OTHER, sum(n for _, n in rest)))
        return {
            "kind": "categorical",
            "levels": [[_plain(k), int(n)] for k, n in kept],
            "count": self.count,
            "nulls": self.nulls,
        }

    @classmethod
    def from_profile(cls, data: dict[str, Any]) -> CategoricalReference:
        return cls(
            counts={k: int(n) for k, n in data["levels"]},
            count=int(data["count"]),
            nulls=int(data.get("nulls", 0)),
        )


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


@dataclass
class NumericCurrent:
    """The current column's statistics, each computed at most once."""

    values: np.ndarray  # sorted finite values
    nulls: int = 0
    _cache: dict[str, Any] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return int(self.values.size)

    def shares(self, reference: NumericReference) -> np.ndarray:
        if "shares" not in self._cache:
            self._cache["shares"] = bin_shares(self.values, reference.edges)
        return self._cache["shares"]  # type: ignore[no-any-return]

    def cdfs(self, reference: NumericReference) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Both empirical CDFs at each distinct value of the merged samples (and those
        values): one stable sort of the two sorted runs, the origin of each value from
        the sort order, and the counts at the end of each run of equal values."""
        if "cdfs" not in self._cache:
            ref_values = reference.values
            both = np.concatenate([ref_values, self.values])
            order = np.argsort(both, kind="stable")  # two sorted runs: a linear merge
            merged = both[order]
            from_reference = np.cumsum(order < ref_values.size)
            from_current = np.arange(1, merged.size + 1) - from_reference
            ends = np.flatnonzero(np.diff(merged))
            ends = np.append(ends, merged.size - 1)
            self._cache["cdfs"] = (
                merged[ends],
                from_reference[ends] / ref_values.size,
                from_current[ends] / self.values.size,
            )
        return self._cache["cdfs"]  # type: ignore[no-any-return]


@dataclass
class CategoricalCurrent:
    counts: dict[Any, int]
    nulls: int = 0

    @property
    def count(self) -> int:
        return sum(self.counts.values())


def aligned(
    reference: CategoricalReference, current: CategoricalCurrent
) -> tuple[list[Any], np.ndarray, np.ndarray]:
    """Both sides' counts over the union of their levels (reference's order first)."""
    levels = list(reference.counts)
    seen = set(levels)
    levels += [k for k in current.counts if k not in seen]
    ref = np.array([reference.counts.get(k, 0) for k in levels], dtype=np.float64)
    cur = np.array([current.counts.get(k, 0) for k in levels], dtype=np.float64)
    return levels, ref, cur

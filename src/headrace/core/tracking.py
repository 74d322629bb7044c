"""What a run logged, as plain data: written by the store, carried by step results."""

from __future__ import annotations

from dataclasses import dataclass, field

from headrace.errors import HeadraceError


class TrackingError(HeadraceError):
    """A tracking call or query that cannot be done as asked (names the run and key)."""


@dataclass(kw_only=True)
class Tracked:
    """What a run logged since the last write: written together, or not at all.

    ``metrics`` are (key, value, step, timestamp); ``artifacts`` (path, blob, size,
    time).
    """

    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    metrics: list[tuple[str, float, int, float]] = field(default_factory=list)
    artifacts: list[tuple[str, str, int, float]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.params or self.tags or self.metrics or self.artifacts)

    def extend(self, other: Tracked) -> None:
        self.params.update(other.params)
        self.tags.update(other.tags)
        self.metrics.extend(other.metrics)
        self.artifacts.extend(other.artifacts)

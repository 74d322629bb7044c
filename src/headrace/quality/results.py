"""What a validation found."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, kw_only=True)
class CheckResult:
    """The outcome of one check: its observed value, the rule, and failing rows."""

    name: str
    kind: str
    columns: tuple[str, ...]
    severity: str
    passed: bool
    observed: Any
    threshold: str
    failing_rows: int | None = None
    failing_fraction: float | None = None
    sample: list[dict[str, Any]] = field(default_factory=list)
    message: str = ""
    #: The limits the observed value was judged against (a statistic's bounds, an
    #: anomaly check's learned control limits), for control charts.
    lower: float | None = None
    upper: float | None = None


@dataclass(frozen=True, kw_only=True)
class ValidationReport:
    suite: str
    rows: int
    seconds: float
    results: list[CheckResult]

    @property
    def failed(self) -> list[CheckResult]:
        return [r for r in self.results if not r.passed]

    @property
    def errors(self) -> list[CheckResult]:
        """Failed checks of severity ``error``: these stop a run and block a merge."""
        return [r for r in self.failed if r.severity == "error"]

    @property
    def warnings(self) -> list[CheckResult]:
        return [r for r in self.failed if r.severity == "warn"]

    @property
    def success(self) -> bool:
        return not self.errors

    def __getitem__(self, name: str) -> CheckResult:
        for result in self.results:
            if result.name == name:
                return result
        raise KeyError(name)

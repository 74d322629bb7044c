"""Run observers: what the coordinator tells the world about a run as it goes.

An observer gets the facts that lineage and notifications need (which versions a step
read and wrote, with their schemas). Observers must not raise: a failure in one is
logged and the run goes on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, kw_only=True)
class VersionRef:
    """A version of an asset (partition) as observers see it."""

    asset: str
    partition: str | None
    version_id: str
    schema: list[list[str]] | None = None  # [[column, arrow type], ...]
    row_count: int | None = None


@dataclass(frozen=True, kw_only=True)
class RunInfo:
    run_id: str
    project: str
    selection: str
    branch: str
    params: dict[str, object]
    started_at: float


@dataclass(frozen=True, kw_only=True)
class StepEvent:
    """A step that started or finished (``status``: running, success, failed, skipped)."""

    run: RunInfo
    step_key: str
    asset: str
    partition: str | None
    status: str
    at: float
    description: str = ""
    inputs: list[VersionRef] = field(default_factory=list)
    output: VersionRef | None = None
    error: str | None = None
    traceback: str | None = None


class RunObserver(Protocol):
    def run_started(self, run: RunInfo) -> None: ...

    def step_started(self, event: StepEvent) -> None: ...

    def step_finished(self, event: StepEvent) -> None: ...

    def run_finished(self, run: RunInfo, status: str, at: float, error: str | None) -> None: ...

"""Progress callbacks of a run, for the CLI's live display (and later the UI)."""

from __future__ import annotations

from typing import Protocol


class Reporter(Protocol):
    def run_started(self, run_id: str, total: int) -> None: ...

    def step_started(self, key: str, attempt: int) -> None: ...

    def step_finished(
        self, key: str, status: str, duration_s: float | None, detail: str | None
    ) -> None: ...

    def run_finished(self, run_id: str, status: str) -> None: ...


class NullReporter:
    def run_started(self, run_id: str, total: int) -> None:
        return None

    def step_started(self, key: str, attempt: int) -> None:
        return None

    def step_finished(
        self, key: str, status: str, duration_s: float | None, detail: str | None
    ) -> None:
        return None

    def run_finished(self, run_id: str, status: str) -> None:
        return None

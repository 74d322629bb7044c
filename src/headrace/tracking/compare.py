"""Runs side by side: params, latest metrics, and metric histories (CSV, plots)."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from headrace.core.tracking import TrackingError

if TYPE_CHECKING:
    from headrace.runtime.workspace import Workspace
    from headrace.store.tracking import MetricPoint, TrackedRun


@dataclass(frozen=True)
class Comparison:
    runs: list[TrackedRun]
    history: list[tuple[str, MetricPoint]]

    @property
    def param_keys(self) -> list[str]:
        return sorted({k for r in self.runs for k in r.params})

    @property
    def metric_keys(self) -> list[str]:
        return sorted({k for r in self.runs for k in r.metrics})

    def label(self, run_id: str) -> str:
        run = next(r for r in self.runs if r.id == run_id)
        return f"{run.name} ({run_id[:16]})" if run.name else run_id[:16]

    def write_csv(self, path: str | Path) -> Path:
        target = Path(path)
        with target.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["run_id", "run_name", "metric", "step", "value", "timestamp"])
            names = {r.id: r.name or "" for r in self.runs}
            for run_id, point in self.history:
                writer.writerow(
                    [run_id, names[run_id], point.key, point.step, point.value, point.timestamp]
                )
        return target

    def plot(self, path: str | Path) -> Path:
        from headrace.tracking.plots import plot_histories

        series: dict[str, dict[str, list[tuple[int, float]]]] = {}
        for run_id, point in self.history:
            series.setdefault(point.key, {}).setdefault(self.label(run_id), []).append(
                (point.step, point.value)
            )
        return plot_histories(series, path)


def compare_runs(
    ws: Workspace, run_ids: Sequence[str], *, metrics: Sequence[str] | None = None
) -> Comparison:
    """The runs (ids or unique prefixes) with all their params and metrics."""
    if not run_ids:
        raise TrackingError("compare needs at least one run id")
    full = [ws.store.runs.get(run_id).id for run_id in run_ids]
    if len(set(full)) != len(full):
        raise TrackingError("the same run is named twice")
    quoted = ", ".join(f"'{run_id}'" for run_id in full)
    page = ws.store.tracking.search(
        filter=f"attributes.run_id IN ({quoted})", max_results=len(full)
    )
    by_id = {r.id: r for r in page.runs}
    runs = [by_id[run_id] for run_id in full]
    if metrics:
        known = {k for r in runs for k in r.metrics}
        missing = [m for m in metrics if m not in known]
        if missing:
            from headrace.core.graph import suggest

            raise TrackingError(
                f"no run here logged metric {missing[0]!r}{suggest(missing[0], known)}"
            )
        runs = [
            type(r)(
                **{**r.__dict__, "metrics": {k: v for k, v in r.metrics.items() if k in metrics}}
            )
            for r in runs
        ]
    return Comparison(runs=runs, history=ws.store.tracking.metric_history(full, metrics))

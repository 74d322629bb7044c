"""Evidently's side of the drift bench (its own venv, pandas < 3): a ``DataDriftPreset``
report (tests included) of the current frame against the reference, both from
``bench/workloads/drift_data.py``, with the numeric and categorical columns declared.

Usage: ``python evidently_run.py ROWS REPS``; prints one ``RESULT {json}`` line like
``headrace_run.py``: per column the method Evidently chose, its threshold, the drift
score and whether the column drifted, and the share of drifted columns.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("DO_NOT_TRACK", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as w
import drift_data


def _columns(snapshot: Any) -> tuple[dict[str, dict[str, Any]], float | None]:
    data = snapshot.dict()
    columns: dict[str, dict[str, Any]] = {}
    share = None
    for metric in data["metrics"]:
        name = str(metric.get("metric_name", ""))
        config = metric.get("config", {})
        if name.startswith("ValueDrift"):
            columns[config["column"]] = {
                "method": config.get("method"),
                "threshold": config.get("threshold"),
                "score": metric.get("value"),
            }
        elif name.startswith("DriftedColumnsCount"):
            value = metric.get("value")
            if isinstance(value, dict):
                share = value.get("share")
    for test in data.get("tests", []):
        column = test.get("metric_config", {}).get("params", {}).get("column")
        if column in columns:
            columns[column]["drifted"] = "FAIL" in str(test.get("status"))
    return columns, share


def main() -> None:
    rows, reps = int(sys.argv[1]), int(sys.argv[2])
    reference, current = w.frames(rows)
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    data = w.data_mib(reference, current)
    before = w.peak_rss_mib()
    definition = DataDefinition(
        numerical_columns=drift_data.NUMERIC, categorical_columns=drift_data.CATEGORICAL
    )
    cpu, wall = [], []
    snapshot = None
    for _ in range(reps):
        started, ticks = time.perf_counter(), time.process_time()
        report = Report([DataDriftPreset()], include_tests=True)
        snapshot = report.run(
            Dataset.from_pandas(current, data_definition=definition),
            Dataset.from_pandas(reference, data_definition=definition),
        )
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - ticks)
    assert snapshot is not None
    columns, share = _columns(snapshot)
    import evidently

    w.emit(
        {
            "tool": "evidently",
            "version": getattr(evidently, "__version__", "?"),
            "rows": rows,
            "cpu_s": cpu,
            "wall_s": wall,
            "data_mib": data,
            "rss_after_data_mib": before,
            "peak_rss_mib": w.peak_rss_mib(),
            "share": share,
            "columns": columns,
        }
    )


if __name__ == "__main__":
    main()

"""headrace's side of the drift bench (project venv): ``DriftDetector().fit(reference)
.score(current)`` on the frames of ``bench/workloads/drift_data.py``, defaults only.

Usage: ``python headrace_run.py ROWS REPS``; prints one ``RESULT {json}`` line: CPU and
wall seconds per rep (fit and score together; CPU counts every thread of the process),
peak RSS over the RSS once the data exists, and per column the method, score, p-value,
threshold and flag.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as w


def main() -> None:
    rows, reps = int(sys.argv[1]), int(sys.argv[2])
    reference, current = w.frames(rows)
    from headrace.drift import DriftDetector

    data = w.data_mib(reference, current)
    before = w.peak_rss_mib()
    cpu, wall = [], []
    result = None
    for _ in range(reps):
        started, ticks = time.perf_counter(), time.process_time()
        result = DriftDetector().fit(reference).score(current)
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - ticks)
    assert result is not None
    w.emit(
        {
            "tool": "headrace",
            "rows": rows,
            "cpu_s": cpu,
            "wall_s": wall,
            "data_mib": data,
            "rss_after_data_mib": before,
            "peak_rss_mib": w.peak_rss_mib(),
            "share": result.share,
            "drifted": result.drifted,
            "columns": {
                c.column: {
                    "method": c.method,
                    "score": c.score,
                    "p_value": c.p_value,
                    "threshold": c.threshold,
                    "drifted": c.drifted,
                }
                for c in result.columns
            },
        }
    )


if __name__ == "__main__":
    main()

"""Shared by both sides of the drift bench: the frames, resource figures, the result line."""

from __future__ import annotations

import json
import resource
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "workloads"))

import drift_data


def frames(rows: int) -> tuple[Any, Any]:
    return drift_data.frame(rows, current=False), drift_data.frame(rows, current=True)


def data_mib(*tables: Any) -> float:
    return sum(float(t.memory_usage(deep=True).sum()) for t in tables) / 2**20


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def emit(result: dict[str, Any]) -> None:
    print("RESULT " + json.dumps(result, default=str), flush=True)

"""Builders of the records the store tests write."""

from __future__ import annotations

import os
from typing import Any

from headrace.store.records import RunRecord
from headrace.store.runs import NewVersion, StepOutcome


def new_id(prefix: str = "") -> str:
    """A 32-character id starting with ``prefix``."""
    return (prefix + os.urandom(16).hex())[:32]


def make_run(run_id: str | None = None, **overrides: Any) -> RunRecord:
    values: dict[str, Any] = {
        "id": run_id or new_id(),
        "status": "running",
        "selection": "*",
        "params": {"alpha": 0.5, "names": ["a", "b"]},
        "partitions": ["2024-01-01", "2024-01-02"],
        "branch": "main",
        "trigger": "cli",
        "executor": "threads",
        "max_concurrency": 4,
        "force": False,
        "host": "host-1",
        "pid": 4242,
        "plan": [["raw", None], ["clean", "2024-01-01"]],
        "created_at": 1_700_000_000.25,
        "started_at": 1_700_000_000.5,
    }
    values.update(overrides)
    return RunRecord(**values)


def make_version(
    asset: str = "clean", version_id: str | None = None, **overrides: Any
) -> NewVersion:
    values: dict[str, Any] = {
        "id": version_id or new_id(),
        "asset": asset,
        "partition": None,
        "kind": "table",
        "format": "parquet",
        "flavor": "pandas",
        "blob": "ab" * 32,
        "size": 1234,
        "row_count": 10,
        "schema": [["x", "int64"], ["y", "string"]],
        "code_version": "c" * 64,
        "params": {"alpha": 0.5},
        "cache_key": "k" * 64,
        "inputs": [],
    }
    values.update(overrides)
    return NewVersion(**values)


def success(
    run_id: str, key: str, version: NewVersion | None, *, at: float = 1_700_000_100.0, **extra: Any
) -> StepOutcome:
    values: dict[str, Any] = {
        "run_id": run_id,
        "key": key,
        "status": "success",
        "attempt": 1,
        "ended_at": at,
        "duration_s": 1.5,
        "version_id": None if version is None else version.id,
        "cache_key": None if version is None else version.cache_key,
        "new_version": version,
    }
    values.update(extra)
    return StepOutcome(**values)

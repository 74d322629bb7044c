"""Functions run in separate processes by the concurrency tests (importable by spawn)."""

from __future__ import annotations

import os
from typing import Any


def merge_worker(barrier: Any, results: Any, root: str, url: str, source: str) -> None:
    import headrace as hr
    from headrace.data.branching import merge
    from headrace.store.errors import BranchConflictError

    with hr.open_workspace(root, metadata_url=url) as ws:
        ws.store  # noqa: B018  (open before the race)
        barrier.wait()
        try:
            result = merge(ws, source, "main")
            results.put((source, "merged", len(result.moves)))
        except BranchConflictError as exc:
            results.put((source, "conflict", str(exc)))


def materialize_worker(barrier: Any, results: Any, root: str, url: str, tag: str) -> None:
    import headrace as hr

    os.environ["HR_TAG"] = tag
    with hr.open_workspace(root, metadata_url=url) as ws:
        ws.store  # noqa: B018
        ws.graph  # noqa: B018
        barrier.wait()
        result = hr.materialize("slow_value", workspace=ws)
        state = result.steps["slow_value"]
        results.put((tag, state.status, state.error or "", state.version_id or ""))

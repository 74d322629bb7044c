"""Several daemons on one PostgreSQL store evaluate the same moment: every tick is
queued once, whoever gets there first."""

from __future__ import annotations

from pathlib import Path

import pytest

from headrace.runtime.workspace import open_workspace
from tests.projects import write_project

from .workers import evaluate_at

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

PROJECT = """
from headrace import automation as auto


@hr.asset
def a() -> int:
    return 1


auto.pipeline("p", "a")
for i in range(40):
    auto.schedule(f"s{i}", "p", every="1h", catch_up="all")
"""


def test_four_daemons_queue_each_tick_once(
    tmp_path: Path, postgres_url: str, run_processes: object
) -> None:
    root, _ = write_project(tmp_path, PROJECT)
    start = 1_800_000_000.0
    with open_workspace(root, metadata_url=postgres_url) as ws:
        from headrace.scheduling.daemon import run_once

        run_once(ws, now=start, run=False)  # the schedules start ticking
    later = start + 5 * 3600 + 60  # five ticks each
    counts = run_processes(  # type: ignore[operator]
        evaluate_at, [(str(root), postgres_url, later)] * 4, timeout=180
    )
    assert sum(counts) == 40 * 5
    with open_workspace(root, metadata_url=postgres_url) as ws:
        rows = ws.store.queue.list(limit=10_000)
        assert len(rows) == 200
        assert len({r.dedupe_key for r in rows}) == 200

"""A pipeline run whose store goes away while a step runs: the step's record waits in
memory and is written once the store is back; the run ends once, every step run once."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import pytest

from headrace.orchestration.service import materialize
from headrace.runtime.workspace import open_workspace
from tests.outage.cluster import PrivateCluster, wait_for
from tests.projects import write_project

pytestmark = pytest.mark.integration

PROJECT = """
import time
from pathlib import Path

HERE = Path(__file__).parent


@hr.asset
def first() -> int:
    return 1


@hr.asset
def slow(first: int) -> int:
    (HERE / "slow.started").touch()
    while not (HERE / "go").exists():
        time.sleep(0.02)
    with open(HERE / "slow.log", "a") as log:
        log.write("ran\\n")
    return first + 1
"""


def test_a_steps_record_waits_for_the_store_and_the_run_ends_once(
    cluster: PrivateCluster, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = cluster.database()
    root, _ = write_project(tmp_path / "ws", PROJECT)
    outcome: dict[str, Any] = {}
    with open_workspace(root, metadata_url=url) as ws:
        _ = ws.store  # opened (and migrated) before the outage

        def run() -> None:
            try:
                outcome["result"] = materialize(ws, "first+")
            except Exception as exc:
                outcome["error"] = exc

        with caplog.at_level(logging.WARNING, logger="headrace.orchestration"):
            running = threading.Thread(target=run)
            running.start()
            wait_for((root / "slow.started").exists, timeout=60, what="the slow step to start")
            cluster.stop()
            (root / "go").touch()  # the step ends while the store is away
            wait_for(
                lambda: any("the metadata store is unreachable" in r.getMessage()
                            for r in caplog.records),
                timeout=30,
                what="the run's recorder to find the store away",
            )  # fmt: skip
            cluster.start()
            running.join(timeout=120)
        assert "error" not in outcome, outcome
        result = outcome["result"]
        assert result.success
        assert (root / "slow.log").read_text() == "ran\n"
        record = ws.store.runs.get(result.run_id)
        assert record.status == "success"
        steps = {s.key: s for s in ws.store.runs.steps(result.run_id)}
        assert {k: s.status for k, s in steps.items()} == {"first": "success", "slow": "success"}
        assert steps["slow"].version_id is not None
        assert len(ws.store.versions.heads("main", ["first", "slow"])) == 2

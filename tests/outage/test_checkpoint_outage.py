"""The daemon's audit checkpoints across a stopped PostgreSQL: the outage is a retry
with backoff, never the daemon's end, and the checkpoint is taken once the store is back."""

from __future__ import annotations

from pathlib import Path

import pytest

from headrace.runtime.audit import anchored
from headrace.runtime.workspace import open_workspace
from headrace.scheduling.daemon import Daemon
from tests.outage.cluster import PrivateCluster
from tests.projects import write_project

pytestmark = [pytest.mark.integration, pytest.mark.slow]

T0 = 1_800_000_000.0


def test_a_stopped_store_delays_the_checkpoint_and_never_stops_the_daemon(
    cluster: PrivateCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HEADRACE_AUDIT_KEY", raising=False)
    root, _ = write_project(tmp_path / "ws", "")
    with open_workspace(root, metadata_url=cluster.database()) as ws:
        for index in range(3):
            ws.store.governance.record("ana", "model.promote", f"churn/{index}", "ok")
        daemon = Daemon(ws, workers=0, reload=False)
        cluster.stop()
        daemon.step(now=T0)  # returns: the store is away, the step waits for it
        assert daemon.retry_in is not None and not daemon.availability.reachable
        assert anchored(ws) is None
        cluster.start()
        daemon.step(now=T0 + 1)  # back: the checkpoint it could not take is taken now
        assert daemon.retry_in is None and daemon.availability.reachable
        point = anchored(ws)
        assert point is not None and point.seq == 3
        assert [p.seq for p, _ in ws.store.governance.checkpoints()] == [3]

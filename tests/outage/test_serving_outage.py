"""``headrace serve`` while PostgreSQL is stopped under it: it keeps scoring, its
health says the store is away, and the predictions it answered meanwhile are in the
log once the store is back."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

import headrace as hr
from headrace.registry.service import set_alias
from tests.integration.conftest import HEADRACE
from tests.outage.cluster import PrivateCluster, free_port, wait_for
from tests.projects import write_project
from tests.serving.test_server import fitted, frame

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_scoring_answers_and_logs_through_the_outage(
    cluster: PrivateCluster, tmp_path: Path
) -> None:
    url = cluster.database()
    root, _ = write_project(tmp_path / "ws", "")
    with hr.open_workspace(root, metadata_url=url) as ws:
        hr.log_model(fitted(), "delay", frame=frame(), workspace=ws)
        set_alias(ws, "delay", "champion", 1)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADRACE_")}
    env["HEADRACE_METADATA_URL"] = url
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "serve.log"
    with open(log_path, "w") as log:
        server = subprocess.Popen(
            [*HEADRACE, "serve", "delay@champion", "--port", str(port)],
            cwd=root,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    body = {"dataframe_records": frame(2).to_dict("records")}

    def health() -> dict[str, Any]:
        try:
            answer: dict[str, Any] = httpx.get(f"{base}/health", timeout=5).json()
        except httpx.TransportError:
            return {}
        return answer

    def score() -> None:
        answer = httpx.post(f"{base}/invocations", json=body, timeout=30)
        assert answer.status_code == 200, answer.text
        assert len(answer.json()["predictions"]) == 2

    try:
        wait_for(lambda: health().get("status") == "ok", timeout=60, what="serve to start")
        score()
        cluster.stop()
        wait_for(
            lambda: health()["store"]["reachable"] is False,
            timeout=30,
            what="its health to say the store is away",
        )
        assert health()["status"] == "degraded"
        for _ in range(5):
            score()  # scoring needs no store
        wait_for(
            lambda: health()["prediction_log"]["pending_rows"] >= 1,
            timeout=30,
            what="the rows answered during the outage to wait for the store",
        )
        cluster.start()
        wait_for(
            lambda: (
                health().get("status") == "ok" and health()["prediction_log"]["pending_rows"] == 0
            ),
            timeout=60,
            what="the log to write what waited once the store is back",
        )
        score()
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    # uvicorn stops gracefully (the log's close writes what is left), then raises the
    # signal it caught again, as a single-process server does
    assert server.returncode in (0, -signal.SIGTERM)
    with hr.open_workspace(root, metadata_url=url) as ws:
        assert ws.store.predictions.count("delay") == 2 * 7  # every answered request
    said = log_path.read_text()
    assert "scoring server: the metadata store is unreachable" in said
    assert "scoring server: the metadata store is reachable again" in said

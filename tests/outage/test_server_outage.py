"""``headrace server`` while PostgreSQL is stopped under it: 503s in the documented
formats with ``Retry-After``, tokens seen lately still authenticate, the audit of
failed calls is written once the store is back, and the real MLflow client's call made
during the outage succeeds by itself once it is."""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from headrace.runtime.workspace import open_workspace
from tests.integration.conftest import HEADRACE
from tests.outage.cluster import PrivateCluster, free_port, wait_for
from tests.projects import write_project

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    # MLflow's own deprecation notices are not ours to fix
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
]


class Served:
    process: subprocess.Popen[bytes]

    def __init__(self, root: Path, url: str, base: str, admin: str, other: str) -> None:
        self.root, self.url, self.base, self.admin, self.other = root, url, base, admin, other

    def get(self, path: str, token: str | None = None) -> httpx.Response:
        headers = {"authorization": f"Bearer {token or self.admin}"}
        return httpx.get(self.base + path, headers=headers, timeout=30)

    def post(self, path: str, body: dict[str, Any], token: str | None = None) -> httpx.Response:
        headers = {"authorization": f"Bearer {token or self.admin}"}
        return httpx.post(self.base + path, json=body, headers=headers, timeout=30)

    def health(self) -> dict[str, Any]:
        answer: dict[str, Any] = httpx.get(self.base + "/api/v1/health", timeout=30).json()
        return answer


@pytest.fixture
def served(
    cluster: PrivateCluster, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Served]:
    """``headrace server`` on a private cluster; with its daemon beside it when the test
    is parametrised ``served`` = True."""
    beside = bool(getattr(request, "param", False))
    url = cluster.database()
    root, _ = write_project(tmp_path / "ws", "")
    with open_workspace(root, metadata_url=url) as ws:
        ws.store.governance.create_first_admin("root")
        admin = ws.store.governance.issue_token("root")
        ws.store.governance.create_principal("ana", role="developer", actor="root")
        other = ws.store.governance.issue_token("ana", actor="root")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADRACE_")}
    env["HEADRACE_METADATA_URL"] = url
    log = open(tmp_path / "server.log", "w")  # noqa: SIM115 (closed below)
    process = subprocess.Popen(
        [*HEADRACE, "server", "--port", str(port), "--daemon" if beside else "--no-daemon"],
        cwd=root,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    running = Served(root, url, f"http://127.0.0.1:{port}", admin, other)
    running.process = process

    def answers() -> bool:
        try:
            return running.health()["status"] == "ok"
        except httpx.TransportError:
            return False

    try:
        wait_for(answers, timeout=60, what="headrace server to answer")
        yield running
    finally:
        process.terminate()
        process.wait(timeout=60)
        log.close()


@pytest.mark.parametrize("served", [True], indirect=True, ids=["with-daemon"])
def test_the_server_answers_503_with_retry_after_and_audits_later(
    served: Served, cluster: PrivateCluster
) -> None:
    assert served.get("/api/v1/whoami").json()["name"] == "root"  # the admin's token: seen
    run = served.post("/api/2.0/mlflow/runs/create", {"experiment_id": "0"}).json()["run"]
    run_id = run["info"]["run_id"]
    metric = {"run_id": run_id, "key": "loss", "value": 0.5, "timestamp": 1, "step": 0}

    cluster.stop()
    # a call that needs the store: MLflow's format, 503, Retry-After in seconds
    logged = served.post("/api/2.0/mlflow/runs/log-metric", metric)
    assert logged.status_code == 503, logged.text
    assert logged.headers["content-type"] == "application/json"
    assert 1 <= int(logged.headers["retry-after"]) <= 5
    body = logged.json()
    assert body["error_code"] == "TEMPORARILY_UNAVAILABLE"
    assert body["message"].startswith("the metadata store is unreachable")
    # headrace's own API: its format, the same status and header
    listed = served.get("/api/v1/principals")
    assert listed.status_code == 503 and listed.json()["error_code"] == "STORE_UNAVAILABLE"
    assert int(listed.headers["retry-after"]) >= 1
    # a token seen lately authenticates without the store; one never seen cannot be
    # checked (503, not a 401 that would tell its owner it is bad); a malformed one is 401
    me = served.get("/api/v1/whoami")
    assert me.status_code == 200 and me.json()["name"] == "root"
    unseen = served.get("/api/v1/whoami", served.other)
    assert unseen.status_code == 503 and unseen.json()["error_code"] == "STORE_UNAVAILABLE"
    assert served.get("/api/v1/whoami", "not-a-token").status_code == 401
    # health says so (and still answers 200); readiness does not
    health = served.health()
    assert health["status"] == "degraded" and health["store"]["reachable"] is False
    # the failed log-metric and the malformed token's auth.failed (reads: none)
    assert health["store"]["audit_pending"] == 2
    assert httpx.get(served.base + "/api/v1/ready", timeout=30).status_code == 503
    # and so do the daemon beside it and its worker, through their health files
    wait_for(
        lambda: (
            {(p["role"], p["store"]["reachable"]) for p in served.health()["processes"]}
            == {("daemon", False), ("worker", False)}
        ),
        timeout=30,
        what="the daemon and its worker to say in the server's health the store is away",
    )

    cluster.start()
    wait_for(
        lambda: (
            served.health()["store"] | {"reachable": True, "audit_pending": 0}
            == served.health()["store"]
        ),
        timeout=30,
        what="the server to find the store back and write the audit entries it kept",
    )
    health = served.health()
    assert health["store"]["audit_written_late"] >= 1 and health["store"]["audit_dropped"] == 0
    wait_for(
        lambda: all(p["store"]["reachable"] for p in served.health()["processes"]),
        timeout=30,
        what="the daemon and its worker to find the store back",
    )
    entries = served.get("/api/v1/audit?limit=1000").json()["entries"]
    late = [e for e in entries if e["action"] == "mlflow.log_metric"]
    assert [e["outcome"] for e in late] == ["failed"]
    assert "unreachable" in late[0]["details"]["error"]
    assert late[0]["details"]["happened_at"] <= late[0]["at"]
    # and it carries on
    again = served.post("/api/2.0/mlflow/runs/log-metric", metric)
    assert again.status_code == 200, again.text
    said = (served.root.parent / "server.log").read_text()
    assert "team server: the metadata store is unreachable" in said
    assert "team server: the metadata store is reachable again" in said
    assert "Traceback" not in said  # no plain-text 500s, no stack per request


def test_the_mlflow_client_rides_out_the_outage_by_itself(
    served: Served, cluster: PrivateCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    mlflow = pytest.importorskip("mlflow", reason="the mlflow client is a dev dependency")
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", served.admin)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "8")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    client = mlflow.MlflowClient(served.base)
    run_id = client.create_run("0").info.run_id
    client.log_metric(run_id, "loss", 1.0, step=0)

    cluster.stop()
    outcome: dict[str, Any] = {}

    def log() -> None:  # blocks in the client's own retries while the store is away
        try:
            client.log_metric(run_id, "loss", 0.5, step=1)
            outcome["ok"] = True
        except Exception as exc:
            outcome["error"] = exc

    during = threading.Thread(target=log)
    during.start()
    wait_for(
        lambda: served.health()["store"]["audit_pending"] >= 2,
        timeout=30,
        what="the client's call to be refused, and retried after Retry-After, while the "
        "store is away",
    )
    cluster.start()
    during.join(timeout=120)
    assert outcome == {"ok": True}
    history = client.get_metric_history(run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(0, 1.0), (1, 0.5)]


def test_audit_entries_still_waiting_at_exit_go_to_the_log(
    served: Served, cluster: PrivateCluster
) -> None:
    served.get("/api/v1/whoami")
    cluster.stop()
    body = {"name": "outage-test"}
    refused = served.post("/api/2.0/mlflow/experiments/create", body)
    assert refused.status_code == 503
    assert served.health()["store"]["audit_pending"] == 1
    served.process.terminate()  # while the store is still away
    served.process.wait(timeout=60)
    said = (served.root.parent / "server.log").read_text()
    assert "1 audit entries were not written" in said
    assert '["root", "experiment.create", "outage-test", "failed"' in said

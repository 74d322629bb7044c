"""The team server over loopback: tokens, roles, the audit of mutating calls, paging,
limits, health and metrics."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from headrace.runtime.workspace import Workspace
from headrace.server.app import MAX_BODY
from tests.server.conftest import TeamServer
from tests.serving.test_server import free_port


@pytest.fixture
def api(team_server: TeamServer) -> tuple[str, Workspace, str]:
    return team_server.api, team_server.ws, team_server.token


def test_tokens_roles_and_the_audit(api: tuple[str, Workspace, str]) -> None:
    url, ws, root = api
    assert httpx.get(f"{url}/health").json()["status"] == "ok"
    assert httpx.get(f"{url}/ready").json() == {"status": "ready"}
    anonymous = httpx.get(f"{url}/whoami")
    assert anonymous.status_code == 401 and "Bearer" in anonymous.json()["message"]
    forged = httpx.get(f"{url}/whoami", headers={"authorization": "Bearer hr_00_x"})
    assert forged.status_code == 401 and forged.json()["message"] == "unknown token"
    admin = {"authorization": f"Bearer {root}"}
    assert httpx.get(f"{url}/whoami", headers=admin).json()["roles"] == {"*": "admin"}

    made = httpx.post(f"{url}/principals", headers=admin, json={"name": "ana", "role": "viewer"})
    assert made.status_code == 201, made.text
    viewer = {"authorization": f"Bearer {made.json()['token']}"}
    assert httpx.get(f"{url}/whoami", headers=viewer).json()["name"] == "ana"
    refused = httpx.post(f"{url}/principals", headers=viewer, json={"name": "eve"})
    assert refused.status_code == 403
    body = refused.json()
    assert body["permission"] == "manage_principals" and body["role"] == "admin"
    assert "ana may not manage principals" in body["message"]
    assert "eve" not in [p.name for p in ws.store.governance.principals()]  # nothing touched

    twice = httpx.post(f"{url}/principals", headers=admin, json={"name": "ana"})
    assert twice.status_code == 409
    bad = httpx.post(f"{url}/principals", headers=admin, json={"name": "../x"})
    assert bad.status_code == 400 and "not a principal name" in bad.json()["message"]
    malformed = httpx.post(
        f"{url}/principals", headers={**admin, "content-type": "application/json"}, content=b"{"
    )
    assert malformed.status_code == 400 and "not valid JSON" in malformed.json()["message"]
    huge = httpx.post(f"{url}/principals", headers=admin, content=b"x" * (MAX_BODY + 1))
    assert huge.status_code == 413

    outcomes = [
        (e["actor"], e["action"], e["outcome"])
        for e in httpx.get(f"{url}/audit?limit=1000", headers=admin).json()["entries"]
        if e["action"] == "principal.create" and e["target"] == "/api/v1/principals"
    ]
    assert outcomes == [
        ("root", "principal.create", "ok"),
        ("ana", "principal.create", "denied"),
        ("root", "principal.create", "failed"),  # exists
        ("root", "principal.create", "failed"),  # a bad name
        ("root", "principal.create", "failed"),  # malformed JSON
    ]  # the oversized body is refused at the door, before anyone is authenticated
    assert httpx.get(f"{url}/audit/verify", headers=admin).json()["intact"] is True
    metrics = httpx.get(f"{url.rsplit('/api', 1)[0]}/metrics").text
    assert 'headrace_api_requests_total{route="/api/v1/principals",status="403"} 1.0' in metrics


def test_lists_are_paged(api: tuple[str, Workspace, str]) -> None:
    url, ws, root = api
    admin = {"authorization": f"Bearer {root}"}
    for index in range(5):
        ws.store.governance.create_principal(f"p{index}", actor="root")
    first = httpx.get(f"{url}/principals?limit=4", headers=admin).json()
    assert len(first["principals"]) == 4 and first["next_page_token"] == "4"
    rest = httpx.get(f"{url}/principals?limit=4&page_token=4", headers=admin).json()
    assert len(rest["principals"]) == 2 and rest["next_page_token"] is None
    assert httpx.get(f"{url}/principals?limit=0", headers=admin).status_code == 400
    assert httpx.get(f"{url}/principals?limit=5000", headers=admin).status_code == 400
    assert httpx.get(f"{url}/principals?page_token=x", headers=admin).status_code == 400


def test_headrace_server_runs_as_a_process(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess

    from tests.integration.conftest import HEADRACE
    from tests.projects import write_project

    write_project(tmp_path, "")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADRACE_")}
    process = subprocess.Popen(
        [*HEADRACE, "server", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.time() + 30
        while True:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/api/v1/ready", timeout=1)
                break
            except httpx.TransportError:
                assert time.time() < deadline and process.poll() is None, "no server"
                time.sleep(0.1)
        assert answer.json() == {"status": "ready"}
        assert httpx.get(f"http://127.0.0.1:{port}/api/v1/whoami").status_code == 401
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    # uvicorn handles SIGTERM (a graceful shutdown), then re-raises it on the way out
    assert process.returncode in (0, -signal.SIGTERM), output
    assert "Traceback" not in output
    # the automation daemon it started beside it ends with it
    daemon_pid = int(output.split("headrace daemon beside it (process ")[1].split(")")[0])
    deadline = time.time() + 15
    while time.time() < deadline:
        try:
            os.kill(daemon_pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        os.kill(daemon_pid, signal.SIGKILL)
        raise AssertionError("the daemon outlived the server")


@pytest.mark.postgres
def test_several_server_processes_share_one_postgresql_store(
    tmp_path: Path, postgres_url: str
) -> None:
    import os
    import signal
    import subprocess
    import threading

    from headrace.runtime.workspace import open_workspace
    from tests.integration.conftest import HEADRACE
    from tests.projects import write_project

    write_project(tmp_path, "")
    with open_workspace(tmp_path, metadata_url=postgres_url) as ws:
        ws.store.governance.create_first_admin("root")
        token = ws.store.governance.issue_token("root")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADRACE_")}
    env["HEADRACE_METADATA_URL"] = postgres_url
    process = subprocess.Popen(
        [*HEADRACE, "server", "--port", str(port), "--workers", "2", "--no-daemon"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    auth = {"authorization": f"Bearer {token}"}
    try:
        deadline = time.time() + 60
        while True:
            try:
                if httpx.get(f"{base}/api/v1/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.time() < deadline and process.poll() is None, "no server"
            time.sleep(0.1)
        pids: set[int] = set()
        failures: list[str] = []

        def client(index: int) -> None:
            for attempt in range(10):
                with httpx.Client(timeout=30) as one:  # a new connection each time
                    pids.add(one.get(f"{base}/api/v1/health").json()["process"])
                    made = one.post(
                        f"{base}/api/v1/branches",
                        json={"name": f"b{index}-{attempt}"},
                        headers=auth,
                    )
                    if made.status_code != 201:
                        failures.append(made.text)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert failures == []
        assert len(pids) == 2, pids  # both processes answered
        with open_workspace(tmp_path, metadata_url=postgres_url) as ws:
            assert len(ws.store.branches.list()) == 61  # main and the 60 made
            assert ws.store.governance.verify()[1] is None  # one chain across processes
            made = [e for e in ws.store.governance.audit(limit=1000) if e.action == "branch.create"]
            assert len(made) == 60
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
    assert "Traceback" not in output, output


def test_roles_granted_in_the_project_namespace_apply(team_server: TeamServer) -> None:
    project = team_server.ws.settings.project_name
    here = team_server.token_for("here", "developer", namespace=project)
    there = team_server.token_for("there", "developer", namespace="another-project")
    made = httpx.post(
        f"{team_server.api}/branches", json={"name": "mine"}, headers=team_server.headers(here)
    )
    assert made.status_code == 201
    refused = httpx.post(
        f"{team_server.api}/branches", json={"name": "theirs"}, headers=team_server.headers(there)
    )
    assert refused.status_code == 403
    assert refused.json()["namespace"] == project
    assert f"there may not write branch in {project!r}" in refused.json()["message"]


def test_a_body_that_stops_arriving_is_answered_408(
    team_server: TeamServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    from headrace.server import app as server_app

    monkeypatch.setattr(server_app, "BODY_TIMEOUT", 0.5)
    port = int(team_server.root.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        raw.sendall(
            b"POST /api/v1/branches HTTP/1.1\r\nHost: x\r\n"
            + f"Authorization: Bearer {team_server.token}\r\n".encode()
            + b'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"name":'
        )
        started = time.time()
        answer = raw.recv(4096).decode()
    assert answer.startswith("HTTP/1.1 408"), answer
    assert "did not arrive within 0.5 s" in answer and time.time() - started < 5
    assert [b.name for b in team_server.ws.store.branches.list()] == ["main"]


def test_admins_manage_principals_roles_and_tokens_over_http(team_server: TeamServer) -> None:
    api, admin = team_server.api, team_server.headers()
    dev_token = team_server.token_for("dev", "viewer")
    dev = team_server.headers(dev_token)
    assert httpx.post(f"{api}/branches", json={"name": "a"}, headers=dev).status_code == 403
    granted = httpx.post(f"{api}/principals/dev/grants", json={"role": "developer"}, headers=admin)
    assert granted.status_code == 200 and granted.json()["roles"] == {"*": "developer"}
    # the grant bites at once: this process's cached token is dropped
    assert httpx.post(f"{api}/branches", json={"name": "a"}, headers=dev).status_code == 201
    refused = httpx.post(f"{api}/principals/dev/grants", json={"role": "admin"}, headers=dev)
    assert refused.status_code == 403 and refused.json()["permission"] == "manage_principals"
    bad_role = httpx.post(f"{api}/principals/dev/grants", json={"role": "god"}, headers=admin)
    assert bad_role.status_code == 400 and "role" in bad_role.json()["message"]
    nobody = httpx.post(f"{api}/principals/ghost/grants", json={"role": "viewer"}, headers=admin)
    assert nobody.status_code in (400, 404) and "ghost" in nobody.json()["message"]

    issued = httpx.post(
        f"{api}/principals/dev/tokens", json={"expires_days": 1, "description": "ci"}, headers=admin
    )
    assert issued.status_code == 201
    second = issued.json()["token"]
    listed = httpx.get(f"{api}/principals/dev/tokens", headers=admin).json()["tokens"]
    assert len(listed) == 2 and all("secret" not in str(t) for t in listed)
    assert {t["description"] for t in listed} == {None, "ci"}
    token_id = second.split("_")[1]
    assert httpx.get(f"{api}/whoami", headers=team_server.headers(second)).status_code == 200
    assert httpx.delete(f"{api}/tokens/{token_id}", headers=admin).status_code == 200
    assert httpx.get(f"{api}/whoami", headers=team_server.headers(second)).status_code == 401

    assert httpx.post(f"{api}/principals/dev/disable", headers=admin).status_code == 200
    gone = httpx.get(f"{api}/whoami", headers=dev)
    assert gone.status_code == 401 and "disabled" in gone.json()["message"]
    assert httpx.post(f"{api}/principals/dev/enable", headers=admin).status_code == 200
    assert httpx.get(f"{api}/whoami", headers=dev).status_code == 200
    revoked = httpx.delete(f"{api}/principals/dev/grants", headers=admin)
    assert revoked.status_code == 200 and revoked.json()["roles"] == {}
    assert httpx.post(f"{api}/branches", json={"name": "b"}, headers=dev).status_code == 403

    ws = team_server.ws
    actions = [(e.actor, e.action, e.outcome) for e in ws.store.governance.audit(limit=1000)]
    for expected in [
        ("root", "role.grant", "ok"),
        ("dev", "role.grant", "denied"),
        ("root", "token.issue", "ok"),
        ("root", "token.revoke", "ok"),
        ("root", "principal.disable", "ok"),
        ("root", "principal.enable", "ok"),
        ("root", "role.revoke", "ok"),
    ]:
        assert expected in actions, expected
    assert actions.count(("root", "role.grant", "ok")) == 1  # recorded once, by the store
    assert ws.store.governance.verify()[1] is None

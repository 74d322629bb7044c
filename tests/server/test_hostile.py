"""Hostile bodies to the team server: deep nesting and non-finite numbers get a 400 in
the documented format (the MLflow routes in MLflow's), a caller without the right to a
route gets its 403 before the body is looked at, and a fault of the server is a JSON
500 with an error id. On SQLite and PostgreSQL (the refusals write audit entries)."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.server.conftest import TeamServer, running_server

DEEP = b"[" * 100_000 + b"]" * 100_000


@pytest.fixture
def server(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TeamServer]:
    url = request.getfixturevalue("postgres_url") if backend == "postgresql" else None
    with running_server(tmp_path / "ws", metadata_url=url, worker=False) as running:
        yield running


def post(url: str, body: bytes, token: str, **headers: str) -> httpx.Response:
    sent = {"authorization": f"Bearer {token}", "content-type": "application/json", **headers}
    return httpx.post(url, content=body, headers=sent, timeout=60)


def documented(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json", response.text
    payload = response.json()
    assert payload["error_code"] == code, payload
    return str(payload["message"])


def test_deep_nesting_is_a_400_on_every_kind_of_route(server: TeamServer) -> None:
    mlflow = f"{server.root}/api/2.0/mlflow"
    bodies = [
        DEEP,
        b'{"experiment_id": "0", "tags": ' + DEEP + b"}",
        b'{"experiment_id": NaN, "tags": ' + DEEP + b"}",  # a second parser reads NaN
        b'{"tags": ' + b"[" * 65 + b"]" * 65 + b"}",  # within orjson's limit, past ours
        b"[" * 100_000,  # never closed
    ]
    for body in bodies:
        for url, code in (
            (f"{mlflow}/runs/create", "INVALID_PARAMETER_VALUE"),
            (f"{server.root}/ajax-api/2.0/mlflow/runs/log-batch", "INVALID_PARAMETER_VALUE"),
            (f"{server.api}/branches", "BAD_REQUEST"),
            (f"{server.api}/runs", "BAD_REQUEST"),
        ):
            message = documented(post(url, body, server.token), 400, code)
            assert "nested more than 64 levels" in message, (url, message)
    zipped = gzip.compress(DEEP)
    message = documented(
        post(f"{mlflow}/runs/create", zipped, server.token, **{"content-encoding": "gzip"}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    assert "nested" in message
    # nesting an API needs still goes through
    tags = {"tags": [{"key": "k", "value": "v"}], "experiment_id": "0"}
    created = httpx.post(f"{mlflow}/runs/create", json=tags, headers=server.headers())
    assert created.status_code == 200, created.text
    assert httpx.get(f"{server.api}/health").status_code == 200


def test_non_finite_numbers_in_mlflow_bodies_are_refused_naming_the_field(
    server: TeamServer,
) -> None:
    mlflow = f"{server.root}/api/2.0/mlflow"
    run = httpx.post(f"{mlflow}/runs/create", json={"experiment_id": "0"}, headers=server.headers())
    run_id = run.json()["run"]["info"]["run_id"]
    for value in (b"1e400", b'"x"', b"[1]"):
        body = b'{"run_id": "%s", "key": "m", "value": %s, "timestamp": 1, "step": %s}' % (
            run_id.encode(),
            b"1",
            value,
        )
        message = documented(
            post(f"{mlflow}/runs/log-metric", body, server.token), 400, "INVALID_PARAMETER_VALUE"
        )
        assert "'step'" in message, message


def test_mlflow_numbers_and_strings_of_the_wrong_kind_are_a_400(server: TeamServer) -> None:
    mlflow = f"{server.root}/api/2.0/mlflow"
    for path, body, field in (
        ("runs/create", {"experiment_id": "0", "start_time": 2**70}, "start_time"),
        ("runs/create", {"experiment_id": "0", "start_time": -(2**64)}, "start_time"),
        ("runs/search", {"filter": 1.5}, "filter"),
        ("runs/search", {"page_token": ["1"]}, "page_token"),
        ("experiments/search", {"filter": {"name": "x"}}, "filter"),
        ("experiments/search", {"page_token": "9" * 5000}, "page_token"),
        ("experiments/search", {"max_results": "--5"}, "max_results"),
    ):
        answer = httpx.post(f"{mlflow}/{path}", json=body, headers=server.headers(), timeout=30)
        message = documented(answer, 400, "INVALID_PARAMETER_VALUE")
        assert f"'{field}'" in message, (path, message)
    listed = httpx.post(f"{mlflow}/runs/search", json={}, headers=server.headers()).json()
    assert listed.get("runs", []) == []  # the refused runs were never made


def test_the_right_to_a_route_is_checked_before_its_body(server: TeamServer) -> None:
    viewer = server.token_for("vera", "viewer")
    developer = server.token_for("dev", "developer")
    malformed = [b"{", b'{"nme": "x"}', b'{"name": 12}', b"\xff\xfe", b"[1, 2]"]
    for body in malformed:
        denied = post(f"{server.api}/branches", body, viewer)
        message = documented(denied, 403, "PERMISSION_DENIED")
        assert "write_branch" in message  # and nothing of what the body should hold
        assert set(denied.json()) == {"error_code", "message", "permission", "role", "namespace"}
        refused = post(f"{server.api}/branches", body, developer)
        documented(refused, 400, "BAD_REQUEST")
    queue = post(f"{server.api}/queue", b'{"pipeline": 5}', viewer)
    assert "may not run" in documented(queue, 403, "PERMISSION_DENIED")
    # the MLflow routes: the same order
    mlflow = f"{server.root}/api/2.0/mlflow"
    for path, permission in (("runs/log-metric", "log_run"), ("model-versions/create", "register")):
        denied = post(f"{mlflow}/{path}", b'{"key": [[["x"]]]}', viewer)
        assert permission.replace("_", " ") in documented(denied, 403, "PERMISSION_DENIED")
    alias = post(f"{mlflow}/registered-models/alias", b"{", developer)
    assert "promote model" in documented(alias, 403, "PERMISSION_DENIED")
    bad = post(f"{mlflow}/runs/log-metric", b"{", developer)
    documented(bad, 400, "INVALID_PARAMETER_VALUE")
    # no token at all: a 401, whatever the body
    anonymous = httpx.post(f"{server.api}/branches", content=b"{", timeout=30)
    documented(anonymous, 401, "UNAUTHENTICATED")
    entries = [(e.actor, e.action, e.outcome) for e in server.ws.store.governance.audit(limit=500)]
    assert entries.count(("vera", "branch.create", "denied")) == len(malformed)
    assert entries.count(("dev", "branch.create", "failed")) == len(malformed)
    assert ("vera", "queue.add", "denied") in entries
    assert ("vera", "mlflow.log_metric", "denied") in entries
    assert ("vera", "mlflow.create_model_version", "denied") in entries
    assert ("dev", "mlflow.set_alias", "denied") in entries
    assert ("dev", "mlflow.log_metric", "failed") in entries
    assert not [e for e in entries if e[0] == "vera" and e[2] != "denied"]
    assert server.ws.store.governance.verify()[1] is None


def test_faults_and_unknown_routes_answer_in_the_documented_format(
    server: TeamServer, caplog: pytest.LogCaptureFixture
) -> None:
    from fastapi import FastAPI

    app = server.app

    def boom() -> None:
        raise RuntimeError("a fault of the server")

    app.add_api_route("/api/v1/fault", boom, methods=["GET"], include_in_schema=False)
    answer = httpx.get(f"{server.api}/fault", headers=server.headers(), timeout=30)
    message = documented(answer, 500, "INTERNAL_ERROR")
    error_id = answer.json()["error_id"]
    assert len(error_id) == 16 and error_id in message and "fault" not in message
    assert any(error_id in r.getMessage() for r in caplog.records)
    missing = httpx.get(f"{server.api}/no-such-thing", headers=server.headers())
    documented(missing, 404, "NOT_FOUND")
    wrong = httpx.delete(f"{server.api}/health", headers=server.headers())
    documented(wrong, 405, "METHOD_NOT_ALLOWED")
    assert "GET" in wrong.headers["allow"]
    assert isinstance(app, FastAPI)

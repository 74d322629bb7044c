"""The scoring server over loopback: formats, errors, the prediction log, hot swap."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
import numpy as np
import pandas as pd
import pytest
import uvicorn
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import headrace as hr
from headrace.registry.service import set_alias
from headrace.runtime.workspace import Workspace
from headrace.serving.app import ServeOptions, create_app

COLUMNS = ["distance", "temp", "hour"]


def frame(rows: int = 200, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "distance": rng.integers(100, 3000, rows),
            "temp": rng.normal(50, 20, rows),
            "hour": rng.integers(5, 23, rows),
        }
    )


def fitted(c: float = 1.0) -> object:
    data = frame()
    labels = ((data.distance > 1500) ^ (data.temp < 40)).astype(int)
    return make_pipeline(StandardScaler(), LogisticRegression(C=c)).fit(data, labels)


class Exploding:
    """A model that fails on a poison value (a negative distance)."""

    def predict(self, x: np.ndarray) -> np.ndarray:
        if (np.asarray(x)[:, 0] < 0).any():
            raise RuntimeError("boom")
        return np.zeros(len(x), dtype=int)


@dataclass
class Running:
    url: str
    ws: Workspace
    app: object
    stop: object


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serve(ws: Workspace, uri: str, **options: object) -> Iterator[Running]:
    app = create_app(ws, ServeOptions(uri=uri, poll_seconds=0.2, **options))  # type: ignore[arg-type]
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not server.started and time.time() < deadline:
        time.sleep(0.02)
    assert server.started, "the server did not start"

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=30)

    try:
        yield Running(f"http://127.0.0.1:{port}", ws, app, stop)
    finally:
        stop()


@pytest.fixture
def running(ws: Workspace) -> Iterator[Running]:
    hr.log_model(fitted(), "delay", frame=frame(), workspace=ws)
    set_alias(ws, "delay", "champion", 1)
    with serve(ws, "delay@champion") as served:
        yield served


def test_the_mlflow_formats_score_alike(running: Running) -> None:
    data = frame(5, seed=9)
    expected = fitted().predict(data).tolist()  # type: ignore[attr-defined]
    split = {"dataframe_split": {"columns": list(data.columns), "data": data.values.tolist()}}
    bodies = [
        ("application/json", json.dumps(split)),
        (
            "application/json; charset=utf-8",
            json.dumps({"dataframe_records": data.to_dict("records")}),
        ),
        ("application/json", json.dumps({"instances": data.to_dict("records")})),
        ("application/json", json.dumps({"inputs": data.to_dict("list")})),
        ("application/json", json.dumps({"inputs": data.values.tolist()})),
        ("text/csv", data.to_csv(index=False)),
    ]
    for content_type, body in bodies:
        response = httpx.post(
            f"{running.url}/invocations", content=body, headers={"content-type": content_type}
        )
        assert response.status_code == 200, (content_type, response.text)
        assert response.json() == {"predictions": expected}, content_type
    simple = httpx.post(f"{running.url}/predict", json=data.iloc[0].to_dict())
    assert simple.json()["predictions"] == expected[:1]
    assert simple.json()["model"] == "delay" and simple.json()["version"] == 1
    assert simple.headers["x-request-id"] == simple.json()["request_id"]


def test_health_version_and_metrics(running: Running) -> None:
    assert httpx.get(f"{running.url}/ping").status_code == 200
    health = httpx.get(f"{running.url}/health").json()
    assert {k: health[k] for k in ("status", "model", "version")} == {
        "status": "ok",
        "model": "delay",
        "version": 1,
    }
    assert health["prediction_log"]["status"] == "ok"
    assert health["store"]["reachable"] is True
    assert httpx.get(f"{running.url}/version").json()["flavor"] == "sklearn"
    httpx.post(f"{running.url}/predict", json=frame(1).iloc[0].to_dict())
    httpx.post(
        f"{running.url}/invocations", content=b"{", headers={"content-type": "application/json"}
    )
    text = httpx.get(f"{running.url}/metrics").text
    assert 'headrace_requests_total{endpoint="predict",status="200"} 1.0' in text
    assert 'headrace_requests_total{endpoint="invocations",status="400"} 1.0' in text
    assert 'headrace_model_version{model="delay"} 1.0' in text
    assert "headrace_request_seconds_bucket" in text


@pytest.mark.parametrize(
    ("content_type", "body", "status", "field", "message"),
    [
        ("application/json", b"{not json", 400, "body", "not valid JSON"),
        ("application/json", b"", 400, "body", "empty"),
        ("application/json", b"[1, 2]", 400, "body", "exactly one of"),
        ("application/json", b'{"instances": [], "inputs": []}', 400, "body", "exactly one of"),
        (
            "application/json",
            b'{"dataframe_split": {"columns": ["distance"], "data": [[1, 2]]}}',
            400,
            "dataframe_split.data[0]",
            "list of 1 values",
        ),
        (
            "application/json",
            b'{"dataframe_records": [{"distance": 1, "temp": 2.0}]}',
            400,
            "hour",
            "column 'hour' is missing",
        ),
        (
            "application/json",
            b'{"dataframe_records": [{"distance": "far", "temp": 2.0, "hour": 3}]}',
            400,
            "distance",
            "column 'distance' is String",
        ),
        ("text/plain", b"distance,temp,hour\n1,2,3\n", 415, "content-type", "not supported"),
        ("text/csv", b"", 400, "body", "CSV body is empty"),
    ],
)
def test_bad_requests_get_a_4xx_naming_the_field(
    running: Running, content_type: str, body: bytes, status: int, field: str, message: str
) -> None:
    response = httpx.post(
        f"{running.url}/invocations", content=body, headers={"content-type": content_type}
    )
    assert response.status_code == status, response.text
    payload = response.json()
    assert payload["field"] == field and message in payload["message"]
    assert payload["error_code"] in ("BAD_REQUEST", "UNSUPPORTED_CONTENT_TYPE")


def test_a_huge_body_is_refused_before_it_is_read(ws: Workspace) -> None:
    hr.log_model(fitted(), "delay", frame=frame(), workspace=ws)
    with serve(ws, "delay", max_body=1000) as running:
        big = json.dumps({"dataframe_records": frame(100).to_dict("records")})
        response = httpx.post(
            f"{running.url}/invocations", content=big, headers={"content-type": "application/json"}
        )
        assert response.status_code == 413 and response.json()["field"] == "body"
        assert httpx.get(f"{running.url}/ping").status_code == 200  # still serving


def test_a_failing_model_gives_a_500_with_an_error_id(
    ws: Workspace, caplog: pytest.LogCaptureFixture
) -> None:
    hr.log_model(Exploding(), "fragile", frame=frame()[["distance"]], workspace=ws)
    with serve(ws, "fragile", allow_pickle=True) as running:
        ok = httpx.post(f"{running.url}/predict", json={"distance": 5})
        assert ok.status_code == 200
        bad = httpx.post(f"{running.url}/predict", json={"distance": -5})
        assert bad.status_code == 500
        error_id = bad.json()["error_id"]
        assert error_id in bad.json()["message"]
        assert any(error_id in record.getMessage() for record in caplog.records)


def test_every_prediction_is_logged_and_can_be_labeled(running: Running) -> None:
    request_ids = []
    with ThreadPoolExecutor(8) as pool:
        responses = list(
            pool.map(
                lambda i: httpx.post(
                    f"{running.url}/predict", json=frame(3, seed=i).to_dict("records")
                ),
                range(40),
            )
        )
    assert all(r.status_code == 200 for r in responses)
    request_ids = [r.json()["request_id"] for r in responses]
    running.stop()  # type: ignore[operator]  # a graceful shutdown writes what waits
    store = running.ws.store.predictions
    assert store.count("delay") == 120
    logged = store.list("delay", request_id=request_ids[0])
    assert [p.row for p in logged] == [0, 1, 2] and logged[0].version == 1
    assert set(logged[0].inputs) == set(COLUMNS)
    assert store.label("delay", [(request_ids[0], 1)]) == 3
    assert store.label("delay", [(f"{request_ids[1]}:2", 0)]) == 1
    assert [p.label for p in store.list("delay", request_id=request_ids[1])] == [None, None, 0]


def test_a_moved_alias_is_swapped_in_without_dropping_requests(running: Running) -> None:
    ws = running.ws
    hr.log_model(fitted(c=0.01), "delay", frame=frame(), workspace=ws)
    stop = threading.Event()
    statuses: list[int] = []
    versions: set[int] = set()

    def hammer() -> None:
        with httpx.Client() as client:
            while not stop.is_set():
                r = client.post(f"{running.url}/predict", json=frame(1).iloc[0].to_dict())
                statuses.append(r.status_code)
                if r.status_code == 200:
                    versions.add(r.json()["version"])

    workers = [threading.Thread(target=hammer) for _ in range(4)]
    for worker in workers:
        worker.start()
    time.sleep(0.3)
    set_alias(ws, "delay", "champion", 2, reason="swap test")
    deadline = time.time() + 10
    while httpx.get(f"{running.url}/version").json()["version"] != 2 and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    stop.set()
    for worker in workers:
        worker.join()
    assert httpx.get(f"{running.url}/health").json()["version"] == 2
    assert statuses and set(statuses) == {200}
    assert versions == {1, 2}


def test_canary_takes_its_share_sticky_by_key_and_shadow_is_logged_only(ws: Workspace) -> None:
    hr.log_model(fitted(), "delay", frame=frame(), workspace=ws)
    hr.log_model(fitted(c=0.01), "delay", frame=frame(), workspace=ws)
    hr.log_model(fitted(c=10), "delay", frame=frame(), workspace=ws)
    set_alias(ws, "delay", "champion", 1)
    set_alias(ws, "delay", "challenger", 2)
    set_alias(ws, "delay", "candidate", 3)
    options = {"canary": ("challenger", 25.0), "shadow": "candidate"}
    with serve(ws, "delay@champion", **options) as running:
        row = frame(1).iloc[0].to_dict()
        with httpx.Client() as client:
            versions = [
                client.post(f"{running.url}/predict", json=row).json()["version"]
                for _ in range(400)
            ]
            sticky = {
                client.post(
                    f"{running.url}/predict", json=row, headers={"x-request-key": "customer-7"}
                ).json()["version"]
                for _ in range(20)
            }
        share = versions.count(2) / len(versions)
        assert 0.15 < share < 0.35 and set(versions) == {1, 2}  # never the shadow
        assert len(sticky) == 1
        running.stop()  # type: ignore[operator]
        store = ws.store.predictions
        assert store.count("delay", role="shadow") == 420  # every request, off the path
        assert store.count("delay", role="canary") == versions.count(2) + (
            20 if sticky == {2} else 0
        )
        shadows = [p for p in store.list("delay", limit=5000) if p.role == "shadow"]
        assert {p.version for p in shadows} == {3}
        keyed = [p for p in store.list("delay", limit=5000) if p.key == "customer-7"]
        assert len(keyed) == 40  # 20 served or canary + 20 shadow


def test_micro_batches_answer_each_request_with_its_own_rows(ws: Workspace) -> None:
    hr.log_model(fitted(), "delay", frame=frame(), workspace=ws)
    model = fitted()
    with serve(ws, "delay", batch_max_rows=64, batch_max_wait_ms=20.0) as running:

        def call(seed: int) -> tuple[list[int], list[int]]:
            data = frame(1 + seed % 3, seed=seed)
            r = httpx.post(f"{running.url}/predict", json=data.to_dict("records"))
            assert r.status_code == 200, r.text
            return r.json()["predictions"], model.predict(data).tolist()  # type: ignore[attr-defined]

        with ThreadPoolExecutor(16) as pool:
            pairs = list(pool.map(call, range(200)))
        assert all(got == expected for got, expected in pairs)
        batcher = running.app.state.batcher  # type: ignore[attr-defined]
        assert batcher.largest > 1 and batcher.batches < 200
        running.stop()  # type: ignore[operator]
        assert ws.store.predictions.count("delay") == sum(len(g) for g, _ in pairs)


def test_a_bad_request_in_a_batch_fails_alone(ws: Workspace) -> None:
    hr.log_model(Exploding(), "fragile", frame=frame()[["distance"]], workspace=ws)
    with serve(
        ws, "fragile", allow_pickle=True, batch_max_rows=64, batch_max_wait_ms=50.0
    ) as running:
        distances = [5, 6, -1, 7, 8, 9]
        with ThreadPoolExecutor(6) as pool:
            statuses = list(
                pool.map(
                    lambda d: (
                        httpx.post(f"{running.url}/predict", json={"distance": d}).status_code
                    ),
                    distances,
                )
            )
        assert statuses == [200, 200, 500, 200, 200, 200]

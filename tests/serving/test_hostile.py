"""Hostile input to the scoring server: non-finite numbers, deep nesting, models without
a signature, and faults of the server itself. Every answer is JSON in the documented
format: a 400 naming the column or saying what is wrong, or a 500 with an error id."""

from __future__ import annotations

import json

import httpx
import numpy as np
import pytest

import headrace as hr
from headrace.runtime.workspace import Workspace
from tests.serving.test_server import Running, fitted, frame, serve

JSON = {"content-type": "application/json"}
NON_FINITE = ["NaN", "Infinity", "-Infinity", "1e400", "-1e400"]


class Strict:
    """A model logged without a frame (so without a signature) that refuses bad input:
    it wants exactly three numeric columns."""

    def predict(self, x: object) -> np.ndarray:
        array = np.asarray(x, dtype=np.float64)
        if array.ndim != 2 or array.shape[1] != 3:
            raise ValueError(f"expected 3 columns, got shape {array.shape}")
        return array.sum(axis=1)


class Unanswerable:
    """A model whose predictions cannot be written as JSON (a fault the server must
    still answer in its format)."""

    def predict(self, x: object) -> list[object]:
        return [{1, 2} for _ in range(len(x))]  # type: ignore[arg-type]


def post(url: str, body: bytes, content_type: str = "application/json") -> httpx.Response:
    return httpx.post(url, content=body, headers={"content-type": content_type}, timeout=60)


def assert_documented(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json"), response.text
    payload: dict[str, object] = response.json()
    assert isinstance(payload["error_code"], str) and isinstance(payload["message"], str)
    return payload


@pytest.fixture
def running(ws: Workspace) -> object:
    hr.log_model(fitted(), "delay", frame=frame(), workspace=ws)
    with serve(ws, "delay") as served:
        yield served


def test_non_finite_numbers_are_a_400_naming_the_column(running: Running) -> None:
    columns = json.dumps(["distance", "temp", "hour"])
    for token in NON_FINITE:
        rows = f"[[1, 2.5, 3], [1, {token}, 3]]"
        bodies = [
            f'{{"dataframe_split": {{"columns": {columns}, "data": {rows}}}}}',
            f'{{"dataframe_records": [{{"distance": 1, "temp": {token}, "hour": 3}}]}}',
            f'{{"inputs": [[1, {token}, 3]]}}',
            f'{{"instances": {{"distance": [1], "temp": [{token}], "hour": [3]}}}}',
        ]
        for body in bodies:
            payload = assert_documented(post(f"{running.url}/invocations", body.encode()), 400)
            assert payload["field"] == "temp", (body, payload)
            assert "column 'temp'" in str(payload["message"]), payload
            assert "finite" in str(payload["message"]), payload
        record = f'{{"distance": 1, "temp": {token}, "hour": 3}}'.encode()
        payload = assert_documented(post(f"{running.url}/predict", record), 400)
        assert payload["field"] == "temp", payload
    for value in ("NaN", "inf", "-inf"):
        csv = f"distance,temp,hour\n1,2.5,3\n4,{value},6\n".encode()
        payload = assert_documented(post(f"{running.url}/invocations", csv, "text/csv"), 400)
        assert payload["field"] == "temp" and "at row 1" in str(payload["message"]), payload
    nan = assert_documented(
        post(f"{running.url}/predict", b'{"distance": 1, "temp": NaN, "hour": 3}'), 400
    )
    assert "holds NaN at row 0" in str(nan["message"]) and "send null" in str(nan["message"])
    ok = post(f"{running.url}/predict", b'{"distance": 1, "temp": 1e300, "hour": 3}')
    assert ok.status_code == 200, ok.text  # large but finite is a number like any other


def test_deep_nesting_is_a_400_not_a_crash(running: Running) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    for url in (f"{running.url}/invocations", f"{running.url}/predict"):
        for body in (deep, b'{"inputs": ' + deep + b"}", b"[" * 100_000):
            payload = assert_documented(post(url, body), 400)
            assert payload["field"] == "body", payload
            assert "nested more than 32 levels" in str(payload["message"]), payload
    # with a NaN in front, the second parser reads it: nesting is refused there too
    nan_deep = b'{"a": NaN, "b": ' + deep + b"}"
    payload = assert_documented(post(f"{running.url}/invocations", nan_deep), 400)
    assert "nested" in str(payload["message"]), payload
    # under orjson's limit of 1,024 but past the server's 32, in a value
    for levels in (33, 900):
        cell = b"[" * levels + b"1" + b"]" * levels
        body = b'{"dataframe_records": [{"distance": 1, "temp": ' + cell + b', "hour": 3}]}'
        payload = assert_documented(post(f"{running.url}/invocations", body), 400)
        assert "nested more than 32 levels" in str(payload["message"]), payload
    # nesting within the limit, in a value: refused as a value that does not fit
    cell = b"[" * 20 + b"1" + b"]" * 20
    body = b'{"dataframe_records": [{"distance": 1, "temp": ' + cell + b', "hour": 3}]}'
    payload = assert_documented(post(f"{running.url}/invocations", body), 400)
    assert payload["field"] == "temp", payload
    assert httpx.get(f"{running.url}/health").status_code == 200  # still serving


def test_a_model_without_a_signature_that_fails_on_its_input_is_a_400(ws: Workspace) -> None:
    hr.log_model(Strict(), "loose", workspace=ws)
    assert ws.store.registry.version("loose", 1).signature is None
    with serve(ws, "loose", allow_pickle=True) as running:
        ok = post(f"{running.url}/invocations", b'{"inputs": {"a": [1], "b": [2], "c": [3]}}')
        assert ok.status_code == 200 and ok.json() == {"predictions": [6.0]}, ok.text
        for body in (
            b'{"dataframe_records": [{"a": 1, "b": 2}]}',  # a column short
            b'{"dataframe_records": [{"a": 1, "b": "two", "c": 3}]}',  # text for a number
        ):
            payload = assert_documented(post(f"{running.url}/invocations", body), 400)
            message = str(payload["message"])
            assert "the model failed on this input (ValueError" in message, payload
            assert "without a signature" in message and "request_id" in payload
        metrics = httpx.get(f"{running.url}/metrics").text
        assert 'headrace_requests_total{endpoint="invocations",status="400"} 2.0' in metrics


def test_a_fault_of_the_server_is_a_500_in_the_documented_format(
    ws: Workspace, caplog: pytest.LogCaptureFixture
) -> None:
    hr.log_model(Unanswerable(), "odd", workspace=ws)
    with serve(ws, "odd", allow_pickle=True) as running:
        response = post(f"{running.url}/predict", b'{"x": 1}')
        payload = assert_documented(response, 500)
        assert payload["error_code"] == "INTERNAL_ERROR"
        error_id = str(payload["error_id"])
        assert len(error_id) == 16 and error_id in str(payload["message"])
        assert payload["request_id"]
        assert any(error_id in record.getMessage() for record in caplog.records)
        assert httpx.get(f"{running.url}/health").status_code == 200


def test_a_model_logged_without_a_frame_is_checked_by_the_signature_of_its_estimator(
    ws: Workspace,
) -> None:
    hr.log_model(fitted(), "inferred", workspace=ws)  # no frame: the pipeline names them
    signature = ws.store.registry.version("inferred", 1).signature
    assert signature is not None
    assert [c["name"] for c in signature["inputs"]] == ["distance", "temp", "hour"]
    with serve(ws, "inferred") as running:
        good = post(f"{running.url}/predict", b'{"distance": 1200, "temp": 40.5, "hour": 8}')
        assert good.status_code == 200, good.text
        missing = assert_documented(
            post(f"{running.url}/predict", b'{"distance": 1200, "temp": 40.5}'), 400
        )
        assert missing["field"] == "hour" and "column 'hour' is missing" in str(missing["message"])
        text = assert_documented(
            post(f"{running.url}/predict", b'{"distance": "far", "temp": 40.5, "hour": 8}'), 400
        )
        assert text["field"] == "distance" and "String" in str(text["message"])


def test_lightgbm_logged_without_a_frame_refuses_a_missing_column(ws: Workspace) -> None:
    lightgbm = pytest.importorskip("lightgbm")
    from headrace.io.signature import SignatureError
    from headrace.registry.service import load_model

    data = frame()
    labels = (data.distance > 1500).astype(int)
    model = lightgbm.LGBMClassifier(n_estimators=5, verbose=-1).fit(data, labels)
    hr.log_model(model, "lgb", workspace=ws)
    loaded = load_model(ws, "lgb")
    assert loaded.signature is not None and loaded.signature.columns == list(data.columns)
    assert loaded.predict(data.head(3)).tolist() == model.predict(data.head(3)).tolist()
    with pytest.raises(SignatureError, match="column 'hour' is missing"):
        loaded.predict(data[["distance", "temp"]])

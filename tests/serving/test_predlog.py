"""No answered prediction is lost: client ids are checked at the edge, rows the
database refuses become dead letters, rows an unreachable store cannot take wait (and a
full log refuses requests), and what still waits at shutdown goes to a file."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pytest
from prometheus_client import CollectorRegistry, generate_latest

import headrace as hr
from headrace.registry.service import set_alias
from headrace.runtime.workspace import Workspace
from headrace.serving.errors import PredictionLogFullError
from headrace.serving.predlog import PredictionLog, Scored
from headrace.serving.unlogged import load_unlogged
from headrace.store import MetadataStore, open_store
from headrace.store.engine import create_store_engine
from tests.serving.test_server import fitted, frame, free_port, serve
from tests.tcp_proxy import Proxy


def scored(i: int, **changes: Any) -> Scored:
    fields: dict[str, Any] = {
        "request_id": f"req-{i}",
        "model": "delay",
        "version": 1,
        "role": "served",
        "inputs": pl.DataFrame({"distance": [float(i)], "hour": [3]}),
        "outputs": [i % 2],
        "latency_ms": 0.3,
        "at": time.time(),
    }
    fields.update(changes)
    return Scored(**fields)


@pytest.fixture
def down_postgres(postgres_url: str) -> Iterator[tuple[MetadataStore, MetadataStore, int]]:
    """(a store reached through a loopback port nothing listens on yet, the same
    database reached directly, the port); a :class:`Proxy` on the port brings it up."""
    open_store(postgres_url).close()  # migrated
    port = free_port()
    via_port = postgres_url.replace("127.0.0.1:5432", f"127.0.0.1:{port}")
    behind = MetadataStore(create_store_engine(via_port))
    direct = open_store(postgres_url)
    try:
        yield behind, direct, port
    finally:
        behind.close()
        direct.close()


# -- the edge: client-supplied ids -------------------------------------------------------


def test_bad_client_ids_are_refused_before_scoring_and_every_200_is_logged(
    ws: Workspace,
) -> None:
    """The issue's case: one over-long X-Request-Id used to break every later flush on
    PostgreSQL; now it gets a 400 and the 42 requests answered 200 are all logged."""
    hr.log_model(fitted(), "delay", frame=frame(), workspace=ws)
    set_alias(ws, "delay", "champion", 1)
    record = frame(1).to_dict("records")
    with serve(ws, "delay@champion") as running:
        bad_headers = [
            ({"x-request-id": "r" * 65}, "X-Request-Id"),
            ({"x-request-id": "has space"}, "X-Request-Id"),
            ({"x-request-key": "k" * 201}, "X-Request-Key"),
            ({"x-request-key": "tab\there"}, "X-Request-Key"),
        ]
        for headers, header in bad_headers:
            response = httpx.post(f"{running.url}/predict", json=record, headers=headers)
            assert response.status_code == 400, response.text
            body = response.json()
            assert body["field"] == header and body["error_code"] == "BAD_REQUEST"
            assert f"header {header}" in body["message"] and "expected" in body["message"]
        ids = [f"client-{i}" for i in range(41)] + ["x" * 64]
        answered = [
            httpx.post(
                f"{running.url}/predict",
                json=record,
                headers={"x-request-id": rid, "x-request-key": f"user-{i}"},
            )
            for i, rid in enumerate(ids)
        ]
        assert [r.status_code for r in answered] == [200] * 42
        metrics = httpx.get(f"{running.url}/metrics").text
        assert "headrace_predicted_rows_total 42.0" in metrics  # the refused were not scored
    logged = running.ws.store.predictions.list("delay", limit=100)
    assert sorted(p.request_id for p in logged) == sorted(ids)
    assert {p.key for p in logged} == {f"user-{i}" for i in range(42)}
    assert running.ws.store.deadletters.count() == 0


# -- refused rows ------------------------------------------------------------------------


def test_rows_the_database_refuses_are_dead_lettered_and_the_rest_logged(
    ws: Workspace, backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    registry = CollectorRegistry()
    log = PredictionLog(ws.store, interval=60, registry=registry)
    items = [scored(i) for i in range(20)]
    items[4] = scored(4, version=None)  # NOT NULL everywhere
    refused = {"req-4"}
    if backend == "postgresql":  # past the edge's checks, PostgreSQL's lengths still hold
        items[9] = scored(9, request_id="r" * 70)
        refused.add("r" * 70)
    for item in items:
        log.append(item)
    assert log.flush() is True
    log.close()
    logged = {p.request_id for p in ws.store.predictions.list("delay", limit=100)}
    assert logged == {item.request_id for item in items} - refused
    letters = ws.store.deadletters.list(writer="predictions")
    assert {letter.payload["request_id"] for letter in letters} == refused
    assert all(letter.payload["model"] == "delay" for letter in letters)
    health = log.health()
    assert health["status"] == "degraded" and health["dead_lettered_rows"] == len(refused)
    assert "refused by the database" in health["reasons"][0]
    text = generate_latest(registry).decode()
    assert f"headrace_prediction_log_dead_lettered_rows_total {float(len(refused))}" in text
    assert any(
        "kept as dead letters" in r.getMessage() and r.levelno == logging.ERROR
        for r in caplog.records
    )


# -- an unreachable store --------------------------------------------------------------


@pytest.mark.postgres
def test_rows_wait_for_an_unreachable_store_and_are_written_when_it_answers(
    down_postgres: tuple[MetadataStore, MetadataStore, int],
) -> None:
    behind, direct, port = down_postgres
    registry = CollectorRegistry()
    log = PredictionLog(behind, interval=60, capacity=3, registry=registry)
    try:
        log.append(scored(1))
        log.append(scored(2))
        assert log.flush() is False  # connection refused: kept, not split or dead-lettered
        assert log.pending == 2
        health = log.health()
        assert health["status"] == "degraded" and health["failed_flushes"] == 1
        assert "wait for the metadata store" in health["reasons"][0]
        assert "Connection refused" in health["last_error"]
        log.check_room()  # 2 of 3: there is room
        log.append(scored(3))
        with pytest.raises(PredictionLogFullError, match="holds 3 rows waiting") as full:
            log.check_room()
        assert full.value.status == 503 and full.value.retryable
        text = generate_latest(registry).decode()
        assert "headrace_prediction_log_failed_flushes_total 1.0" in text
        assert "headrace_prediction_log_pending_rows 3.0" in text
        proxy = Proxy(port)  # the store answers again
        try:
            assert log.flush() is True
        finally:
            proxy.close()
        assert log.pending == 0 and log.health()["status"] == "ok"
        assert direct.predictions.count("delay") == 3
        assert direct.deadletters.count() == 0
    finally:
        log.close(attempts=1)


@pytest.mark.postgres
def test_what_waits_at_shutdown_goes_to_a_file_that_loads_later(
    down_postgres: tuple[MetadataStore, MetadataStore, int],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    behind, direct, _port = down_postgres
    registry = CollectorRegistry()
    log = PredictionLog(behind, interval=60, spill_dir=tmp_path / "unlogged", registry=registry)
    for i in range(5):
        log.append(scored(i, outputs=[0, 1], inputs=pl.DataFrame({"distance": [1.0, 2.0]})))
    log.close(attempts=2)
    assert log.unlogged == 10 and len(log.spilled_to) == 1
    spilled = log.spilled_to[0]
    assert spilled.parent == tmp_path / "unlogged"
    assert len(spilled.read_text().splitlines()) == 10
    message = next(r.getMessage() for r in caplog.records if r.levelno == logging.CRITICAL)
    assert "10 prediction rows" in message and str(spilled) in message
    assert "headrace predictions load" in message
    assert "headrace_prediction_log_unlogged_rows_total 10.0" in generate_latest(registry).decode()
    loaded = load_unlogged(direct, spilled)
    assert (loaded.written, loaded.present, loaded.dead_lettered) == (10, 0, 0)
    assert direct.predictions.count("delay") == 10
    again = load_unlogged(direct, spilled)  # loading twice writes nothing twice
    assert (again.written, again.present) == (0, 10)


def test_a_server_whose_log_is_full_refuses_requests_and_says_so(
    ws: Workspace, tmp_path: Path
) -> None:
    hr.log_model(fitted(), "delay", frame=frame(), workspace=ws)
    down = MetadataStore(
        create_store_engine(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/x")
    )
    record = frame(1).to_dict("records")
    try:
        with serve(ws, "delay") as running:
            server: Any = running.app.state.server  # type: ignore[attr-defined]
            server.predictions.close()
            server.predictions = log = PredictionLog(
                down, capacity=2, spill_dir=tmp_path / "spill", registry=CollectorRegistry()
            )
            first = httpx.post(f"{running.url}/predict", json=record)
            assert first.status_code == 200
            deadline = time.monotonic() + 10
            while log.failed_flushes == 0 and time.monotonic() < deadline:
                time.sleep(0.01)  # the writer tries every 50 ms
            still_answering = httpx.get(f"{running.url}/health")
            assert still_answering.status_code == 200  # it answers, and says it is degraded
            assert still_answering.json()["status"] == "degraded"
            assert (
                "1 rows wait for the metadata store"
                in (still_answering.json()["prediction_log"]["reasons"][0])
            )
            second = httpx.post(f"{running.url}/predict", json=record)
            assert second.status_code == 200
            refused = httpx.post(f"{running.url}/predict", json=record)
            assert refused.status_code == 503, refused.text
            assert refused.json()["error_code"] == "PREDICTION_LOG_FULL"
            assert "waiting for the metadata store" in refused.json()["message"]
            health = httpx.get(f"{running.url}/health")
            assert health.status_code == 503
            assert health.json()["status"] == "degraded"
            assert health.json()["prediction_log"]["pending_rows"] == 2
            metrics = httpx.get(f"{running.url}/metrics").text
            assert 'headrace_errors_total{endpoint="predict",kind="log_full"} 1.0' in metrics
    finally:
        down.close()
    # the two answered requests were kept, in a file, at shutdown
    (spilled,) = (tmp_path / "spill").iterdir()
    rows = [json.loads(line) for line in spilled.read_text().splitlines()]
    assert [row["request_id"] for row in rows] == [
        first.json()["request_id"],
        second.json()["request_id"],
    ]

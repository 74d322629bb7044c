"""A bounded load test on loopback: concurrent writers log metrics (one call each and in
batches, through the MLflow REST surface) while runs materialize, on SQLite and on
PostgreSQL. Nothing is lost, nothing fails, and the store ends consistent: every value
counted, each run's latest value right, the audit chain unbroken with one entry per
call."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.server.conftest import running_server

PROJECT = """
import pandas as pd

@hr.asset
def numbers(*, n: int = 50) -> pd.DataFrame:
    return pd.DataFrame({"x": range(n)})

@hr.asset
def total(numbers: pd.DataFrame) -> int:
    return int(numbers.x.sum())
"""
WRITERS = 6
SINGLE = 150  # log_metric calls per writer
BATCHES = 4  # log_batch calls of 100 values per writer
RUNS = 3  # materializations, one after the other, beside the writers

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.mark.parametrize(
    "backend",
    [
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    ],
)
def test_concurrent_writers_lose_nothing(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = None if backend == "sqlite" else request.getfixturevalue("postgres_url")
    with running_server(tmp_path / "ws", PROJECT, metadata_url=url) as server:
        mlflow = f"{server.root}/api/2.0/mlflow"
        auth = server.headers()
        created = httpx.post(f"{mlflow}/experiments/create", json={"name": "load"}, headers=auth)
        experiment = created.json()["experiment_id"]
        run_ids: list[str] = []
        errors: list[str] = []
        calls = {"n": 0}
        lock = threading.Lock()

        def writer(index: int) -> None:
            with httpx.Client(headers=auth, timeout=60) as client:
                answer = client.post(
                    f"{mlflow}/runs/create",
                    json={"experiment_id": experiment, "run_name": f"w{index}"},
                )
                run_id = answer.json()["run"]["info"]["run_id"]
                with lock:
                    run_ids.append(run_id)
                    calls["n"] += 1
                for step in range(SINGLE):
                    body = {
                        "run_id": run_id,
                        "key": "loss",
                        "value": step,
                        "step": step,
                        "timestamp": 1_700_000_000_000 + step,
                    }
                    answer = client.post(f"{mlflow}/runs/log-metric", json=body)
                    if answer.status_code != 200:
                        errors.append(answer.text)
                for batch in range(BATCHES):
                    metrics = [
                        {
                            "key": "acc",
                            "value": batch * 100 + i,
                            "step": batch * 100 + i,
                            "timestamp": 1_700_000_000_000 + i,
                        }
                        for i in range(100)
                    ]
                    answer = client.post(
                        f"{mlflow}/runs/log-batch", json={"run_id": run_id, "metrics": metrics}
                    )
                    if answer.status_code != 200:
                        errors.append(answer.text)
                with lock:
                    calls["n"] += SINGLE + BATCHES

        def materializer() -> None:
            with httpx.Client(headers=auth, timeout=60) as client:
                for round_ in range(RUNS):
                    answer = client.post(
                        f"{server.api}/runs",
                        json={"params": {"n": 50 + round_}, "force": True, "branch": "dev"},
                    )
                    if answer.status_code != 202:
                        errors.append(answer.text)
                        continue
                    with lock:
                        calls["n"] += 1
                    run_id = answer.json()["run_id"]
                    deadline = time.time() + 120
                    while time.time() < deadline:
                        state = client.get(f"{server.api}/runs/{run_id}").json()
                        if state["status"] not in ("running", "queued"):
                            break
                        time.sleep(0.05)
                    if state["status"] != "success":
                        errors.append(f"run {run_id}: {state['status']} {state.get('error')}")

        assert (
            httpx.post(f"{server.api}/branches", json={"name": "dev"}, headers=auth).status_code
            == 201
        )
        threads = [threading.Thread(target=writer, args=(i,)) for i in range(WRITERS)]
        threads.append(threading.Thread(target=materializer))
        before = len(server.ws.store.governance.audit(limit=100_000))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
        assert errors == []
        ws = server.ws
        assert len(run_ids) == WRITERS
        for run_id in run_ids:
            history = ws.store.tracking.metric_history([run_id])
            losses = [p for _, p in history if p.key == "loss"]
            accs = [p for _, p in history if p.key == "acc"]
            assert [p.step for p in losses] == list(range(SINGLE))
            assert len(accs) == BATCHES * 100
            assert ws.store.tracking.metrics(run_id) == {
                "loss": SINGLE - 1,
                "acc": BATCHES * 100 - 1,
            }
        runs = [r for r in ws.store.runs.list(limit=50) if r.trigger == "server"]
        assert len(runs) == RUNS and {r.status for r in runs} == {"success"}
        assert ws.store.versions.heads("dev")  # the materialized versions are on dev
        entries = ws.store.governance.audit(limit=100_000)
        assert len(entries) - before == calls["n"]  # one entry per mutating call
        assert {e.outcome for e in entries[before:]} == {"ok"}
        assert ws.store.governance.verify()[1] is None

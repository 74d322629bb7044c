"""Values the MLflow API's callers send that PostgreSQL would refuse (a NUL byte, a
step past 64 bits) are refused at the edge with a 400 naming the item, and nothing of
the call is written; on SQLite, which would have taken them, the same."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.server.conftest import TeamServer, running_server


@pytest.fixture
def server(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TeamServer]:
    url = request.getfixturevalue("postgres_url") if backend == "postgresql" else None
    with running_server(tmp_path / "ws", metadata_url=url, worker=False) as running:
        yield running


def test_values_a_database_would_refuse_are_refused_at_the_edge(server: TeamServer) -> None:
    api = f"{server.root}/api/2.0/mlflow"

    def post(path: str, body: object) -> httpx.Response:
        return httpx.post(f"{api}/{path}", json=body, headers=server.headers())

    run = post("runs/create", {"experiment_id": "0"}).json()["run"]["info"]["run_id"]
    good = {"key": "loss", "value": 0.5, "step": 1, "timestamp": 1000}
    cases = [
        ({"metrics": [good], "tags": [{"key": "note", "value": "a\x00b"}]}, "tags[0] 'note'"),
        ({"metrics": [good], "params": [{"key": "lr", "value": "0.1\x00"}]}, "params[0] 'lr'"),
        ({"metrics": [good], "params": [{"key": "l\x00r", "value": "1"}]}, "no NUL byte"),
        ({"metrics": [{**good, "step": 2**70}]}, "'metrics[0].step' must be a 64-bit integer"),
        ({"metrics": [{**good, "timestamp": -(2**64)}]}, "metrics[0].timestamp"),
    ]
    for body, named in cases:
        refused = post("runs/log-batch", {"run_id": run, **body})
        assert refused.status_code == 400, refused.text
        assert refused.json()["error_code"] == "INVALID_PARAMETER_VALUE"
        assert named in refused.json()["message"]
    single = post("runs/log-metric", {"run_id": run, "key": "m", "value": 1, "step": "9" * 30})
    assert single.status_code == 400 and "parameter 'step'" in single.json()["message"]
    tracking = server.ws.store.tracking
    assert (tracking.metrics(run), tracking.params(run), tracking.tags(run)) == ({}, {}, {})
    ok = post(
        "runs/log-batch", {"run_id": run, "metrics": [good], "tags": [{"key": "t", "value": "v"}]}
    )
    assert ok.status_code == 200 and tracking.metrics(run) == {"loss": 0.5}

"""OpenLineage events from another producer (sent by the real openlineage-python client's
HTTP transport) merge into headrace's lineage graph as external jobs and datasets."""

from __future__ import annotations

import gzip
import json
import uuid
from pathlib import Path

import httpx
import pytest

from tests.server.conftest import TeamServer, running_server

PROJECT = """
@hr.asset
def flights() -> int:
    return 1

@hr.asset
def flights_clean(flights: int) -> int:
    return flights
"""


def _client(server: TeamServer, token: str, compression: str | None = None) -> object:
    from openlineage.client import OpenLineageClient
    from openlineage.client.transport.http import HttpConfig, HttpTransport

    config = HttpConfig.from_dict(
        {
            "type": "http",
            "url": server.root,
            "endpoint": "api/v1/lineage",
            "auth": {"type": "api_key", "apiKey": token},
            **({"compression": compression} if compression else {}),
        }
    )
    return OpenLineageClient(transport=HttpTransport(config))


def _event(state: str, run_id: str, inputs: list[tuple[str, str]], outputs: list[tuple[str, str]]):
    from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent
    from openlineage.client.facet_v2 import schema_dataset

    schema = schema_dataset.SchemaDatasetFacet(
        fields=[schema_dataset.SchemaDatasetFacetFields(name="delay", type="DOUBLE")]
    )
    return RunEvent(
        eventType=state,
        eventTime="2026-11-22T10:00:00.000Z" if state == "START" else "2026-11-22T10:05:00Z",
        run=Run(runId=run_id),
        job=Job(namespace="airflow://prod", name="reports.delays_by_airport"),
        producer="https://github.com/apache/airflow",
        inputs=[InputDataset(namespace=ns, name=n) for ns, n in inputs],
        outputs=[
            OutputDataset(namespace=ns, name=n, facets={"schema": schema}) for ns, n in outputs
        ],
    )


@pytest.mark.integration
def test_openlineage_client_events_join_the_graph(tmp_path: Path) -> None:
    with running_server(tmp_path / "ws", PROJECT) as server:
        ws = server.ws
        project = ws.settings.project_name
        space = f"headrace://{project}"
        client = _client(server, server.token)
        gzipped = _client(server, server.token, compression="gzip")
        run_id = str(uuid.uuid4())
        reads = [(space, "main/flights_clean")]
        writes = [("postgres://warehouse:5432", "reports.delays_by_airport")]
        client.emit(_event("START", run_id, reads, writes))  # type: ignore[attr-defined]
        gzipped.emit(_event("COMPLETE", run_id, reads, writes))  # type: ignore[attr-defined]

        auth = server.headers()
        jobs = httpx.get(f"{server.api}/lineage/jobs", headers=auth).json()["jobs"]
        assert [(j["namespace"], j["name"]) for j in jobs] == [
            ("airflow://prod", "reports.delays_by_airport")
        ]
        assert jobs[0]["latest_run"]["state"] == "COMPLETE"
        assert jobs[0]["producer"] == "https://github.com/apache/airflow"
        datasets = httpx.get(f"{server.api}/lineage/datasets", headers=auth).json()["datasets"]
        warehouse = next(d for d in datasets if d["namespace"].startswith("postgres"))
        assert [f["name"] for f in warehouse["facets"]["schema"]["fields"]] == ["delay"]

        # from headrace's raw asset, downstream through its own pipeline to Airflow's table
        graph = httpx.get(
            f"{server.api}/lineage/graph",
            params={"namespace": space, "name": "main/flights", "depth": 10},
            headers=auth,
        ).json()
        ids = {n["id"] for n in graph["nodes"]}
        assert f"job:{space}:{project}.flights_clean" in ids
        assert "job:airflow://prod:reports.delays_by_airport" in ids
        assert "dataset:postgres://warehouse:5432:reports.delays_by_airport" in ids
        assert {
            "from": f"dataset:{space}:main/flights_clean",
            "to": "job:airflow://prod:reports.delays_by_airport",
        } in graph["edges"]
        assert graph["problems"] == []
        upstream = httpx.get(
            f"{server.api}/lineage/graph",
            params={"namespace": space, "name": "main/flights_clean", "direction": "upstream"},
            headers=auth,
        ).json()
        up_ids = {n["id"] for n in upstream["nodes"]}
        assert f"dataset:{space}:main/flights" in up_ids
        assert "job:airflow://prod:reports.delays_by_airport" not in up_ids
        assert ws.store.lineage.event_count() == 2
        assert [e.action for e in ws.store.governance.audit(limit=100)].count("lineage.event") == 2


@pytest.mark.integration
def test_bad_lineage_events_are_refused_and_change_nothing(team_server: TeamServer) -> None:
    url = f"{team_server.api}/lineage"
    auth = team_server.headers()
    good = {
        "eventType": "START",
        "eventTime": "2026-11-22T10:00:00Z",
        "producer": "https://example.com/spark",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/definitions/RunEvent",
        "run": {"runId": str(uuid.uuid4())},
        "job": {"namespace": "spark://cluster", "name": "etl"},
    }
    cases = [
        ({**good, "run": {"runId": "not-a-uuid"}}, "not a UUID"),
        ({k: v for k, v in good.items() if k != "producer"}, "producer"),
        ({**good, "eventTime": "yesterday"}, "not an ISO 8601 time"),
        ({**good, "eventTime": "2026-11-22T10:00:00"}, "no time zone"),
        ({**good, "eventType": "DONE"}, "eventType"),
        ({k: v for k, v in good.items() if k not in ("job", "run")}, "names a job"),
        ({**good, "job": {"namespace": "", "name": "etl"}}, "job.namespace"),
    ]
    for body, expected in cases:
        answer = httpx.post(url, json=body, headers=auth)
        assert answer.status_code == 400, (body, answer.text)
        assert expected in answer.json()["message"], answer.json()
    corrupt = httpx.post(
        url,
        content=b"not gzip",
        headers={**auth, "content-encoding": "gzip", "content-type": "application/json"},
    )
    assert corrupt.status_code == 400 and "not valid gzip" in corrupt.json()["message"]
    bomb = gzip.compress(json.dumps({**good, "pad": "x" * (2 * 1024 * 1024)}).encode())
    assert len(bomb) < 1024 * 1024
    refused = httpx.post(
        url,
        content=bomb,
        headers={**auth, "content-encoding": "gzip", "content-type": "application/json"},
    )
    assert refused.status_code == 413 and "decompressed" in refused.json()["message"]
    assert httpx.post(url, json=good).status_code == 401
    viewer = team_server.token_for("vera", "viewer")
    denied = httpx.post(url, json=good, headers=team_server.headers(viewer))
    assert denied.status_code == 403 and denied.json()["permission"] == "log_run"
    assert team_server.ws.store.lineage.event_count() == 0
    assert httpx.post(url, json=good, headers=auth).status_code == 201
    assert team_server.ws.store.lineage.event_count() == 1
    missing = httpx.get(
        f"{team_server.api}/lineage/graph",
        params={"namespace": "nowhere", "name": "x"},
        headers=auth,
    )
    assert missing.status_code == 404

"""The OpenAPI surface fuzzed (schemathesis, bounded): valid and invalid requests to every
operation, as an admin and as a viewer. No answer is a 5xx; and a viewer, whose every
mutating call is refused, changes nothing in the store (the audit log records the
refusals, as it should)."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from headrace.store.schema import metadata
from tests.server.conftest import TeamServer, running_server

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is a dev dependency")

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
]

PROJECT = """
import pandas as pd

@hr.asset(personal=["email"], primary_key="id")
def people() -> pd.DataFrame:
    return pd.DataFrame({"id": [1, 2], "email": ["a@x.io", "b@x.io"]})
"""
EXAMPLES = 12
#: What a refused request may still change: the record of it, and token bookkeeping.
BOOKKEEPING = {"audit_log", "audit_head", "api_tokens"}


def _fingerprint(server: TeamServer) -> dict[str, str]:
    out = {}
    with server.ws.store.read() as c:
        for table in metadata.sorted_tables:
            if table.name in BOOKKEEPING:
                continue
            rows = c.execute(select(table)).all()
            digest = hashlib.sha256(repr(sorted(map(repr, rows))).encode()).hexdigest()
            out[table.name] = f"{len(rows)}:{digest[:16]}"
    return out


def _fuzz(server: TeamServer, token: str, modes: list[Any]) -> tuple[list[str], Counter[int]]:
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis.errors import Unsatisfiable

    schema = schemathesis.openapi.from_url(f"{server.api}/openapi.json")
    problems: list[str] = []
    statuses: Counter[int] = Counter()
    auth = {"Authorization": f"Bearer {token}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 25
    for operation in operations:
        for mode in modes:

            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def check(case: Any) -> None:
                response = case.call(headers=auth, timeout=30)
                statuses[response.status_code] += 1
                if response.status_code >= 500:
                    problems.append(
                        f"{case.method} {case.formatted_path} -> {response.status_code}: "
                        f"{response.text[:300]}"
                    )

            try:
                check()
            except Unsatisfiable:  # e.g. no invalid request exists for a parameterless GET
                continue
    return problems, statuses


def test_fuzzing_finds_no_server_errors_and_refusals_change_nothing(tmp_path: Path) -> None:
    from schemathesis import GenerationMode

    import headrace as hr

    with running_server(tmp_path / "ws", PROJECT) as server:
        hr.materialize(workspace=server.ws)
        viewer = server.token_for("vera", "viewer")
        before = _fingerprint(server)
        problems, seen = _fuzz(server, viewer, [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
        assert problems == []
        assert seen[403] > 20 and seen[400] > 20 and sum(seen.values()) > 300, seen
        assert _fingerprint(server) == before  # every refused call left the store alone
        refused = [
            e
            for e in server.ws.store.governance.audit(limit=100_000)
            if e.actor == "vera" and e.outcome != "ok"
        ]
        assert refused, "the viewer's refused calls are in the audit log"
        problems, seen = _fuzz(
            server, server.token, [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
        )
        assert problems == []
        assert seen[200] > 20, seen  # valid requests were made, and answered
        assert server.ws.store.governance.verify()[1] is None


def _mlflow_schema(run_id: str) -> dict[str, Any]:
    """The MLflow routes the client uses most, described for schemathesis (MLflow
    publishes no OpenAPI document); ``run_id`` is an example that exists."""
    text = {"type": "string", "minLength": 1, "maxLength": 300}
    run = {"type": "string", "example": run_id}
    pairs = {
        "type": "array",
        "items": {"type": "object", "properties": {"key": text, "value": text}},
    }
    metric = {
        "type": "object",
        "properties": {
            "key": text,
            "value": {"type": "number"},
            "timestamp": {"type": "integer"},
            "step": {"type": "integer"},
        },
        "required": ["key", "value"],
    }

    def post(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
        schema = {"type": "object", "properties": properties, "required": required}
        return {
            "post": {
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": schema}},
                },
                "responses": {"200": {"description": "OK"}},
            }
        }

    def get(*names: str) -> dict[str, Any]:
        parameters = [
            {"name": n, "in": "query", "required": True, "schema": run if n == "run_id" else text}
            for n in names
        ]
        return {"get": {"parameters": parameters, "responses": {"200": {"description": "OK"}}}}

    paths = {
        "/experiments/create": post({"name": text, "tags": pairs}, ["name"]),
        "/experiments/search": post({"max_results": {"type": "integer"}, "filter": text}, []),
        "/experiments/get-by-name": get("experiment_name"),
        "/runs/create": post(
            {"experiment_id": text, "start_time": {"type": "integer"}, "run_name": text},
            [],
        ),
        "/runs/log-metric": post(
            {"run_id": run, **metric["properties"]}, ["run_id", "key", "value"]
        ),
        "/runs/log-parameter": post({"run_id": run, "key": text, "value": text}, ["run_id"]),
        "/runs/set-tag": post({"run_id": run, "key": text, "value": text}, ["run_id", "key"]),
        "/runs/log-batch": post(
            {
                "run_id": run,
                "metrics": {"type": "array", "items": metric},
                "params": pairs,
                "tags": pairs,
            },
            ["run_id"],
        ),
        "/runs/update": post(
            {
                "run_id": run,
                "status": {"enum": ["RUNNING", "FINISHED", "FAILED", "KILLED"]},
                "end_time": {"type": "integer"},
            },
            ["run_id"],
        ),
        "/runs/search": post(
            {
                "experiment_ids": {"type": "array", "items": text},
                "filter": text,
                "max_results": {"type": "integer"},
            },
            [],
        ),
        "/runs/get": get("run_id"),
        "/metrics/get-history": get("run_id", "metric_key"),
        "/registered-models/create": post({"name": text}, ["name"]),
        "/model-versions/create": post({"name": text, "source": text, "run_id": run}, ["name"]),
        "/registered-models/alias": post(
            {"name": text, "alias": text, "version": text}, ["name", "alias", "version"]
        ),
    }
    return {
        "openapi": "3.0.3",
        "info": {"title": "MLflow REST (as served by headrace)", "version": "2.0"},
        "paths": {f"/api/2.0/mlflow{path}": item for path, item in paths.items()},
    }


def _documented(response: Any, where: str, problems: list[str]) -> None:
    if response.status_code >= 500:
        problems.append(f"{where} -> {response.status_code}: {response.text[:300]}")
    elif response.status_code >= 400:
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if not isinstance(payload, dict) or not {"error_code", "message"} <= set(payload):
            problems.append(f"{where} -> {response.status_code}: {response.text[:200]}")


def test_fuzzing_the_mlflow_routes_with_hostile_bodies_finds_no_server_errors(
    tmp_path: Path,
) -> None:
    import httpx
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import strategies as st
    from hypothesis.errors import Unsatisfiable
    from schemathesis import GenerationMode

    from headrace.server.context import MAX_BODY
    from tests.hostile import hostile

    fuzz = settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    with running_server(tmp_path / "ws", worker=False) as server:
        mlflow = f"{server.root}/api/2.0/mlflow"
        admin = {"Authorization": f"Bearer {server.token}"}
        made = httpx.post(f"{mlflow}/runs/create", json={"experiment_id": "0"}, headers=admin)
        run_id = made.json()["run"]["info"]["run_id"]
        viewer = {"Authorization": f"Bearer {server.token_for('vera', 'viewer')}"}
        schema = schemathesis.openapi.from_dict(_mlflow_schema(run_id))
        problems: list[str] = []
        seen: Counter[int] = Counter()
        for result in schema.get_all_operations():
            operation = result.ok()
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

                @fuzz
                @given(case=operation.as_strategy(generation_mode=mode))
                def call(case: Any) -> None:
                    response = case.call(base_url=server.root, headers=admin, timeout=30)
                    seen[response.status_code] += 1
                    _documented(response, f"{case.method} {case.formatted_path}", problems)

                try:
                    call()
                except Unsatisfiable:
                    continue
        assert seen[200] > 20 and seen[400] > 20, seen
        metric = {"run_id": run_id, "key": "m", "value": 1.5, "timestamp": 1, "step": 2}
        targets = [
            ("runs/log-metric", metric, ["value", "timestamp", "step"]),
            (
                "runs/log-batch",
                {"run_id": run_id, "metrics": [metric]},
                ["metrics.0.value", "metrics.0.step"],
            ),
            ("runs/create", {"experiment_id": "0", "start_time": 5}, ["start_time"]),
            ("experiments/create", {"name": "e"}, []),
        ]
        before = _fingerprint(server)

        @fuzz
        @given(
            target=st.sampled_from(targets),
            data=st.data(),
            who=st.sampled_from(["admin", "viewer"]),
        )
        def attack(target: Any, data: Any, who: str) -> None:
            path, template, numbers = target
            body = data.draw(hostile(template, numbers, MAX_BODY))
            for prefix in (mlflow, f"{server.root}/api/v1/runs"):
                url = f"{mlflow}/{path}" if prefix == mlflow else prefix
                headers = {
                    **(admin if who == "admin" else viewer),
                    "content-type": "application/json",
                }
                response = httpx.post(url, content=body, headers=headers, timeout=60)
                seen[response.status_code] += 1
                _documented(response, f"POST {url} {body[:60]!r}", problems)
                if response.status_code < 400 and who == "viewer":
                    problems.append(f"the viewer's POST {url} {body[:60]!r} was accepted")

        attack()
        # and one of each kind, whatever hypothesis drew
        for path, template, _ in targets:
            for body in (
                b"[" * 100_000,
                json.dumps({**template, "padding": "x" * MAX_BODY}).encode(),
                json.dumps(template).encode().replace(b"1.5", b"NaN").replace(b"5}", b"1e400}"),
            ):
                for headers in (admin, viewer):
                    response = httpx.post(
                        f"{mlflow}/{path}",
                        content=body,
                        headers={**headers, "content-type": "application/json"},
                        timeout=60,
                    )
                    seen[response.status_code] += 1
                    _documented(response, f"POST {path} {body[:60]!r}", problems)
        assert problems == []
        assert seen[413] > 0 and seen[403] > 0, seen
        # what the hostile bodies changed: at most the admin's runs and metrics (a
        # metric of NaN is a value MLflow takes); the viewer's changed nothing
        after = _fingerprint(server)
        changed = {k for k in before if before[k] != after[k]}
        tracking = {"metric_values", "latest_metrics", "run_params", "run_tags", "runs"}
        assert changed <= tracking | {"experiments", "experiment_tags"}, changed
        assert server.ws.store.governance.verify()[1] is None

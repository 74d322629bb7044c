"""The scoring server fuzzed (schemathesis and hypothesis, bounded): valid and invalid
requests from a description of its endpoints, then hostile bodies (nested deep, huge,
holding NaN or infinities, not JSON). No answer is a 5xx, every refusal is JSON in the
documented format, and the server still answers afterwards."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

import headrace as hr
from headrace.workspace.settings import init_workspace
from tests.hostile import hostile
from tests.projects import OPENED
from tests.serving.test_server import COLUMNS, fitted, frame, serve

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is a dev dependency")

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
]

EXAMPLES = 25
MAX_BODY = 64 * 1024
NUMBER = {"type": "number"}
ROW = {"type": "array", "items": NUMBER, "minItems": 3, "maxItems": 3}
RECORD = {
    "type": "object",
    "properties": {c: NUMBER for c in COLUMNS},
    "required": COLUMNS,
}
ERROR = {
    "description": "Refused, naming the field",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["error_code", "message"],
                "properties": {"error_code": {"type": "string"}, "message": {"type": "string"}},
            }
        }
    },
}


def _one(key: str, value: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {key: value},
        "required": [key],
        "additionalProperties": False,
    }


def _post(body: dict[str, Any]) -> dict[str, Any]:
    return {
        "post": {
            "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
            "responses": {"200": {"description": "Predictions"}, "400": ERROR, "413": ERROR},
        }
    }


def _get() -> dict[str, Any]:
    return {"get": {"responses": {"200": {"description": "OK"}}}}


SCHEMA = {
    "openapi": "3.0.3",
    "info": {"title": "headrace serve", "version": "1"},
    "paths": {
        "/invocations": _post(
            {
                "oneOf": [
                    _one(
                        "dataframe_split",
                        {
                            "type": "object",
                            "properties": {
                                "columns": {
                                    "type": "array",
                                    "items": {"enum": COLUMNS},
                                    "minItems": 3,
                                    "maxItems": 3,
                                    "uniqueItems": True,
                                },
                                "data": {"type": "array", "items": ROW, "minItems": 1},
                            },
                            "required": ["columns", "data"],
                        },
                    ),
                    _one("dataframe_records", {"type": "array", "items": RECORD, "minItems": 1}),
                    _one("instances", {"type": "array", "items": ROW, "minItems": 1}),
                    _one(
                        "inputs",
                        {
                            "type": "object",
                            "properties": {
                                c: {"type": "array", "items": NUMBER, "minItems": 1, "maxItems": 1}
                                for c in COLUMNS
                            },
                            "required": COLUMNS,
                        },
                    ),
                ]
            }
        ),
        "/predict": _post({"oneOf": [RECORD, {"type": "array", "items": RECORD, "minItems": 1}]}),
        "/ping": _get(),
        "/health": _get(),
        "/version": _get(),
    },
}
TEMPLATE = {"dataframe_split": {"columns": COLUMNS, "data": [[1200.0, 41.5, 8.0]]}}
NUMBERS = ["dataframe_split.data.0.0", "dataframe_split.data.0.1", "dataframe_split.data.0.2"]


def _check(response: Any, where: str, problems: list[str]) -> None:
    status = response.status_code
    if status >= 500:
        problems.append(f"{where} -> {status}: {response.text[:300]}")
    elif status >= 400:
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if not isinstance(payload, dict) or not {"error_code", "message"} <= set(payload):
            problems.append(
                f"{where} -> {status} not in the documented format: {response.text[:200]}"
            )


def test_fuzzing_the_scoring_server_finds_no_server_errors(tmp_path: Path) -> None:
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import strategies as st
    from hypothesis.errors import Unsatisfiable
    from schemathesis import GenerationMode

    from headrace.runtime.workspace import open_workspace

    init_workspace(tmp_path)
    ws = open_workspace(tmp_path)
    OPENED.append(ws)
    hr.log_model(fitted(), "delay", frame=frame(), workspace=ws)
    problems: list[str] = []
    seen: dict[int, int] = {}
    with serve(ws, "delay", max_body=MAX_BODY) as running:
        schema = schemathesis.openapi.from_dict(SCHEMA)
        fuzz = settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        for result in schema.get_all_operations():
            operation = result.ok()
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

                @fuzz
                @given(case=operation.as_strategy(generation_mode=mode))
                def call(case: Any) -> None:
                    response = case.call(base_url=running.url, timeout=30)
                    seen[response.status_code] = seen.get(response.status_code, 0) + 1
                    _check(response, f"{case.method} {case.formatted_path}", problems)

                try:
                    call()
                except Unsatisfiable:  # no invalid request exists for a parameterless GET
                    continue

        @fuzz
        @given(
            path=st.sampled_from(["/invocations", "/predict"]),
            body=hostile(TEMPLATE, NUMBERS, MAX_BODY),
        )
        def attack(path: str, body: bytes) -> None:
            response = httpx.post(
                running.url + path,
                content=body,
                headers={"content-type": "application/json"},
                timeout=60,
            )
            seen[response.status_code] = seen.get(response.status_code, 0) + 1
            _check(response, f"POST {path} {body[:60]!r}", problems)
            if response.status_code not in (400, 413):  # every one of them is refused
                problems.append(f"POST {path} {body[:60]!r} -> {response.status_code}")

        attack()
        assert httpx.get(f"{running.url}/health").status_code == 200
    assert problems == []
    assert seen.get(200, 0) > 5 and seen.get(400, 0) > 20 and seen.get(413, 0) > 0, seen

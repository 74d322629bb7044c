"""The OpenAPI surface fuzzed (schemathesis, bounded): valid and invalid requests to every
operation, as an admin and as a viewer. No answer is a 5xx; and a viewer, whose every
mutating call is refused, changes nothing in the store (the audit log records the
refusals, as it should)."""

from __future__ import annotations

import hashlib
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

"""A guarded alias through the team server: the alias route, the MLflow alias route and
the client judge it by its promotion policy as the local API does; an override takes
a reason and the maintainer role, and every refusal and override is audited."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import headrace as hr
from headrace.client import Remote
from headrace.core.policies import POLICIES
from headrace.runtime.remote import RemoteError
from tests.registry.test_models import Rule
from tests.server.conftest import running_server

PROJECT = """
from headrace import policies as p

p.promotion_policy("guarded_spend", to="champion", rules=[p.metric_at_least("auc", 0.9)])
"""

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _forget_policies() -> Iterator[None]:
    """The server runs in this process: the policy its project declared must not
    outlive the test."""
    yield
    POLICIES.pop(("guarded_spend", "champion"), None)


def test_the_server_judges_a_guarded_alias_and_audits_overrides(tmp_path: Path) -> None:
    with running_server(tmp_path / "ws", PROJECT, worker=False) as server:
        api, ws = server.api, server.ws
        for auc in (0.95, 0.5):
            with hr.start_run("guarded_spend", workspace=ws):
                hr.log_metric("auc", auc)
                hr.log_model(Rule(), "guarded_spend")
        dev = server.headers(server.token_for("dev", "developer"))
        lead_token = server.token_for("lead", "maintainer")
        lead = server.headers(lead_token)
        url = f"{api}/models/guarded_spend/aliases/champion"

        first = httpx.put(url, json={"version": 1}, headers=lead)
        assert first.status_code == 200 and first.json()["previous"] is None
        refused = httpx.put(url, json={"version": 2, "reason": "trust me"}, headers=lead)
        assert refused.status_code == 409
        body = refused.json()
        assert body["error_code"] == "POLICY_REFUSED" and body["version"] == 2
        assert body["rules"] == ["auc ≥ 0.9"]
        assert "refuses version 2: rule 'auc ≥ 0.9' failed: auc = 0.5" in body["message"]
        assert ws.store.registry.resolve("guarded_spend", "champion").version == 1

        # the MLflow client's route is held to the same rule
        mlflow = httpx.post(
            f"{server.root}/api/2.0/mlflow/registered-models/alias",
            json={"name": "guarded_spend", "alias": "champion", "version": "2"},
            headers=lead,
        )
        assert mlflow.status_code == 409 and "refuses version 2" in mlflow.json()["message"]
        assert ws.store.registry.resolve("guarded_spend", "champion").version == 1

        # an override: a developer may not; a maintainer must give a reason
        override = {"version": 2, "override": True, "reason": "holdout month broken"}
        denied = httpx.put(url, json=override, headers=dev)
        assert denied.status_code == 403 and denied.json()["permission"] == "override_policy"
        assert denied.json()["role"] == "maintainer"
        no_reason = httpx.put(url, json={"version": 2, "override": True}, headers=lead)
        assert no_reason.status_code == 400
        assert "needs a reason: pass --reason WHY" in no_reason.json()["message"]
        assert ws.store.registry.resolve("guarded_spend", "champion").version == 1

        # the client (the CLI's way to the server) gets the same refusal, then overrides
        client = Remote(server.root, lead_token)
        try:
            with pytest.raises(RemoteError, match="refuses version 2") as caught:
                client.set_alias("guarded_spend", "champion", 2)
            assert caught.value.status == 409
            assert (
                client.set_alias("guarded_spend", "champion", 2, override=True, reason="fix") == 1
            )
        finally:
            client.close()
        assert ws.store.registry.resolve("guarded_spend", "champion").version == 2

        audit = [
            (e.actor, e.action, e.outcome, e.details)
            for e in ws.store.governance.audit(limit=1000)
            if e.action in ("model.alias", "model.override")
        ]
        outcomes = [(actor, action, outcome) for actor, action, outcome, _ in audit]
        assert outcomes == [
            ("lead", "model.alias", "ok"),
            ("lead", "model.alias", "failed"),
            ("lead", "model.alias", "failed"),  # the MLflow route
            ("dev", "model.alias", "denied"),
            ("lead", "model.alias", "failed"),
            ("lead", "model.alias", "failed"),  # the client's refusal
            ("lead", "model.override", "ok"),
            ("lead", "model.alias", "ok"),
        ]
        assert audit[-2][3]["overridden"] == ["auc ≥ 0.9 (auc = 0.5)"]
        assert audit[-2][3]["reason"] == "fix"
        assert ws.store.governance.verify()[1] is None

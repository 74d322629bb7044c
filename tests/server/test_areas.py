"""The /api/v1 routes over every area, through HTTP, with the roles that may (and may
not) call them, the audit of each mutating call, and personal columns masked."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.server.conftest import TeamServer, running_server

PROJECT = """
import pandas as pd
from headrace import checks as c

@hr.asset(
    personal=["email"],
    primary_key="id",
    checks=[c.between("amount", 0, 100)],
)
def customers(*, bad: int = 0, n: int = 3) -> pd.DataFrame:
    return pd.DataFrame({
        "id": list(range(n)),
        "email": [f"user{i}@example.com" for i in range(n)],
        "amount": [10.0 * (i + 1) for i in range(n - 1)] + [500.0 if bad else 30.0],
    })

@hr.asset
def total(customers: pd.DataFrame) -> float:
    return float(customers.amount.sum())
"""

pytestmark = pytest.mark.integration


def _wait(server: TeamServer, run_id: str) -> dict[str, Any]:
    deadline = time.time() + 60
    while time.time() < deadline:
        run = httpx.get(f"{server.api}/runs/{run_id}", headers=server.headers()).json()
        if run["status"] not in ("running", "queued"):
            return dict(run)
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} did not finish")


def test_every_area_over_http_with_roles_audit_and_masking(tmp_path: Path) -> None:
    with running_server(tmp_path / "ws", PROJECT) as server:
        api, ws = server.api, server.ws
        viewer = server.headers(server.token_for("vera", "viewer"))
        dev = server.headers(server.token_for("dev", "developer"))
        lead = server.headers(server.token_for("lead", "maintainer"))

        # branches: a developer makes one; main is protected
        made = httpx.post(f"{api}/branches", json={"name": "dev"}, headers=dev)
        assert made.status_code == 201 and made.json()["name"] == "dev"
        assert httpx.post(f"{api}/branches", json={"name": "x"}, headers=viewer).status_code == 403
        bad_name = httpx.post(f"{api}/branches", json={"name": ""}, headers=dev)
        assert bad_name.status_code == 400 and "name" in bad_name.json()["message"]
        names = [b["name"] for b in httpx.get(f"{api}/branches", headers=viewer).json()["branches"]]
        assert names == ["dev", "main"] or sorted(names) == ["dev", "main"]

        # runs: a developer runs on dev, not on main
        refused = httpx.post(f"{api}/runs", json={"branch": "main"}, headers=dev)
        assert refused.status_code == 403 and refused.json()["permission"] == "merge_protected"
        started = httpx.post(f"{api}/runs", json={"branch": "dev"}, headers=dev)
        assert started.status_code == 202, started.text
        run = _wait(server, started.json()["run_id"])
        assert run["status"] == "success" and run["branch"] == "dev"
        assert {s["asset"] for s in run["step_records"]} == {"customers", "total"}
        runs = httpx.get(f"{api}/runs?limit=5", headers=viewer).json()["runs"]
        assert runs[0]["id"] == run["id"] and runs[0]["steps"] == {"success": 2}
        nothing = httpx.post(f"{api}/runs", json={"select": "nope", "branch": "dev"}, headers=dev)
        assert nothing.status_code == 400 and "nope" in nothing.json()["message"]
        assert httpx.get(f"{api}/runs/ffffffffffff", headers=viewer).status_code == 404

        # assets, versions, previews: the personal column masked for a viewer
        assets = httpx.get(f"{api}/assets?branch=dev", headers=viewer).json()["assets"]
        customers = next(a for a in assets if a["name"] == "customers")
        assert customers["personal"] == ["email"] and customers["upstream"] == []
        version_id = customers["heads"][""]
        seen = httpx.get(f"{api}/versions/{version_id}/preview", headers=viewer).json()
        assert seen["masked"] == ["email"]
        assert {r["email"] for r in seen["rows"]} == {"***"} and len(seen["rows"]) == 3
        clear = httpx.get(f"{api}/versions/{version_id}/preview", headers=lead).json()
        assert clear["rows"][0]["email"] == "user0@example.com" and clear["masked"] == []
        detail = httpx.get(f"{api}/versions/{version_id}", headers=viewer).json()
        assert detail["asset"] == "customers" and detail["checks"][0]["passed"] is True
        assert "blob" not in detail

        # a bad version is quarantined; its failing rows are masked; a maintainer releases
        second = httpx.post(
            f"{api}/runs",
            json={"branch": "dev", "select": "customers", "params": {"bad": 1, "n": 4}},
            headers=dev,
        )
        assert _wait(server, second.json()["run_id"])["status"] == "failed"
        held = httpx.get(f"{api}/quarantine", headers=viewer).json()["quarantine"]
        assert [(q["asset"], q["branch"]) for q in held] == [("customers", "dev")]
        bad_id = held[0]["version_id"]
        failing = httpx.get(f"{api}/versions/{bad_id}", headers=viewer).json()["checks"]
        sample = next(c for c in failing if not c["passed"])["sample"]
        assert sample and all(row.get("email", "***") == "***" for row in sample)
        deny = httpx.post(f"{api}/quarantine/{bad_id}/release", headers=dev)
        assert deny.status_code == 403 and deny.json()["permission"] == "release_quarantine"
        ok = httpx.post(f"{api}/quarantine/{bad_id}/release", headers=lead)
        assert ok.status_code == 200 and ok.json()["status"] == "released"

        # diff of the two versions on dev: rows compared by key, emails masked
        diff = httpx.get(
            f"{api}/assets/customers/diff",
            params={"old": version_id, "new": "dev"},
            headers=viewer,
        ).json()["diff"]
        assert diff["added_rows"] == 1 and diff["changed_rows"] == 0
        assert diff["added_sample"][0]["email"] == "***"

        # merge into main: not a developer's call; a maintainer's
        merge = httpx.post(f"{api}/branches/dev/merge", json={"into": "main"}, headers=dev)
        assert merge.status_code == 403
        merged = httpx.post(f"{api}/branches/dev/merge", json={"into": "main"}, headers=lead)
        assert merged.status_code == 200, merged.text
        main_assets = httpx.get(f"{api}/assets", headers=viewer).json()["assets"]
        assert next(a for a in main_assets if a["name"] == "customers")["heads"][""] == bad_id
        log = httpx.get(f"{api}/branches/main/log", headers=viewer).json()["events"]
        assert log[0]["actor"] == "lead"

        # models: registered in Python, promoted over HTTP by a maintainer only
        from sklearn.linear_model import LinearRegression

        from headrace.registry.service import register_model

        model = LinearRegression().fit([[0.0], [1.0]], [0.0, 1.0])
        register_model(ws, model, "spend", data_versions=[version_id])
        alias = {"version": 1, "reason": "first"}
        assert (
            httpx.put(f"{api}/models/spend/aliases/prod", json=alias, headers=dev).status_code
            == 403
        )
        moved = httpx.put(f"{api}/models/spend/aliases/prod", json=alias, headers=lead)
        assert moved.status_code == 200 and moved.json()["previous"] is None
        assert httpx.get(f"{api}/models", headers=viewer).json()["models"] == ["spend"]
        versions = httpx.get(f"{api}/models/spend/versions", headers=viewer).json()["versions"]
        assert versions[0]["aliases"] == ["prod"]
        approved = httpx.post(
            f"{api}/models/spend/versions/1/transition", json={"status": "approved"}, headers=lead
        )
        assert approved.status_code == 200 and approved.json()["status"] == "approved"
        wrong = httpx.post(
            f"{api}/models/spend/versions/1/transition", json={"status": "gone"}, headers=lead
        )
        assert wrong.status_code == 400 and "status" in wrong.json()["message"]
        runs_page = httpx.get(f"{api}/runs?limit=1", headers=viewer).json()
        assert len(runs_page["runs"]) == 1 and runs_page["next_page_token"] == "1"
        rest = httpx.get(f"{api}/runs?limit=10&page_token=1", headers=viewer).json()
        assert len(rest["runs"]) == 1 and rest["next_page_token"] is None
        assert httpx.get(f"{api}/runs?page_token=-1", headers=viewer).status_code == 400
        deployments = httpx.get(f"{api}/deployments", headers=viewer).json()["deployments"]
        assert deployments == [
            {
                "model": "spend",
                "alias": "prod",
                "version": 1,
                "status": "approved",
                "predictions": 0,
            }
        ]

        # prediction logs: inputs from a personal column masked for a viewer
        ws.store.predictions.write(
            [
                {
                    "id": "p1",
                    "request_id": "r1",
                    "model": "spend",
                    "version": 1,
                    "role": "served",
                    "row": 0,
                    "key": None,
                    "inputs": '{"email": "a@b.c", "amount": 3.0}',
                    "output": "3.0",
                    "latency_ms": 1.0,
                    "created_at": time.time(),
                    "score": None,
                    "label": None,
                    "labeled_at": None,
                }
            ]
        )
        logged = httpx.get(f"{api}/predictions?model=spend", headers=viewer).json()
        assert logged["predictions"][0]["inputs"] == {"email": "***", "amount": 3.0}
        unmasked = httpx.get(f"{api}/predictions?model=spend", headers=lead).json()
        assert unmasked["predictions"][0]["inputs"]["email"] == "a@b.c"

        # experiments, monitors and alerts answer (empty here), paged
        assert httpx.get(f"{api}/experiments", headers=viewer).status_code == 200
        assert httpx.get(f"{api}/monitors", headers=viewer).json()["monitors"] == []
        assert httpx.get(f"{api}/alerts", headers=viewer).json()["alerts"] == []

        # the audit: every mutating call, with its outcome
        entries = [(e.actor, e.action, e.outcome) for e in ws.store.governance.audit(limit=1000)]
        for expected in [
            ("dev", "branch.create", "ok"),
            ("vera", "branch.create", "denied"),
            ("dev", "branch.create", "failed"),
            ("dev", "run.start", "denied"),
            ("dev", "run.start", "ok"),
            ("dev", "run.start", "failed"),
            ("dev", "quarantine.release", "denied"),
            ("lead", "quarantine.release", "ok"),
            ("dev", "branch.merge", "denied"),
            ("lead", "branch.merge", "ok"),
            ("dev", "model.alias", "denied"),
            ("lead", "model.alias", "ok"),
            ("lead", "model.transition", "ok"),
            ("lead", "model.transition", "failed"),
        ]:
            assert expected in entries, expected
        assert ws.store.governance.verify()[1] is None


def test_the_openapi_document_lists_every_area(team_server: TeamServer) -> None:
    doc = httpx.get(f"{team_server.api}/openapi.json").json()
    paths = set(doc["paths"])
    for path in (
        "/api/v1/assets",
        "/api/v1/versions/{version_id}/preview",
        "/api/v1/branches/{name}/merge",
        "/api/v1/runs",
        "/api/v1/quarantine/{version_id}/release",
        "/api/v1/experiments/{name}/runs",
        "/api/v1/models/{name}/aliases/{alias}",
        "/api/v1/deployments",
        "/api/v1/predictions",
        "/api/v1/monitors/{name}/windows",
        "/api/v1/alerts",
        "/api/v1/lineage",
        "/api/v1/lineage/graph",
    ):
        assert path in paths, path
    assert httpx.get(f"{team_server.api}/docs").status_code == 200


FLAKY = """
from pathlib import Path

HERE = Path(__file__).parent


@hr.asset
def base() -> int:
    return 1


@hr.asset
def top(base: int) -> int:
    if not (HERE / "ready").exists():
        raise RuntimeError("not ready yet")
    return base + 1
"""


def test_runs_started_through_the_server_go_through_the_queue(tmp_path: Path) -> None:
    """POST /runs checks and queues; a worker (here: none until run_once) executes, as
    the caller; GET /runs/{id} says queued until then, and for a resume too."""
    from headrace.scheduling.daemon import run_once

    with running_server(tmp_path / "ws", FLAKY, worker=False) as server:
        api, ws = server.api, server.ws
        ws.store.branches.create("dev", actor="root")
        dev = server.headers(server.token_for("dev", "developer"))

        # refused at once, nothing queued: an unknown selection, param, branch
        for body, expected in (
            ({"select": "nope", "branch": "dev"}, "nope"),
            ({"select": "base", "branch": "dev", "params": {"x": 1}}, "x"),
            ({"select": "base", "branch": "gone"}, "gone"),
        ):
            refused = httpx.post(f"{api}/runs", json=body, headers=dev)
            assert refused.status_code in (400, 404), refused.text
            assert expected in refused.json()["message"]
        assert ws.store.queue.counts() == {}

        started = httpx.post(f"{api}/runs", json={"branch": "dev"}, headers=dev)
        assert started.status_code == 202 and started.json()["status"] == "queued"
        run_id, queue_id = started.json()["run_id"], started.json()["queue_id"]
        waiting = httpx.get(f"{api}/runs/{run_id}", headers=dev).json()
        assert waiting["status"] == "queued" and waiting["queue"]["id"] == queue_id
        assert waiting["queue"]["pipeline"] == "server" and waiting["step_records"] == []
        audited = [e for e in ws.store.governance.audit(limit=100) if e.action == "run.start"]
        assert sorted(e.outcome for e in audited) == ["failed", "failed", "failed", "ok"]
        [entry] = [e for e in audited if e.outcome == "ok"]
        assert entry.details["queue_id"] == queue_id and entry.details["run_id"] == run_id

        report = run_once(ws)
        assert report.ran == [(queue_id, "server", "failed")]
        failed = httpx.get(f"{api}/runs/{run_id}", headers=dev).json()
        assert failed["status"] == "failed" and failed["trigger"] == "server"
        moved = ws.store.branches.log(branch="dev", asset="base")
        assert moved and moved[0].actor == "dev"  # the worker acted as the caller

        # resumed through the server: queued, then finished without redoing base
        (tmp_path / "ws" / "ready").touch()
        again = httpx.post(f"{api}/runs/{run_id}/resume", headers=dev)
        assert again.status_code == 202 and again.json()["run_id"] == run_id
        assert httpx.get(f"{api}/runs/{run_id}", headers=dev).json()["status"] == "queued"
        run_once(ws)
        done = httpx.get(f"{api}/runs/{run_id}", headers=dev).json()
        assert done["status"] == "success"
        assert {s["key"]: s["status"] for s in done["step_records"]} == {
            "base": "success",
            "top": "success",
        }
        assert len(ws.store.versions.list("base")) == 1  # base was not made again
        twice = httpx.post(f"{api}/runs/{run_id}/resume", headers=dev)
        assert twice.status_code == 400 and "already succeeded" in twice.json()["message"]
        assert ws.store.queue.counts() == {"failed": 1, "success": 1}


def test_the_api_serves_changed_definitions(tmp_path: Path) -> None:
    """The project's files change under a running server: new assets and schedules are
    served (and run) without a restart; a broken edit keeps the last good ones."""
    import textwrap

    from tests.projects import HEADER

    with running_server(tmp_path / "ws", FLAKY) as server:
        api, headers = server.api, server.headers()
        names = {a["name"] for a in httpx.get(f"{api}/assets", headers=headers).json()["assets"]}
        assert names == {"base", "top"}
        module = server.ws.settings.project_module
        source = tmp_path / "ws" / f"{module}.py"
        grown = FLAKY + textwrap.dedent(
            """
            from headrace import automation as auto


            @hr.asset
            def extra(base: int) -> int:
                return base * 10


            auto.pipeline("extras", "extra")
            auto.schedule("daily_extras", "extras", cron="0 5 * * *")
            """
        )
        source.write_text(HEADER + grown)
        time.sleep(2.5)  # the server looks at the files every 2 s
        assets = httpx.get(f"{api}/assets", headers=headers).json()["assets"]
        assert {a["name"] for a in assets} == {"base", "top", "extra"}
        schedules = httpx.get(f"{api}/schedules", headers=headers).json()["schedules"]
        assert [s["name"] for s in schedules] == ["daily_extras"]
        started = httpx.post(f"{api}/runs", json={"select": "+extra"}, headers=headers)
        assert started.status_code == 202, started.text
        ran = _wait(server, started.json()["run_id"])
        assert ran["status"] == "success", [(s["key"], s["error"]) for s in ran["step_records"]]

        source.write_text(HEADER + grown + "\nthis is not python\n")
        time.sleep(2.5)
        assets = httpx.get(f"{api}/assets", headers=headers).json()["assets"]
        assert {a["name"] for a in assets} == {"base", "top", "extra"}  # the last good ones
        listed = httpx.get(f"{api}/schedules", headers=headers)
        assert listed.status_code == 200 and listed.json()["schedules"][0]["name"] == "daily_extras"

"""HEADRACE_URL + HEADRACE_TOKEN: the Python API and the CLI work against a team server,
from a folder with no workspace at all, as the token's principal, with its roles."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

import headrace as hr
from headrace.client import RemoteError
from headrace.scheduling.definitions import load_automation
from tests.integration.conftest import HEADRACE
from tests.server.conftest import TeamServer, running_server

PROJECT = """
import pandas as pd
from headrace import checks as c

@hr.asset(personal=["email"], checks=[c.between("id", 0, 9)])
def people(*, n: int = 3) -> pd.DataFrame:
    return pd.DataFrame({"id": range(n), "email": [f"p{i}@x.io" for i in range(n)]})

@hr.asset
def head_count(people: pd.DataFrame) -> int:
    return len(people)
"""

pytestmark = pytest.mark.integration


def _cli(server: TeamServer, token: str, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADRACE_")}
    env.update(HEADRACE_URL=server.root, HEADRACE_TOKEN=token, COLUMNS="200")
    return subprocess.run(
        [*HEADRACE, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_the_cli_and_python_api_target_a_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "laptop"  # no headrace.toml here or above
    elsewhere.mkdir()
    with running_server(tmp_path / "ws", PROJECT) as server:
        dev = server.token_for("dev", "developer")
        lead = server.token_for("lead", "maintainer")

        who = _cli(server, dev, elsewhere, "whoami")
        assert (
            who.returncode == 0 and "dev (person)" in who.stdout and "developer in *" in who.stdout
        )
        made = _cli(server, dev, elsewhere, "branch", "create", "dev")
        assert made.returncode == 0, made.stderr
        assert "created branch dev from main" in made.stdout
        ran = _cli(server, dev, elsewhere, "materialize", "--branch", "dev", "-p", "n=4")
        assert ran.returncode == 0, ran.stdout + ran.stderr
        assert "success" in ran.stdout and "2 success" in ran.stdout
        run_id = ran.stdout.split("run ", 1)[1].split()[0]
        shown = _cli(server, dev, elsewhere, "runs", "show", run_id[:12])
        assert shown.returncode == 0 and f"run {run_id}" in shown.stdout
        assert "people" in shown.stdout and "head_count" in shown.stdout
        listed = _cli(server, dev, elsewhere, "runs", "list")
        assert run_id[:12] in listed.stdout
        branches = _cli(server, dev, elsewhere, "branch", "list")
        assert "dev" in branches.stdout and "main" in branches.stdout

        # a developer may not merge into main; a maintainer may
        refused = _cli(server, dev, elsewhere, "merge", "dev")
        assert refused.returncode == 1
        assert "403" in refused.stderr and "merge_protected" in refused.stderr
        merged = _cli(server, lead, elsewhere, "merge", "dev")
        assert merged.returncode == 0 and "moved 2 versions from dev into main" in merged.stdout
        on_main = [e for e in server.ws.store.branches.log(branch="main") if e.kind == "merge"]
        assert on_main and on_main[0].actor == "lead"

        # models: listed and promoted through the server, by role
        from sklearn.linear_model import LinearRegression

        from headrace.registry.service import register_model

        fitted = LinearRegression().fit([[0.0], [1.0]], [0.0, 1.0])
        register_model(server.ws, fitted, "spend")
        register_model(server.ws, fitted, "spend")
        denied = _cli(server, dev, elsewhere, "models", "alias", "spend", "champion", "1")
        assert denied.returncode == 1 and "promote_model" in denied.stderr
        moved = _cli(server, lead, elsewhere, "models", "alias", "spend", "champion", "2")
        assert moved.returncode == 0 and "spend@champion: ∅ → 2" in moved.stdout
        listed_models = _cli(server, dev, elsewhere, "models", "list")
        assert "spend" in listed_models.stdout and "champion→2" in listed_models.stdout
        versions = _cli(server, dev, elsewhere, "models", "versions", "spend")
        assert versions.returncode == 0 and "champion" in versions.stdout
        retired = _cli(server, lead, elsewhere, "models", "transition", "spend", "1", "retired")
        assert retired.returncode == 0 and "spend version 1: candidate → retired" in retired.stdout

        promoted = _cli(server, lead, elsewhere, "models", "promote", "spend", "--to", "staging")
        assert promoted.returncode == 0, promoted.stdout + promoted.stderr
        assert "promoted: staging → version 2" in promoted.stdout
        assert "no policy is declared for staging" in promoted.stdout
        not_yours = _cli(server, dev, elsewhere, "models", "promote", "spend", "--to", "prod")
        assert not_yours.returncode == 1 and "promote_model" in not_yours.stderr
        waiting = _cli(
            server,
            lead,
            elsewhere,
            "models",
            "promote",
            "spend",
            "--to",
            "prod",
            "--require-approval",
        )
        assert waiting.returncode == 0 and "waiting for approval" in waiting.stdout
        approved = _cli(server, lead, elsewhere, "models", "approve", "spend", "--alias", "prod")
        assert approved.returncode == 0 and "promoted: prod → version 2" in approved.stdout
        assert server.ws.store.registry.resolve("spend", "prod").version == 2

        # assets, and the audit log (an admin's), through the server
        assets = _cli(server, dev, elsewhere, "assets", "list", "+head_count")
        assert assets.returncode == 0 and "people" in assets.stdout and "2 assets" in assets.stdout
        assert _cli(server, dev, elsewhere, "audit", "list").returncode == 1  # an admin's
        audit = _cli(server, server.token, elsewhere, "audit", "list", "--limit", "1000")
        assert audit.returncode == 0 and "model.promote" in audit.stdout
        intact = _cli(server, server.token, elsewhere, "audit", "verify")
        assert intact.returncode == 0 and "audit log intact" in intact.stdout

        # principals and tokens, managed by an admin from afar
        root = server.token
        bot = _cli(
            server,
            root,
            elsewhere,
            "principals",
            "create",
            "bot",
            "--service",
            "--role",
            "developer",
        )
        assert bot.returncode == 0 and "created service bot as developer in *" in bot.stdout
        bot_token = bot.stdout.strip().split()[-1]
        assert bot_token.startswith("hr_")
        assert "developer in *" in _cli(server, bot_token, elsewhere, "whoami").stdout
        people = _cli(server, root, elsewhere, "principals", "list")
        assert "bot" in people.stdout and "service" in people.stdout
        tokens = _cli(server, root, elsewhere, "tokens", "list", "bot")
        token_id = bot_token.split("_")[1]
        assert token_id in tokens.stdout and "live" in tokens.stdout
        assert bot_token not in tokens.stdout  # ids, never secrets
        assert _cli(server, dev, elsewhere, "tokens", "revoke", token_id).returncode == 1
        assert _cli(server, root, elsewhere, "tokens", "revoke", token_id).returncode == 0
        assert _cli(server, bot_token, elsewhere, "whoami").returncode == 1

        # quarantine: a bad version held; listed, and released by a maintainer only
        bad = _cli(server, dev, elsewhere, "materialize", "people", "--branch", "dev", "-p", "n=12")
        assert bad.returncode == 1
        held = _cli(server, dev, elsewhere, "quarantine", "list")
        assert held.returncode == 0 and "people" in held.stdout and "held" in held.stdout
        version = held.stdout.split("\n")[1].split()[0]
        no = _cli(server, dev, elsewhere, "quarantine", "release", version)
        assert no.returncode == 1 and "release_quarantine" in no.stderr
        yes = _cli(server, lead, elsewhere, "quarantine", "release", version)
        assert yes.returncode == 0 and f"released {version}" in yes.stdout
        assert "nothing in quarantine" in _cli(server, dev, elsewhere, "quarantine", "list").stdout

        # a local-only option is refused, not silently dropped
        local = _cli(server, dev, elsewhere, "materialize", "--executor", "threads")
        assert local.returncode != 0 and "own executor" in (local.stdout + local.stderr)

        # the Python API: the same calls, through the server, with masking by role
        monkeypatch.setenv("HEADRACE_URL", server.root)
        monkeypatch.setenv("HEADRACE_TOKEN", dev)
        people = hr.read("people", as_="pandas")
        assert list(people["email"]) == ["***"] * 4 and list(people["id"]) == [0, 1, 2, 3]
        assert hr.read("head_count") == 4
        result = hr.materialize("people", branch="dev", params={"n": 5}, force=True)
        assert result.success and result.materialized == ["people"]
        assert len(hr.read("people", branch="dev")) == 5
        monkeypatch.setenv("HEADRACE_TOKEN", lead)
        assert hr.read("people", branch="dev", as_="polars")["email"][0] == "p0@x.io"
        with pytest.raises(RemoteError, match=r"403.*merge_protected"):
            monkeypatch.setenv("HEADRACE_TOKEN", dev)
            hr.materialize("people")  # main is protected
        with pytest.raises(RemoteError, match="executor"):
            hr.materialize("people", branch="dev", executor="threads")
        monkeypatch.setenv("HEADRACE_TOKEN", "hr_nope_nope")
        with pytest.raises(RemoteError, match="401"):
            hr.read("people")
        monkeypatch.delenv("HEADRACE_TOKEN")
        with pytest.raises(RemoteError, match="HEADRACE_TOKEN is not"):
            hr.read("people")


def test_tracked_runs_log_to_the_server(
    team_server: TeamServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no workspace here: everything goes to the server
    monkeypatch.setenv("HEADRACE_URL", team_server.root)
    monkeypatch.setenv("HEADRACE_TOKEN", team_server.token_for("dev", "developer"))
    notes = tmp_path / "notes.txt"
    notes.write_text("remote artifact")
    with hr.start_run("remote", name="r1", params={"lr": 0.1}, tags={"team": "ml"}) as run:
        for step in range(2500):  # more than one batch
            hr.log_metric("loss", 1 / (step + 1), step=step)
        hr.log_metrics({"auc": 0.9})
        hr.log_artifact(notes, artifact_path="docs")
        import pandas as pd
        from sklearn.linear_model import LinearRegression

        frame = pd.DataFrame({"x": [0.0, 1.0, 2.0]})
        fitted = LinearRegression().fit(frame, [0.0, 2.0, 4.0])
        made = hr.log_model(fitted, "doubler", frame=frame)
        assert made.version == 1 and made.run_id == run.id
    with hr.start_run("remote", name="r3", params={"lr": 0.5}):
        hr.log_metric("auc", 0.7)
    found_remote = hr.search_runs("params.lr > 0.2", experiments=["remote"])
    assert [r.name for r in found_remote.runs] == ["r3"]
    ordered = hr.search_runs(experiments=["remote"], order_by="metrics.auc DESC", max_results=1)
    assert [r.name for r in ordered.runs] == ["r1"] and ordered.next_page_token
    rest = hr.search_runs(
        experiments=["remote"], order_by="metrics.auc DESC", page_token=ordered.next_page_token
    )
    assert [r.name for r in rest.runs] == ["r3"] and rest.next_page_token is None
    only = hr.search_runs(experiments=["remote"], columns=["metrics.auc"], max_results=5)
    assert all(r.params == {} for r in only.runs)
    with pytest.raises(RemoteError, match=r"400.*at position 12"):
        hr.search_runs("params.lr >>> 1")
    ws = team_server.ws
    stored = ws.store.registry.version("doubler", 1)
    assert stored.run_id == run.id and stored.flavor == "sklearn" and stored.created_by == "dev"
    assert stored.signature is not None and stored.signature["inputs"][0]["name"] == "x"
    for uri in ("doubler", "doubler/1"):
        loaded = hr.load_model(uri)
        assert loaded.version == 1
        assert list(loaded.predict(pd.DataFrame({"x": [3.0]}))) == pytest.approx([6.0])
    from headrace.io.signature import SignatureError

    with pytest.raises(SignatureError, match="'x'"):  # the signature came along
        hr.load_model("doubler").predict(pd.DataFrame({"y": [1.0]}))
    with pytest.raises(RemoteError, match="no alias"):
        hr.load_model("doubler@champion")
    found = ws.store.tracking.search(experiments_=["remote"], filter="attributes.name = 'r1'")
    assert [r.id for r in found.runs] == [run.id]
    tracked = found.runs[0]
    assert tracked.status == "success" and tracked.name == "r1"
    assert tracked.params == {"lr": "0.1"} and tracked.tags["team"] == "ml"
    assert tracked.metrics["auc"] == 0.9 and tracked.metrics["loss"] == 1 / 2500
    assert len(ws.store.tracking.metric_history([run.id], ["loss"])) == 2500
    ((path, blob, _),) = ws.store.tracking.artifacts(run.id)
    assert path == "docs/notes.txt" and ws.blobs.get_bytes(blob) == b"remote artifact"
    with pytest.raises(RuntimeError, match="boom"), hr.start_run("remote", name="r2"):
        raise RuntimeError("boom")
    failed = ws.store.tracking.search(experiments_=["remote"], filter="attributes.name = 'r2'")
    assert failed.runs[0].status == "failed"

    monkeypatch.setenv("HEADRACE_TOKEN", team_server.token_for("vera", "viewer"))
    with pytest.raises(RemoteError, match=r"403.*log run"):
        hr.start_run("remote")
    with pytest.raises(RemoteError, match=r"403.*register model"):
        hr.log_model(fitted, "doubler")
    assert len(ws.store.registry.versions("doubler")) == 1

    # the CLI's tracking reads, through the server
    vera = os.environ["HEADRACE_TOKEN"]
    listed = _cli(team_server, vera, tmp_path, "experiments", "list")
    assert listed.returncode == 0, listed.stderr
    row = next(line.split() for line in listed.stdout.splitlines() if "remote" in line)
    assert row[:2] == ["remote", "3"]
    searched = _cli(
        team_server, vera, tmp_path, "runs", "search", "params.lr > 0.2", "--experiment", "remote"
    )
    assert searched.returncode == 0, searched.stderr
    assert "r3" in searched.stdout and "r1" not in searched.stdout
    wrong = _cli(team_server, vera, tmp_path, "runs", "search", "params.lr >>> 1")
    assert wrong.returncode == 1 and "at position 12" in wrong.stderr


DATA_PROJECT = """
import os
from pathlib import Path

import pandas as pd

@hr.asset(personal=["email"], primary_key=["id"])
def people(*, n: int = 3) -> pd.DataFrame:
    return pd.DataFrame({"id": range(n), "email": [f"p{i}@x.io" for i in range(n)]})

@hr.asset
def head_count(people: pd.DataFrame) -> int:
    if not (Path(__file__).parent / "ready").exists():
        raise RuntimeError("not ready yet")
    return len(people)
"""


def test_data_run_and_monitor_commands_target_a_server(tmp_path: Path) -> None:
    """versions, log, show, diff, lineage, runs resume, predictions list and monitor
    list/show answer through the server as they do locally, masking by role."""
    import time

    from headrace.store.monitoring import AlertRecord, WindowRecord

    elsewhere = tmp_path / "laptop"
    elsewhere.mkdir()
    with running_server(tmp_path / "ws", DATA_PROJECT) as server:
        dev = server.token_for("dev", "developer")
        lead = server.token_for("lead", "maintainer")
        assert _cli(server, lead, elsewhere, "materialize", "people").returncode == 0
        assert _cli(server, dev, elsewhere, "branch", "create", "dev").returncode == 0
        grown = _cli(
            server, dev, elsewhere, "materialize", "people", "--branch", "dev", "-p", "n=4"
        )
        assert grown.returncode == 0, grown.stdout + grown.stderr

        # a run that fails, then is resumed through the server once it can succeed
        failed = _cli(server, dev, elsewhere, "materialize", "head_count", "--branch", "dev")
        assert failed.returncode == 1 and "not ready yet" in failed.stdout + failed.stderr
        run_id = failed.stdout.split("run ", 1)[1].split()[0]
        (tmp_path / "ws" / "ready").touch()
        resumed = _cli(server, dev, elsewhere, "runs", "resume", run_id[:12])
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        assert f"run {run_id} success" in resumed.stdout
        assert server.ws.store.runs.get(run_id).status == "success"
        with pytest.MonkeyPatch.context() as env:  # and from Python
            env.setenv("HEADRACE_URL", server.root)
            env.setenv("HEADRACE_TOKEN", dev)
            with pytest.raises(RemoteError, match="already succeeded"):
                hr.resume(run_id)
        again = _cli(server, dev, elsewhere, "runs", "resume", run_id)
        assert again.returncode == 1 and "already succeeded" in again.stderr
        assert _cli(server, dev, elsewhere, "runs", "resume", "nope").returncode == 1
        resumes = [
            e for e in server.ws.store.governance.audit(limit=1000) if e.action == "run.resume"
        ]
        outcomes = [e.outcome for e in resumes]
        assert outcomes == ["ok", "failed", "failed", "failed"] and resumes[0].actor == "dev"

        main_v = server.ws.store.versions.heads("main", ["people"])[("people", None)].id
        dev_v = server.ws.store.versions.heads("dev", ["people"])[("people", None)].id
        versions = _cli(server, dev, elsewhere, "versions", "people")
        assert versions.returncode == 0, versions.stderr
        lines = {line.split()[0]: line for line in versions.stdout.splitlines()[1:]}
        assert lines[main_v].rstrip().endswith("main") and lines[dev_v].rstrip().endswith("dev")

        log = _cli(server, dev, elsewhere, "log", "--branch", "dev")
        assert log.returncode == 0 and "materialize" in log.stdout and "dev" in log.stdout
        rows = [line.split() for line in log.stdout.splitlines()[1:]]
        assert {row[2] for row in rows} == {"dev"} and "head_count" in log.stdout

        shown = _cli(server, dev, elsewhere, "show", "people", "--branch", "dev")
        assert shown.returncode == 0, shown.stderr
        assert "***" in shown.stdout and "p0@x.io" not in shown.stdout
        assert "4 of 4 rows" in shown.stdout
        unmasked = _cli(server, lead, elsewhere, "show", "people", "--branch", "dev")
        assert "p0@x.io" in unmasked.stdout
        old = _cli(server, dev, elsewhere, "show", "people", "--version", main_v[:12])
        assert "3 of 3 rows" in old.stdout
        missing = _cli(server, dev, elsewhere, "show", "nobody")
        assert missing.returncode == 1 and "nobody" in missing.stderr

        diff = _cli(server, dev, elsewhere, "diff", "people", "main", "dev")
        assert diff.returncode == 0, diff.stderr
        assert "rows: 3 → 4 (+1)" in diff.stdout and "added rows (sample of 1)" in diff.stdout
        assert "***" in diff.stdout and "p3@x.io" not in diff.stdout
        bad_side = _cli(server, dev, elsewhere, "diff", "people", "main", "nowhere")
        assert bad_side.returncode == 1 and "nowhere" in bad_side.stderr

        tree = _cli(server, dev, elsewhere, "lineage", "head_count", "--branch", "dev")
        assert tree.returncode == 0, tree.stderr
        assert "head_count" in tree.stdout and "people" in tree.stdout and dev_v[:16] in tree.stdout
        down = _cli(server, dev, elsewhere, "lineage", "people", "--branch", "dev", "--downstream")
        assert down.returncode == 0 and "head_count" in down.stdout

        # prediction logs and monitors, as stored in the server's store
        from sklearn.linear_model import LinearRegression

        from headrace.registry.service import register_model

        register_model(server.ws, LinearRegression().fit([[0.0], [1.0]], [0.0, 1.0]), "spend")
        now = time.time()
        server.ws.store.predictions.write(
            [
                {
                    "id": f"p{i}",
                    "request_id": f"r{i}",
                    "model": "spend",
                    "version": 1,
                    "role": "served",
                    "row": 0,
                    "key": None,
                    "inputs": '{"amount": 3.0}',
                    "output": str(i * 1.5),
                    "latency_ms": 1.0,
                    "created_at": now + i,
                    "score": None,
                    "label": None,
                    "labeled_at": None,
                }
                for i in range(3)
            ]
        )
        logged = _cli(server, dev, elsewhere, "predictions", "list", "spend", "--limit", "2")
        assert logged.returncode == 0, logged.stderr
        assert (
            "r2" in logged.stdout
            and "r0" not in logged.stdout
            and "3 logged in all" in logged.stdout
        )
        window = WindowRecord(
            id="w1",
            monitor="spend_drift",
            model="spend",
            version=1,
            asset_version=None,
            start=now - 3600,
            end=now,
            rows=3,
            labeled=0,
            status="alert",
            drift_share=0.5,
            evaluated_at=now,
            reference=None,
        )
        server.ws.store.monitoring.save_window(window, [])
        server.ws.store.monitoring.add_alert(
            AlertRecord(
                id="a1",
                monitor="spend_drift",
                key="drift",
                window_id="w1",
                message="half the columns drifted",
                payload={},
                created_at=now,
                suppressed=False,
                outcomes=[],
            )
        )
        monitors = _cli(server, dev, elsewhere, "monitor", "list")
        assert monitors.returncode == 0, monitors.stderr
        assert "spend_drift" in monitors.stdout and "(no longer declared)" in monitors.stdout
        windows = _cli(server, dev, elsewhere, "monitor", "show", "spend_drift")
        assert windows.returncode == 0, windows.stderr
        assert "alert" in windows.stdout and "50%" in windows.stdout
        assert "half the columns drifted" in windows.stdout
        none = _cli(server, dev, elsewhere, "monitor", "show", "other")
        assert none.returncode == 0 and "has no windows yet" in none.stdout
        assert "local workspace" not in "".join(
            r.stderr for r in (versions, log, shown, diff, tree, logged, monitors, windows)
        )


QUEUE_PROJECT = """
from headrace import automation as auto


@hr.asset
def a() -> int:
    return 1


auto.pipeline("load", "a", branch="dev")
auto.pipeline("publish", "a")
auto.schedule("hourly_load", "load", every="1h")
auto.schedule("nightly_publish", "publish", cron="0 3 * * *", timezone="Europe/Paris")
auto.asset_sensor("on_a", "load", asset="a")
auto.freshness("a", "26h")
"""


def test_the_queue_and_notifications_through_the_server(tmp_path: Path) -> None:
    from headrace.data.branching import create_branch
    from headrace.scheduling.daemon import run_once

    elsewhere = tmp_path / "laptop"
    elsewhere.mkdir()
    with running_server(tmp_path / "ws", QUEUE_PROJECT, worker=False) as server:
        create_branch(server.ws, "dev")
        dev = server.token_for("dev", "developer")
        vera = server.token_for("vera", "viewer")
        assert "the queue is empty" in _cli(server, vera, elsewhere, "queue").stdout
        added = _cli(server, dev, elsewhere, "queue", "add", "load")
        assert added.returncode == 0, added.stderr
        queue_id = added.stdout.split(" as ")[1].strip()
        assert server.ws.store.queue.get(queue_id).trigger == "manual:dev"
        protected = _cli(server, dev, elsewhere, "queue", "add", "publish")  # onto main
        assert protected.returncode == 1 and "merge_protected" in protected.stderr
        viewer = _cli(server, vera, elsewhere, "queue", "add", "load")
        assert viewer.returncode == 1 and "403" in viewer.stderr
        unknown = _cli(server, dev, elsewhere, "queue", "add", "lod")
        assert unknown.returncode == 1 and "no pipeline named 'lod'" in unknown.stderr
        audit = [e for e in server.ws.store.governance.audit(limit=1000) if e.action == "queue.add"]
        assert [e.outcome for e in audit] == ["ok", "denied", "denied", "failed"]

        listed = _cli(server, vera, elsewhere, "queue")
        assert listed.returncode == 0 and queue_id[:12] in listed.stdout
        assert "waiting for a worker" in listed.stdout and "1 queued" in listed.stdout
        report = run_once(server.ws)  # the server's daemon takes it
        assert report.ran == [(queue_id, "load", "success")]
        done = _cli(server, vera, elsewhere, "queue")
        assert "success" in done.stdout and "1 success" in done.stdout
        none = _cli(server, vera, elsewhere, "notifications")
        assert none.returncode == 0 and "no notifications yet" in none.stdout


def test_schedules_and_sensors_through_the_server(tmp_path: Path) -> None:
    """``schedules list|on|off`` and ``sensors list|on|off`` with HEADRACE_URL set: the
    server's project and switches, under its roles (``main`` needs a maintainer), and
    every switch audited."""
    from headrace.data.branching import create_branch
    from headrace.scheduling.evaluate import enabled

    elsewhere = tmp_path / "laptop"
    elsewhere.mkdir()
    with running_server(tmp_path / "ws", QUEUE_PROJECT, worker=False) as server:
        ws = server.ws
        create_branch(ws, "dev")
        dev = server.token_for("dev", "developer")
        vera = server.token_for("vera", "viewer")
        lead = server.token_for("lead", "maintainer")

        listed = _cli(server, vera, elsewhere, "schedules", "list")
        assert listed.returncode == 0, listed.stderr
        assert "hourly_load" in listed.stdout and "nightly_publish" in listed.stdout
        assert "Europe/Paris" in listed.stdout and "not yet evaluated" in listed.stdout
        sensors = _cli(server, vera, elsewhere, "sensors", "list")
        assert "on_a" in sensors.stdout and "freshness:a" in sensors.stdout

        off = _cli(server, dev, elsewhere, "schedules", "off", "hourly_load")  # dev branch
        assert off.returncode == 0 and "hourly_load is off" in off.stdout
        automation = load_automation(ws)
        assert not enabled(ws, "schedule", automation.schedules["hourly_load"])
        denied = _cli(server, dev, elsewhere, "schedules", "off", "nightly_publish")  # main
        assert denied.returncode == 1 and "merge_protected" in denied.stderr
        assert _cli(server, lead, elsewhere, "schedules", "off", "nightly_publish").returncode == 0
        viewer = _cli(server, vera, elsewhere, "sensors", "off", "on_a")
        assert viewer.returncode == 1 and "403" in viewer.stderr
        unknown = _cli(server, dev, elsewhere, "sensors", "off", "on_b")
        assert unknown.returncode == 1 and "no sensor named 'on_b'" in unknown.stderr
        assert "did you mean" in unknown.stderr and "on_a" in unknown.stderr
        assert _cli(server, dev, elsewhere, "sensors", "off", "on_a").returncode == 0
        assert not enabled(ws, "sensor", automation.sensors["on_a"])
        assert _cli(server, dev, elsewhere, "sensors", "on", "on_a").returncode == 0
        assert enabled(ws, "sensor", automation.sensors["on_a"])

        shown = _cli(server, vera, elsewhere, "schedules", "list").stdout
        assert shown.count("off") == 2  # both schedules, as the server's store says
        audit = [
            (e.actor, e.action, e.target, e.outcome)
            for e in ws.store.governance.audit(limit=1000)
            if e.action.startswith(("schedule.", "sensor."))
        ]
        assert sorted(audit) == sorted(
            [
                ("dev", "schedule.off", "hourly_load", "ok"),
                ("dev", "schedule.off", "nightly_publish", "denied"),
                ("lead", "schedule.off", "nightly_publish", "ok"),
                ("vera", "sensor.off", "on_a", "denied"),
                ("dev", "sensor.off", "on_b", "failed"),
                ("dev", "sensor.off", "on_a", "ok"),
                ("dev", "sensor.on", "on_a", "ok"),
            ]
        )

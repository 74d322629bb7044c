"""headrace serve / predict / predictions, as a user runs them."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

import headrace as hr
from headrace.registry.service import set_alias
from headrace.workspace.settings import init_workspace
from tests.integration.conftest import HEADRACE, run_cli
from tests.serving.test_server import fitted, frame, free_port

pytestmark = pytest.mark.integration


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    init_workspace(tmp_path)
    ws = hr.open_workspace(tmp_path)
    try:
        hr.log_model(fitted(), "delay", frame=frame(), workspace=ws)
        set_alias(ws, "delay", "champion", 1)
    finally:
        ws.close()
    return tmp_path


def test_serve_answers_and_a_graceful_stop_loses_no_prediction(workspace: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADRACE_")}
    server = subprocess.Popen(
        [*HEADRACE, "serve", "delay@champion", "--port", str(port), "--workers", "2"],
        cwd=workspace,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        else:
            raise AssertionError("the server did not become healthy")
        body = {"dataframe_records": frame(2).to_dict("records")}
        # A bounded load test on loopback: 8 clients for 2 seconds.
        stop_at = time.time() + 2

        def client(_: int) -> tuple[int, int]:
            ok = errors = 0
            with httpx.Client() as session:
                while time.time() < stop_at:
                    r = session.post(f"{url}/invocations", json=body)
                    ok, errors = (ok + 1, errors) if r.status_code == 200 else (ok, errors + 1)
            return ok, errors

        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(client, range(8)))
        answered = sum(ok for ok, _ in results)
        assert answered > 50 and sum(e for _, e in results) == 0
    finally:
        server.send_signal(signal.SIGTERM)
        output, _ = server.communicate(timeout=60)
    assert server.returncode == 0, output
    assert "serving delay version 1" in output
    ws = hr.open_workspace(workspace)
    try:
        assert ws.store.predictions.count("delay") == 2 * answered  # two rows a request
        first = ws.store.predictions.list("delay", limit=4, latest=True)  # the newest
    finally:
        ws.close()
    # Ground truth arrives later: a CSV of request ids (or ids:row) and labels.
    (workspace / "labels.csv").write_text(
        f"id,label\n{first[0].request_id},1\n{first[2].request_id}:1,0\n"
    )
    labeled = run_cli(workspace, "predictions", "label", "delay", "labels.csv")
    assert labeled.returncode == 0 and "labeled 3 predictions" in labeled.stdout
    listed = run_cli(workspace, "predictions", "list", "delay", "--limit", "2")
    assert "label=1" in listed.stdout and f"{2 * answered:,} logged in all" in listed.stdout
    bad = run_cli(workspace, "predictions", "label", "delay", "labels.csv", "--id-column", "x")
    assert bad.returncode == 1 and "has no column 'x'" in bad.stderr


def test_serve_refuses_what_it_cannot_serve(workspace: Path) -> None:
    missing = run_cli(workspace, "serve", "delay@challenger")
    assert missing.returncode == 1 and "has no alias 'challenger'" in missing.stderr
    bad = run_cli(workspace, "serve", "delay@champion", "--canary", "challenger")
    assert bad.returncode == 2 and "ALIAS:PERCENT" in bad.stderr


def test_batch_predict_writes_a_versioned_table_and_labels_attach(workspace: Path) -> None:
    data = frame(1000, seed=5)
    data.to_csv(workspace / "to_score.csv", index=False)
    done = run_cli(
        workspace,
        "predict",
        "delay@champion",
        "-i",
        "to_score.csv",
        "-o",
        "delay_scores",
        "--chunk-rows",
        "300",
        "--keep",
        "distance",
    )
    assert done.returncode == 0, done.stderr
    assert "scored 1,000 rows with delay version 1" in done.stdout
    ws = hr.open_workspace(workspace)
    try:
        scored = hr.read("delay_scores", workspace=ws, as_="pandas")
        assert list(scored.columns) == ["distance", "prediction", "probability"]
        expected = fitted().predict(data)  # type: ignore[attr-defined]
        assert (scored.prediction.to_numpy() == expected).all()
        # Scoring the stored table (an asset) again gives the same bytes: no new version.
        again = run_cli(
            workspace,
            "predict",
            "delay",
            "-i",
            "to_score.csv",
            "-o",
            "delay_scores",
            "--keep",
            "distance",
        )
        assert again.returncode == 0
        assert len(ws.store.versions.list("delay_scores")) == 1
    finally:
        ws.close()
    wrong = run_cli(workspace, "predict", "delay", "-i", "nowhere.csv", "-o", "x")
    assert wrong.returncode == 1 and "does not exist" in wrong.stderr
    column = run_cli(
        workspace, "predict", "delay", "-i", "to_score.csv", "-o", "x", "--keep", "nope"
    )
    assert column.returncode == 1 and "no column 'nope'" in column.stderr

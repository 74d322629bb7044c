"""The unmodified ``mlflow`` client against the team server: experiments, runs, params,
metrics (single, batch, history), tags, artifacts through the proxy, a scikit-learn model
logged, registered, aliased and loaded by alias, run search; and what it logged is
headrace's own data. Plus tokens, roles, the audit, and bad input."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.server.conftest import TeamServer

mlflow = pytest.importorskip("mlflow", reason="the mlflow client is a dev dependency")

pytestmark = [
    pytest.mark.integration,
    # the client's own deprecation notices are not ours to fix
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
]


@pytest.fixture
def client(team_server: TeamServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    from mlflow import MlflowClient

    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", team_server.token)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    mlflow.set_tracking_uri(team_server.root)
    yield MlflowClient(team_server.root)
    while mlflow.active_run() is not None:
        mlflow.end_run()
    mlflow.set_tracking_uri(None)


def _model() -> tuple[object, np.ndarray]:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.RandomState(0)
    features = rng.rand(80, 3)
    return LogisticRegression().fit(features, (features[:, 0] > 0.5).astype(int)), features


def test_the_mlflow_client_logs_registers_and_loads(
    team_server: TeamServer, client: object, tmp_path: Path
) -> None:
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param, RunTag

    assert isinstance(client, MlflowClient)
    ws = team_server.ws
    experiment = mlflow.set_experiment("churn")
    assert client.get_experiment_by_name("churn").experiment_id == experiment.experiment_id
    assert client.get_experiment_by_name("nope") is None
    assert "churn" in [e.name for e in client.search_experiments()]
    model, features = _model()
    note = tmp_path / "note.txt"
    note.write_text("hello from mlflow")
    with mlflow.start_run(run_name="lr") as run:
        mlflow.log_param("C", 1.0)
        mlflow.log_params({"penalty": "l2", "solver": "lbfgs"})
        for step in range(5):
            mlflow.log_metric("loss", 1 / (step + 1), step=step)
        mlflow.log_metrics({"auc": 0.91, "odd": math.nan})
        mlflow.set_tag("team", "growth")
        mlflow.log_artifact(str(note), artifact_path="notes")
        info = mlflow.sklearn.log_model(model, name="model", registered_model_name="churn")
    run_id = run.info.run_id
    # a batch larger than one call: the client splits it, the server takes each chunk
    client.log_batch(
        run_id,
        metrics=[Metric("batch", float(i), 0, i) for i in range(2500)],
        params=[Param("batch_size", "2500")],
        tags=[RunTag("kind", "batch")],
    )

    got = client.get_run(run_id)
    assert got.info.status == "FINISHED" and got.info.run_name == "lr"
    assert got.data.params == {
        "C": "1.0",
        "penalty": "l2",
        "solver": "lbfgs",
        "batch_size": "2500",
    }
    assert got.data.metrics["loss"] == pytest.approx(0.2) and got.data.metrics["auc"] == 0.91
    assert math.isnan(got.data.metrics["odd"]) and got.data.metrics["batch"] == 2499.0
    assert got.data.tags["team"] == "growth" and got.data.tags["kind"] == "batch"
    history = client.get_metric_history(run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(s, 1 / (s + 1)) for s in range(5)]
    assert len(client.get_metric_history(run_id, "batch")) == 2500

    # artifacts went through the proxy into the blob store, and come back
    assert [f.path for f in client.list_artifacts(run_id)] == ["notes"]
    assert [f.path for f in client.list_artifacts(run_id, "notes")] == ["notes/note.txt"]
    back = Path(client.download_artifacts(run_id, "notes/note.txt", str(tmp_path / "dl")))
    assert back.read_text() == "hello from mlflow"

    # registered, aliased, loaded by alias
    version = client.get_model_version("churn", "1")
    assert version.run_id == run_id and version.status == "READY"
    client.set_registered_model_alias("churn", "champion", "1")
    assert client.get_model_version_by_alias("churn", "champion").version == "1"
    loaded = mlflow.sklearn.load_model("models:/churn@champion")
    assert (loaded.predict(features) == model.predict(features)).all()  # type: ignore[attr-defined]
    pyfunc = mlflow.pyfunc.load_model(info.model_uri)
    assert (np.asarray(pyfunc.predict(features)) == model.predict(features)).all()  # type: ignore[attr-defined]
    client.delete_registered_model_alias("churn", "champion")
    with pytest.raises(mlflow.exceptions.MlflowException, match="no alias"):
        client.get_model_version_by_alias("churn", "champion")

    # search, with MLflow's filter and order syntax and paging
    for i in range(6):
        with mlflow.start_run(run_name=f"sweep-{i}"):
            mlflow.log_param("depth", i)
            mlflow.log_metric("auc", 0.5 + i / 20)
    found = client.search_runs(
        [experiment.experiment_id],
        "metrics.auc > 0.6 and params.depth != '5' and attributes.status = 'FINISHED'",
        order_by=["metrics.auc DESC"],
    )
    assert [r.info.run_name for r in found] == ["sweep-4", "sweep-3"]  # lr has no depth
    first = client.search_runs([experiment.experiment_id], max_results=4)
    assert len(first) == 4 and first.token
    rest = client.search_runs([experiment.experiment_id], max_results=4, page_token=first.token)
    assert len(rest) == 3 and not rest.token
    frame = mlflow.search_runs([experiment.experiment_id], filter_string="tags.team = 'growth'")
    assert list(frame["run_id"]) == [run_id]

    # ... and all of it is headrace's own data
    from headrace.registry.service import load_model

    tracked = ws.store.tracking.search(experiments_=["churn"], filter="params.C = '1.0'")
    assert [r.id for r in tracked.runs] == [run_id] and tracked.runs[0].status == "success"
    assert ws.store.tracking.metrics(run_id)["auc"] == 0.91
    record = ws.store.registry.version("churn", 1)
    assert record.flavor == "mlflow" and record.run_id == run_id
    assert record.model_class == "mlflow.sklearn" and record.created_by == "root"
    native = load_model(ws, "churn/1", allow_pickle=True)
    assert (native.predict(features) == model.predict(features)).all()  # type: ignore[attr-defined]
    actions = {e.action for e in ws.store.governance.audit(limit=1000) if e.outcome == "ok"}
    assert {"run.create", "run.log_metric", "run.log_batch", "model.register"} <= actions
    assert {"artifact.upload", "model.alias", "model.unalias"} <= actions
    assert ws.store.governance.verify() == (len(ws.store.governance.audit(limit=100_000)), None)


def test_tokens_and_roles_bind_the_mlflow_client(
    team_server: TeamServer, client: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow.exceptions import MlflowException

    viewer = team_server.token_for("vera", "viewer")
    developer = team_server.token_for("dev", "developer")
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", developer)
    experiment = mlflow.set_experiment("roles")
    with mlflow.start_run() as run:
        mlflow.log_metric("m", 1.0)
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", viewer)
    assert mlflow.get_run(run.info.run_id).data.metrics == {"m": 1.0}  # reading is fine
    with pytest.raises(MlflowException, match=r"vera may not log run.*developer"):
        mlflow.MlflowClient().log_metric(run.info.run_id, "m", 2.0)
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", developer)
    model, _ = _model()
    with mlflow.start_run():
        mlflow.sklearn.log_model(model, name="model", registered_model_name="roles")
    with pytest.raises(MlflowException, match=r"dev may not promote model.*maintainer"):
        mlflow.MlflowClient().set_registered_model_alias("roles", "champion", 1)
    monkeypatch.delenv("MLFLOW_TRACKING_TOKEN")
    with pytest.raises(MlflowException, match="Bearer"):
        mlflow.MlflowClient().get_experiment(experiment.experiment_id)
    ws = team_server.ws
    assert ws.store.tracking.metrics(run.info.run_id) == {"m": 1.0}  # the refusal changed nothing
    refused = [
        (e.actor, e.action) for e in ws.store.governance.audit(limit=1000) if e.outcome == "denied"
    ]
    # refused before the body is read, under the route's name; the call without a
    # token is audited too (failed authentication, counted)
    assert refused == [
        ("vera", "mlflow.log_metric"),
        ("dev", "mlflow.set_alias"),
        ("anonymous", "auth.failed"),
    ]


def test_bad_input_is_refused_naming_the_field(team_server: TeamServer) -> None:
    api = f"{team_server.root}/api/2.0/mlflow"
    auth = team_server.headers()

    def post(path: str, body: object) -> httpx.Response:
        return httpx.post(f"{api}/{path}", json=body, headers=auth)

    run = post("runs/create", {"experiment_id": "0"}).json()["run"]["info"]["run_id"]
    bad = post("runs/log-metric", {"run_id": run, "key": "m", "value": "high"})
    assert bad.status_code == 400 and bad.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "'value' must be a number" in bad.json()["message"]
    missing = post("runs/log-metric", {"run_id": run, "value": 1})
    assert missing.status_code == 400 and "'key'" in missing.json()["message"]
    unknown = post("runs/log-metric", {"run_id": "nope", "key": "m", "value": 1})
    assert unknown.status_code == 404 and unknown.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    assert post("runs/log-parameter", {"run_id": run, "key": "p", "value": "1"}).status_code == 200
    changed = post("runs/log-parameter", {"run_id": run, "key": "p", "value": "2"})
    assert changed.status_code == 400 and "params are fixed" in changed.json()["message"]
    too_many = post(
        "runs/log-batch",
        {"run_id": run, "metrics": [{"key": "m", "value": 1, "timestamp": 0}] * 1001},
    )
    assert too_many.status_code == 400 and "at most 1000 metrics" in too_many.json()["message"]
    half_bad = post(
        "runs/log-batch",
        {"run_id": run, "metrics": [{"key": "ok", "value": 1}, {"key": "m", "value": []}]},
    )
    assert half_bad.status_code == 400 and "metrics[1].value" in half_bad.json()["message"]
    assert team_server.ws.store.tracking.metrics(run) == {}  # nothing of a refused batch
    not_json = httpx.post(f"{api}/runs/log-metric", content=b"{", headers=auth)
    assert not_json.status_code == 400 and "not valid JSON" in not_json.json()["message"]
    search = post("runs/search", {"experiment_ids": ["0"], "filter": "metrics.m >>> 1"})
    assert search.status_code == 400 and "at position 12" in search.json()["message"]
    status = post("runs/update", {"run_id": run, "status": "DONE"})
    assert status.status_code == 400 and "expected one of RUNNING" in status.json()["message"]
    failed = [
        (e.action, e.details["error"])
        for e in team_server.ws.store.governance.audit(limit=1000)
        if e.outcome == "failed"
    ]
    assert ("mlflow.log_metric", "parameter 'value' must be a number, got 'high'") in failed
    assert any(a == "run.log_param" and "params are fixed" in m for a, m in failed)
    assert len(failed) >= 8  # every refused mutating call is on record


def test_artifact_paths_cannot_escape_and_uploads_are_bounded(
    team_server: TeamServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from headrace.server import mlflow_api

    root = f"{team_server.root}/api/2.0/mlflow-artifacts/artifacts"
    auth = team_server.headers()
    created = httpx.post(
        f"{team_server.root}/api/2.0/mlflow/runs/create",
        json={"experiment_id": "0"},
        headers=auth,
    ).json()["run"]["info"]
    base = f"0/{created['run_id']}/artifacts"
    assert httpx.put(f"{root}/{base}/ok.txt", content=b"fine", headers=auth).status_code == 200
    assert httpx.get(f"{root}/{base}/ok.txt", headers=auth).content == b"fine"
    for path in (
        f"{base}/../../../etc/passwd",
        f"{base}/%2e%2e/%2e%2e/x",
        f"{base}/a/%2e/b",
        f"{base}/a//b",
        "%2Fetc%2Fpasswd",
        f"{base}/a%5C..%5Cb",
        "0/nope/artifacts/x",
        "elsewhere/x",
    ):
        put = httpx.put(f"{root}/{path}", content=b"x", headers=auth)
        get = httpx.get(f"{root}/{path}", headers=auth)
        assert put.status_code in (400, 404), (path, put.status_code, put.text)
        assert get.status_code in (400, 404), (path, get.status_code, get.text)
    monkeypatch.setattr(mlflow_api, "MAX_ARTIFACT", 1000)
    big = httpx.put(f"{root}/{base}/big.bin", content=b"x" * 1001, headers=auth)
    assert big.status_code == 413

    def chunks() -> Iterator[bytes]:  # no content-length: counted as it streams
        for _ in range(3):
            yield b"x" * 600

    streamed = httpx.put(f"{root}/{base}/big.bin", content=chunks(), headers=auth)
    assert streamed.status_code == 413
    stored = [p for p, _, _ in team_server.ws.store.tracking.artifacts(created["run_id"])]
    assert stored == ["ok.txt"]  # nothing of a refused upload


def test_tags_renames_and_deletions_through_the_mlflow_client(
    team_server: TeamServer, client: object
) -> None:
    """Experiment, registered-model and model-version tags and descriptions; renamed,
    deleted and restored experiments and runs; each change audited; an endpoint
    headrace does not serve answers in MLflow's own error format."""
    from mlflow import MlflowClient
    from mlflow.entities import ViewType
    from mlflow.exceptions import MlflowException

    assert isinstance(client, MlflowClient)
    ws = team_server.ws
    experiment_id = client.create_experiment("tagged", tags={"team": "growth"})
    client.set_experiment_tag(experiment_id, "stage", "trial")
    got = client.get_experiment(experiment_id)
    assert got.tags == {"team": "growth", "stage": "trial"}
    client.rename_experiment(experiment_id, "renamed")
    assert client.get_experiment_by_name("renamed").experiment_id == experiment_id
    assert client.get_experiment_by_name("tagged") is None
    with pytest.raises(MlflowException, match="Default experiment"):
        client.delete_experiment("0")

    kept = client.create_run(experiment_id, run_name="kept")
    dropped = client.create_run(experiment_id, run_name="dropped")
    client.delete_run(dropped.info.run_id)
    assert client.get_run(dropped.info.run_id).info.lifecycle_stage == "deleted"
    active = client.search_runs([experiment_id])
    assert [r.info.run_name for r in active] == ["kept"]
    gone = client.search_runs([experiment_id], run_view_type=ViewType.DELETED_ONLY)
    assert [r.info.run_name for r in gone] == ["dropped"]
    assert len(client.search_runs([experiment_id], run_view_type=ViewType.ALL)) == 2
    with pytest.raises(MlflowException, match="is deleted"):
        client.log_param(dropped.info.run_id, "late", 1)
    client.restore_run(dropped.info.run_id)
    client.log_param(dropped.info.run_id, "late", 1)
    assert client.get_run(dropped.info.run_id).data.params == {"late": "1"}

    client.delete_experiment(experiment_id)
    assert client.get_experiment(experiment_id).lifecycle_stage == "deleted"
    names = [e.name for e in client.search_experiments()]
    assert "renamed" not in names
    deleted = client.search_experiments(view_type=ViewType.DELETED_ONLY)
    assert [e.name for e in deleted] == ["renamed"]
    with pytest.raises(MlflowException, match="deleted"):
        client.create_run(experiment_id)
    client.restore_experiment(experiment_id)
    assert client.get_experiment(experiment_id).lifecycle_stage == "active"
    assert kept.info.run_id in [r.info.run_id for r in client.search_runs([experiment_id])]

    # a registered model and a version: tags and descriptions
    model, _ = _model()
    with mlflow.start_run(experiment_id=experiment_id):
        mlflow.sklearn.log_model(model, name="model", registered_model_name="tagged_model")
    client.set_registered_model_tag("tagged_model", "owner", "ana")
    client.update_registered_model("tagged_model", description="churn scorer")
    registered = client.get_registered_model("tagged_model")
    assert registered.tags == {"owner": "ana"} and registered.description == "churn scorer"
    client.set_model_version_tag("tagged_model", "1", "validated", "yes")
    client.update_model_version("tagged_model", "1", description="first fit")
    version = client.get_model_version("tagged_model", "1")
    assert version.tags["validated"] == "yes" and version.description == "first fit"
    assert version.tags["headrace.status"] == "candidate"
    client.delete_model_version_tag("tagged_model", "1", "validated")
    client.delete_registered_model_tag("tagged_model", "owner")
    assert "validated" not in client.get_model_version("tagged_model", "1").tags
    assert client.get_registered_model("tagged_model").tags == {}
    with pytest.raises(MlflowException, match="no tag 'owner'"):
        client.delete_registered_model_tag("tagged_model", "owner")

    unknown = httpx.post(
        f"{team_server.root}/api/2.0/mlflow/experiments/no-such-thing",
        json={},
        headers=team_server.headers(),
    )
    assert unknown.status_code == 404
    assert unknown.json()["error_code"] == "ENDPOINT_NOT_FOUND"

    actions = [
        (e.action, e.outcome)
        for e in ws.store.governance.audit(limit=1000)
        if e.action.startswith(("experiment.", "run.delete", "run.restore", "model.tag"))
    ]
    for expected in (
        ("experiment.tag", "ok"),
        ("experiment.rename", "ok"),
        ("experiment.delete", "ok"),
        ("experiment.restore", "ok"),
        ("run.delete", "ok"),
        ("run.restore", "ok"),
        ("model.tag", "ok"),
    ):
        assert expected in actions, expected

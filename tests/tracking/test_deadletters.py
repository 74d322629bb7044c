"""A tracked run's buffered writes: a value the database refuses becomes a dead letter
and the rest is written; while the store cannot be reached, values wait; what still
waits when the run ends goes to a file, and the error names it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

import headrace as hr
from headrace.core.tracking import Tracked, TrackingError
from headrace.runtime.workspace import Workspace, open_workspace
from headrace.store import open_store
from headrace.store.errors import StoreUnreachableError
from headrace.workspace.settings import init_workspace
from tests.serving.test_server import free_port
from tests.tcp_proxy import Proxy


def test_a_refused_value_is_dead_lettered_and_the_rest_of_the_batch_written(
    ws: Workspace, backend: str
) -> None:
    with hr.start_run("churn", workspace=ws) as run:
        # another writer fixed "lr" first: the store refuses this run's value
        ws.store.tracking.write(run.id, Tracked(params={"lr": "0.2"}))
        hr.log_param("lr", 0.1)
        for step in range(10):
            hr.log_metric("loss", 1 / (step + 1), step=step)
        hr.set_tag("stage", "dev")
        # a NUL byte, which PostgreSQL's text refuses, is refused at the call everywhere
        with pytest.raises(TrackingError, match="tag 'note': its value holds a NUL byte"):
            hr.set_tag("note", "a\x00b")
        with pytest.raises(TrackingError, match="without surrounding spaces or NUL bytes"):
            hr.log_metric("lo\x00ss", 1.0)
    tracking = ws.store.tracking
    assert tracking.params(run.id) == {"lr": "0.2"}
    assert len(tracking.metric_history([run.id], ["loss"])) == 10
    assert tracking.tags(run.id)["stage"] == "dev"
    assert ws.store.runs.get(run.id).status == "success"
    letters = ws.store.deadletters.list(writer="tracking")
    by_kind = {letter.payload["kind"]: letter for letter in letters}
    assert by_kind["param"].payload == {"run_id": run.id, "kind": "param", "value": ["lr", "0.1"]}
    assert "params are fixed once logged" in by_kind["param"].reason
    assert len(letters) == 1 and "note" not in tracking.tags(run.id)


@pytest.fixture
def behind_proxy(postgres_url: str, tmp_path: Path) -> Iterator[tuple[Workspace, int, str]]:
    """A workspace whose PostgreSQL store is reached through a loopback port (a
    :class:`Proxy` up on it), the port, and the direct URL."""
    open_store(postgres_url).close()
    port = free_port()
    init_workspace(tmp_path)
    via = postgres_url.replace("127.0.0.1:5432", f"127.0.0.1:{port}")
    ws = open_workspace(tmp_path, metadata_url=via)
    try:
        yield ws, port, postgres_url
    finally:
        ws.close()


@pytest.mark.postgres
def test_values_wait_through_an_outage_and_are_written_after_it(
    behind_proxy: tuple[Workspace, int, str],
) -> None:
    ws, port, direct_url = behind_proxy
    proxy = Proxy(port)
    run = hr.start_run("churn", workspace=ws)
    try:
        run.log_metric("loss", 1.0, step=0)
        run.flush()
        proxy.close()  # the store's network path is cut
        for step in range(1, 4):
            run.log_metric("loss", 1.0 / (step + 1), step=step)
        run.flush()  # no error: the values wait
        assert len(run.pending.metrics) == 3
        proxy = Proxy(port)
        run.end()
    finally:
        proxy.close()
    direct = open_store(direct_url)
    try:
        assert len(direct.tracking.metric_history([run.id], ["loss"])) == 4
        assert direct.runs.get(run.id).status == "success"
        assert direct.deadletters.count() == 0
    finally:
        direct.close()


@pytest.mark.postgres
def test_a_run_that_cannot_reach_the_store_at_its_end_keeps_its_values_in_a_file(
    behind_proxy: tuple[Workspace, int, str],
) -> None:
    ws, port, _ = behind_proxy
    proxy = Proxy(port)
    run = hr.start_run("churn", workspace=ws)
    proxy.close()
    run.log_metric("loss", 0.5, step=1)
    run.set_tag("stage", "dev")
    with pytest.raises(StoreUnreachableError, match="could not be marked success") as caught:
        run.end()
    assert caught.value.retryable
    (path,) = (ws.settings.state_dir / "unlogged").iterdir()
    assert str(path) in str(caught.value)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert {(line["kind"], json.dumps(line["value"])) for line in lines} == {
        ("tag", '["stage", "dev"]'),
        ("metric", json.dumps(["loss", 0.5, 1, lines[-1]["value"][3]])),
    }
    assert hr.active_run() is None

"""A team server on loopback, in a thread, over a fresh workspace with an admin."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from headrace.runtime.workspace import Workspace, open_workspace
from headrace.scheduling.definitions import load_automation
from headrace.scheduling.worker import Worker
from headrace.server.app import create_server_app
from tests.projects import OPENED, open_project, write_project
from tests.serving.test_server import free_port


@dataclass
class TeamServer:
    root: str  # http://127.0.0.1:PORT
    ws: Workspace
    token: str  # the admin's
    app: Any = None  # the FastAPI app it serves

    @property
    def api(self) -> str:
        return f"{self.root}/api/v1"

    def headers(self, token: str | None = None) -> dict[str, str]:
        return {"authorization": f"Bearer {token or self.token}"}

    def token_for(self, name: str, role: str, namespace: str = "*") -> str:
        governance = self.ws.store.governance
        governance.create_principal(name, role=role, namespace=namespace, actor="root")
        return governance.issue_token(name, actor="root")


@contextlib.contextmanager
def running_server(
    root: Path, source: str = "", *, metadata_url: str | None = None, worker: bool = True
) -> Iterator[TeamServer]:
    """A team server over a new workspace at ``root`` whose project holds ``source``
    (its metadata store at ``metadata_url``, SQLite in the workspace by default), with
    a queue worker beside it (``headrace server`` starts the daemon's) unless not
    ``worker``."""
    if metadata_url is None:
        ws = open_project(root, source)
    else:
        write_project(root, source)
        ws = open_workspace(root, metadata_url=metadata_url)
        OPENED.append(ws)
    ws.store.governance.create_first_admin("root")
    token = ws.store.governance.issue_token("root")
    port = free_port()
    app = create_server_app(ws)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not server.started and time.time() < deadline:
        time.sleep(0.02)
    assert server.started, "the team server did not start"
    stop = threading.Event()
    beside = None
    if worker:
        taker = Worker(ws, load_automation(ws, check_paths=False))
        beside = threading.Thread(target=taker.serve, args=(stop,), kwargs={"poll": 0.02})
        beside.start()
    try:
        yield TeamServer(f"http://127.0.0.1:{port}", ws, token, app)
    finally:
        stop.set()
        if beside is not None:
            beside.join(timeout=60)
        server.should_exit = True
        thread.join(timeout=20)


@pytest.fixture
def team_server(tmp_path: Path) -> Iterator[TeamServer]:
    with running_server(tmp_path / "ws") as running:
        yield running

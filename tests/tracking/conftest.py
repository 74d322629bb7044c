from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from headrace.runtime.workspace import Workspace, open_workspace
from headrace.workspace.settings import init_workspace
from tests.projects import close_opened


@pytest.fixture(autouse=True)
def _close_workspaces() -> Iterator[None]:
    yield
    close_opened()


@pytest.fixture
def ws(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Workspace]:
    """A workspace on SQLite or on a fresh PostgreSQL database."""
    init_workspace(tmp_path)
    overrides = {}
    if backend != "sqlite":
        overrides["metadata_url"] = request.getfixturevalue("postgres_url")
    opened = open_workspace(tmp_path, **overrides)
    try:
        yield opened
    finally:
        from headrace.tracking import runs

        for run in list(runs._active):  # a failed test must not leave runs active
            run.end("failed")
        opened.close()

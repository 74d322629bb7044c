"""Writing throwaway headrace projects (a workspace plus a module of assets) for tests."""

from __future__ import annotations

import sys
import textwrap
import uuid
from pathlib import Path

from headrace.runtime.workspace import Workspace, open_workspace
from headrace.workspace.settings import init_workspace

HEADER = "from __future__ import annotations\nimport headrace as hr\n"


def write_project(root: Path, source: str, *, module: str | None = None) -> tuple[Path, str]:
    """Create a workspace at ``root`` whose project module holds ``source``.

    Module names are unique per call, since imported modules are cached per process.
    """
    name = module or f"proj_{uuid.uuid4().hex[:10]}"
    init_workspace(root, module=name)
    (root / f"{name}.py").write_text(HEADER + textwrap.dedent(source))
    return root, name


#: Workspaces opened by tests, closed after each test by ``close_opened``.
OPENED: list[Workspace] = []


def open_project(root: Path, source: str, *, module: str | None = None) -> Workspace:
    write_project(root, source, module=module)
    ws = open_workspace(root)
    OPENED.append(ws)
    return ws


def close_opened() -> None:
    while OPENED:
        OPENED.pop().close()


def forget(name: str) -> None:
    sys.modules.pop(name, None)

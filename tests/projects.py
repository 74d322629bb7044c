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


def open_project(root: Path, source: str, *, module: str | None = None) -> Workspace:
    write_project(root, source, module=module)
    return open_workspace(root)


def forget(name: str) -> None:
    sys.modules.pop(name, None)

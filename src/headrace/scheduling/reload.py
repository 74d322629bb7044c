"""Picking up changed definitions: a long-running daemon (or worker) notices that the
project's code, check suites or monitors changed, and loads them afresh, keeping the
last definitions that loaded when the new ones do not."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from headrace.runtime.workspace import Workspace

log = logging.getLogger("headrace.scheduling")

T = TypeVar("T")

Stamp = tuple[tuple[str, int, int], ...]

#: Seconds between listings of the project's files (new check suites or modules); the
#: files listed are looked at every ``every`` seconds.
RELIST_EVERY = 30.0


class ProjectWatch:
    """The files a workspace's definitions come from, and whether they changed since
    the last look: the project module (every ``.py`` of its package), its
    ``*.checks.yaml`` suites, ``monitors.yaml`` and ``headrace.toml``."""

    def __init__(self, ws: Workspace, *, every: float = 2.0) -> None:
        self.ws = ws
        #: seconds between looks (a worker asks between runs, hundreds a second)
        self.every = every
        #: the project's source files seen so far (a module that stops importing is
        #: still watched, so fixing it is noticed)
        self._sources: set[Path] = set()
        self._files = self.files()
        self.stamp = self._stamp()
        self._looked = self._listed = time.monotonic()

    def files(self) -> list[Path]:
        from headrace.workspace.monitors import FILE
        from headrace.workspace.suites import find_suite_files

        settings = self.ws.settings
        found: set[Path] = {settings.root / "headrace.toml", settings.project_dir / FILE}
        for name in self.ws.definition_modules:
            module = sys.modules.get(name)
            source = getattr(module, "__file__", None)
            if source is None:
                continue
            path = Path(source)
            if path.name == "__init__.py":  # a package: all of it
                self._sources.update(
                    p for p in path.parent.rglob("*.py") if "__pycache__" not in p.parts
                )
            else:
                self._sources.add(path)
        found.update(self._sources)
        if settings.project_module:
            found.update(find_suite_files(settings.project_dir))
        return sorted(found)

    def _stamp(self) -> Stamp:
        out = []
        for path in self._files:
            try:
                info = path.stat()
            except OSError:  # absent (or removed): part of the stamp as absent
                out.append((str(path), -1, -1))
                continue
            out.append((str(path), info.st_mtime_ns, info.st_size))
        return tuple(out)

    def changed(self) -> bool:
        """Whether any of the files changed (or appeared, or went) since the last look;
        looks at most every ``every`` seconds (False in between)."""
        if time.monotonic() - self._looked < self.every:
            return False
        self._looked = time.monotonic()
        if self._looked - self._listed >= RELIST_EVERY:  # a new suite or module file
            self._listed = self._looked
            self._files = self.files()
        now = self._stamp()
        if now == self.stamp:
            return False
        self._files = self.files()  # a new module or suite beside the changed ones
        self.stamp = self._stamp()
        return True


def _ours(ws: Workspace) -> Callable[[str], bool]:
    prefixes = ws.project_modules

    def ours(name: str) -> bool:
        return any(name == p or name.startswith(p + ".") for p in prefixes)

    return ours


def forget_project(ws: Workspace) -> None:
    """Drop the project's imported modules and what they declared (assets are found
    anew, automation and monitors re-declared), so the next import reads the files."""
    from headrace.core.automation import DECLARED
    from headrace.core.monitors import MONITORS, ORIGIN

    if not ws.project_modules:
        return
    ours = _ours(ws)
    for name in [m for m in sys.modules if ours(m)]:
        del sys.modules[name]
    for name in [m for m in DECLARED if ours(m)]:
        del DECLARED[name]
    for monitor in [m for m, origin in ORIGIN.items() if ours(origin)]:
        MONITORS.pop(monitor, None)
        ORIGIN.pop(monitor, None)


def reload_project(ws: Workspace, check: Callable[[], T]) -> T:
    """Load the project's definitions afresh into ``ws`` (its ``graph``), then
    ``check()`` them (load the automation, say) and return what it returns. If either
    raises, everything is put back as it was (the modules, what they declared, the
    graph) and the error is raised: the last good definitions stay in use."""
    from headrace.core.automation import DECLARED
    from headrace.core.monitors import MONITORS, ORIGIN

    ours = _ours(ws)
    modules = {k: v for k, v in sys.modules.items() if ours(k)}
    declared = {k: v for k, v in DECLARED.items() if ours(k)}
    monitors = {k: (MONITORS[k], o) for k, o in ORIGIN.items() if ours(o) and k in MONITORS}
    graph = ws.__dict__.get("graph")
    forget_project(ws)
    ws.__dict__.pop("graph", None)
    try:
        _ = ws.graph  # imports the project: a broken file fails here
        return check()
    except BaseException:
        forget_project(ws)  # whatever of the new code did import
        sys.modules.update(modules)
        DECLARED.update(declared)
        for name, (monitor, origin) in monitors.items():
            MONITORS[name], ORIGIN[name] = monitor, origin
        if graph is not None:
            ws.__dict__["graph"] = graph
        raise

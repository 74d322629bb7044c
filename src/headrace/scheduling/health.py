"""Health files: the daemon and each worker process say in ``.headrace/health/`` whether
their metadata store answers, so ``GET /api/v1/health`` of a team server on the same
workspace (and anyone with a shell) can tell. Written when something changes, and at
least every :data:`REFRESH` seconds; removed when the process ends cleanly.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from headrace.store.availability import Availability

#: A health file is rewritten at least this often, so a stale one means a hung process.
REFRESH = 10.0


class HealthFile:
    """``<state dir>/health/<role>-<pid>.json`` of one process."""

    def __init__(self, state_dir: Path, role: str, availability: Availability) -> None:
        self.path = state_dir / "health" / f"{role}-{os.getpid()}.json"
        self.role = role
        self.availability = availability
        self._last: dict[str, Any] | None = None
        self._written = 0.0
        self._extra: dict[str, Any] = {}
        self._lock = threading.Lock()  # the heartbeat thread may report a change too
        availability.watch(self.update)

    def update(self, **extra: Any) -> None:
        """Write the file if the store's state (or ``extra``) changed, or it is due."""
        with self._lock:
            body = {"role": self.role, "pid": os.getpid(), "store": self.availability.snapshot()}
            body.update(extra or self._extra)
            self._extra = extra or self._extra
            now = time.time()
            if body == self._last and now - self._written < REFRESH:
                return
            self._last, self._written = body, now
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                spare = self.path.with_suffix(".tmp")
                spare.write_text(json.dumps({**body, "updated_at": now}))
                os.replace(spare, self.path)  # readers never see half a file
            except OSError:  # a read-only or full disk must not stop the process
                self._last = None

    def remove(self) -> None:
        with contextlib.suppress(OSError):
            self.path.unlink()


def read_health(state_dir: Path) -> list[dict[str, Any]]:
    """The health files of live processes on this host (those of dead ones are removed)."""
    out = []
    for path in sorted((state_dir / "health").glob("*.json")):
        try:
            body = json.loads(path.read_text())
            pid = int(body["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            with contextlib.suppress(OSError):
                path.unlink()
            continue
        except PermissionError:
            pass
        out.append(body)
    return out

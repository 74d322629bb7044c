"""The team server while its metadata store is unreachable.

- A request that needs the store gets a ``503`` in the usual error format,
  ``{"error_code": "STORE_UNAVAILABLE", "message": ...}`` (the MLflow routes say
  ``TEMPORARILY_UNAVAILABLE``, the code MLflow's own server uses), with a
  ``Retry-After`` header in seconds.
- A token seen in the last :data:`TOKEN_OUTAGE_TTL` seconds still authenticates (the
  usual check against the store is every 10 s), so reads that need no store keep working.
- An audit entry that cannot be written (a call failed because the store went away) is
  kept in memory and written once the store answers again, with the time it happened;
  past :data:`MAX_PENDING` waiting entries, further ones are counted as dropped. Both
  counts are in ``GET /api/v1/health`` and ``/metrics``, and entries still waiting when
  the process exits are written to its log: nothing is lost silently.
"""

from __future__ import annotations

import atexit
import json
import logging
import math
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from headrace.server.context import ApiError
from headrace.store.availability import Availability, describe

if TYPE_CHECKING:
    from headrace.runtime.workspace import Workspace

log = logging.getLogger("headrace.server")

#: How long a token seen before keeps working while the store cannot be asked.
TOKEN_OUTAGE_TTL = 900.0
#: Audit entries kept in memory while the store is unreachable; more are counted dropped.
MAX_PENDING = 10_000


class StoreOutage:
    """One server process's view of its store: reachable or not, and the audit entries
    waiting for it."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.availability = Availability("team server", logger=log)
        self._pending: deque[tuple[str, str, str | None, str, dict[str, Any]]] = deque()
        self.dropped = 0
        self.written_late = 0
        self._lock = threading.Lock()
        self._watcher: threading.Thread | None = None
        self._stop = threading.Event()
        self._at_exit = False

    def unavailable(self, exc: BaseException, *, code: str = "STORE_UNAVAILABLE") -> ApiError:
        """The 503 for a request that failed because the store is unreachable."""
        wait = max(1, math.ceil(self.availability.lost(exc)))
        self._watch()
        error = ApiError(
            503,
            code,
            f"the metadata store is unreachable ({describe(exc)}); nothing was changed by "
            f"this request: try again in {wait} s",
        )
        error.headers["Retry-After"] = str(wait)
        return error

    def defer(
        self, actor: str, action: str, target: str | None, outcome: str, details: dict[str, Any]
    ) -> None:
        """Keep an audit entry the store could not take, to write once it is back."""
        entry = (actor, action, target, outcome, {**details, "happened_at": time.time()})
        with self._lock:
            if not self._at_exit:
                self._at_exit = True
                atexit.register(self.unwritten)
            if len(self._pending) >= MAX_PENDING:
                self.dropped += 1
                dropped = self.dropped
            else:
                self._pending.append(entry)
                dropped = 0
        if dropped and (dropped == 1 or dropped % 1000 == 0):
            log.error(
                "%d audit entries dropped: %d wait for the metadata store already",
                dropped,
                MAX_PENDING,
            )
        self._watch()

    @property
    def pending(self) -> int:
        return len(self._pending)

    def snapshot(self) -> dict[str, Any]:
        return {
            **self.availability.snapshot(),
            "audit_pending": self.pending,
            "audit_dropped": self.dropped,
            "audit_written_late": self.written_late,
        }

    def unwritten(self) -> None:
        """At shutdown (or exit), entries still waiting go to the log, whole: not lost
        silently."""
        with self._lock:
            left = list(self._pending)
            self._pending.clear()
        if left:
            log.error(
                "%d audit entries were not written (the metadata store was unreachable "
                "until the server stopped); here they are: %s",
                len(left),
                json.dumps(left, default=str),
            )

    def close(self) -> None:
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(timeout=10)

    # -- waiting for the store ---------------------------------------------------------

    def _watch(self) -> None:
        """Start the thread that waits for the store and then writes the pending audit
        entries (one at a time per process)."""
        with self._lock:
            if self._watcher is not None:
                return
            self._watcher = threading.Thread(
                target=self._until_back, name="headrace-store-watch", daemon=True
            )
            self._watcher.start()

    def _until_back(self) -> None:
        from headrace.store.failures import is_unreachable

        while True:
            if self._stop.is_set():
                with self._lock:
                    self._watcher = None
                return
            try:
                self.ws.store.ping()
                self.availability.back()
                if not self._flush():
                    return
            except Exception as exc:
                if is_unreachable(exc):
                    self._stop.wait(self.availability.lost(exc))
                    continue
                # the store refused this entry (not an outage): it would never go in
                log.exception("an audit entry kept during an outage was refused; dropped")
                with self._lock:
                    if self._pending:
                        self._pending.popleft()
                        self.dropped += 1

    def _flush(self) -> bool:
        """Write the waiting entries, oldest first; whether any still wait."""
        governance = self.ws.store.governance
        while True:
            with self._lock:
                if not self._pending:
                    self._watcher = None  # under the lock: a new entry starts a new one
                    return False
                entry = self._pending[0]
            governance.record(*entry)  # an outage again: raised, the entry stays first
            with self._lock:
                self._pending.popleft()
                self.written_late += 1

"""Failed authentication, audited without letting a flood fill the disk.

Failures are counted per (source address, reason, token id) in windows of
:data:`WINDOW` seconds. The first failure of a kind in a window is audited at once (an
attack shows while it happens); the rest of the window's failures of that kind become
one more entry holding their count, written when the window ends. A window tracks at most
:data:`MAX_KINDS` kinds; failures beyond them share one overflow count. So one server
process writes at most ``2 * MAX_KINDS + 1`` ``auth.failed`` entries a window, whatever
the number of requests.

A source past :data:`LIMIT` failures in the window is answered 429 (with Retry-After)
until the window ends, before its token is looked up: a guesser gets few tries, and the
store is not read for each. A token this process verified before is still looked up, so
a client behind the same address keeps working (a guesser cannot know such a token).
Behind a proxy every client shares the proxy's address.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

WINDOW = 60.0
MAX_KINDS = 100
LIMIT = 50
MAX_SOURCES = 10_000
_OVERFLOW = ("*", "overflow", None)


@dataclass
class _Count:
    first: float
    last: float
    pending: int = 0  # failures not written yet


@dataclass
class _Window:
    start: float
    kinds: dict[tuple[str, str, str | None], _Count] = field(default_factory=dict)
    sources: dict[str, int] = field(default_factory=dict)


class FailedAuthLedger:
    """Counts one process's failed authentications and writes them, aggregated, through
    ``write(actor, action, target, outcome, details)``."""

    def __init__(
        self,
        write: Callable[[str, str, str | None, str, dict[str, Any]], object],
        *,
        window: float = WINDOW,
        limit: int = LIMIT,
        max_kinds: int = MAX_KINDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._write, self.window, self.limit, self.max_kinds = write, window, limit, max_kinds
        self._clock = clock
        self._lock = threading.Lock()
        self._current = _Window(clock())

    def throttled(self, source: str) -> float | None:
        """Seconds until ``source`` may try again, None when it is not throttled."""
        self.flush_due()
        with self._lock:
            window = self._current
            if window.sources.get(source, 0) < self.limit:
                return None
            return max(window.start + self.window - self._clock(), 0.0)

    def failed(self, source: str, reason: str, token_id: str | None = None) -> None:
        """Count one failure; audit it now when it is the first of its kind."""
        self.flush_due()
        now = self._clock()
        with self._lock:
            window = self._current
            if source in window.sources or len(window.sources) < MAX_SOURCES:
                window.sources[source] = window.sources.get(source, 0) + 1
            kind = (source, reason, token_id)
            count = window.kinds.get(kind)
            if count is None and len(window.kinds) >= self.max_kinds:
                kind, count = _OVERFLOW, window.kinds.get(_OVERFLOW)
                if count is None:
                    count = window.kinds[_OVERFLOW] = _Count(now, now)
            if count is not None:
                count.pending += 1
                count.last = now
                return
            window.kinds[kind] = _Count(now, now)
        self._entry(kind, 1, now, now)

    def flush_due(self) -> None:
        """Write the counts of a window that has ended."""
        now = self._clock()
        with self._lock:
            if now < self._current.start + self.window:
                return
            ended, self._current = self._current, _Window(now)
        self._drain(ended)

    def flush(self) -> None:
        """Write every pending count now (at shutdown)."""
        with self._lock:
            ended, self._current = self._current, _Window(self._clock())
        self._drain(ended)

    def _drain(self, window: _Window) -> None:
        for kind, count in window.kinds.items():
            if count.pending:
                self._entry(kind, count.pending, count.first, count.last)

    def _entry(
        self, kind: tuple[str, str, str | None], count: int, first: float, last: float
    ) -> None:
        source, reason, token_id = kind
        details: dict[str, Any] = {"reason": reason, "count": count, "first": first, "last": last}
        if token_id is not None:
            details["token"] = token_id
        self._write("anonymous", "auth.failed", source, "denied", details)

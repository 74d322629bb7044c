"""Riding out a metadata store that went away: how a long-running process (the
daemon, a worker, the team server, the scoring server) knows whether its store is
reachable, says so once in its log and in its health, and spaces its retries.

A process calls :meth:`Availability.lost` when a store call failed with an error
:func:`~headrace.store.failures.is_unreachable` recognises (it gets the seconds to
wait before trying again) and :meth:`Availability.back` when a call succeeded.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any

#: The first retry waits this long; each further one twice as long, up to CAP.
FIRST_RETRY = 0.25
CAP = 5.0
#: While the store stays away, the log says so again this often (not at every retry).
REMIND_EVERY = 30.0


def describe(exc: BaseException) -> str:
    """One line about a store error: the driver's own words, without SQLAlchemy's echo
    of the statement and its parameters (long, and possibly sensitive)."""
    cause = getattr(exc, "orig", None) or exc
    lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
    return f"{type(cause).__name__}: {' '.join(lines[:2])}"[:300]


class Availability:
    """Whether one process's metadata store answers, since when, and why not."""

    def __init__(
        self,
        who: str,
        *,
        logger: logging.Logger | None = None,
        first: float = FIRST_RETRY,
        cap: float = CAP,
    ) -> None:
        self.who = who
        self.log = logger or logging.getLogger("headrace.store")
        self.first, self.cap = first, cap
        self.reachable = True
        #: when the store was last found unreachable, or reachable again (UNIX time)
        self.since: float | None = None
        self.error: str | None = None
        self.failures = 0  # consecutive failed attempts in this outage
        self.outages = 0  # outages seen since the process started
        self._reminded = 0.0
        self._lock = threading.Lock()
        self._watchers: list[Callable[[], None]] = []

    def watch(self, fn: Callable[[], None]) -> None:
        """Call ``fn()`` after each failed attempt, and when the store is back."""
        self._watchers.append(fn)

    def _changed(self) -> None:
        for fn in self._watchers:
            fn()

    def lost(self, exc: BaseException) -> float:
        """Record a failed attempt; the seconds to wait before the next one (doubling
        from ``first`` up to ``cap``, jittered so that processes do not retry in step)."""
        now = time.time()
        message = describe(exc)
        with self._lock:
            self.failures += 1
            self.error = message
            first_failure = self.reachable
            if first_failure:
                self.reachable, self.since, self.outages = False, now, self.outages + 1
                self._reminded = now
            elif now - self._reminded >= REMIND_EVERY:
                self._reminded = now
            else:
                message = ""
            failures = self.failures
            since = self.since or now
        if first_failure:
            self.log.warning(
                "%s: the metadata store is unreachable (%s); retrying with backoff up to "
                "every %g s",
                self.who,
                message,
                self.cap,
            )
        elif message:
            self.log.warning(
                "%s: the metadata store is still unreachable after %.0f s (%d attempts): %s",
                self.who,
                now - since,
                failures,
                message,
            )
        self._changed()  # every attempt: a health file shows the count going up
        delay = min(self.cap, self.first * 2 ** min(failures - 1, 20))
        # Why not a retry library: the callers wait on their own stop events and report
        # each attempt to their health, which a decorator around one call cannot do.
        return float(delay * random.uniform(0.8, 1.0))

    def back(self) -> None:
        """Record a successful call: after an outage, say how long it lasted."""
        if self.reachable:  # the common case, without taking the lock
            return
        now = time.time()
        with self._lock:
            if self.reachable:
                return
            lasted = now - (self.since or now)
            failures = self.failures
            self.reachable, self.since, self.failures = True, now, 0
        self.log.warning(
            "%s: the metadata store is reachable again after %.1f s (%d failed attempts)",
            self.who,
            lasted,
            failures,
        )
        self._changed()

    def snapshot(self) -> dict[str, Any]:
        """For a health answer: ``reachable``, ``since``, ``error`` (the last one),
        ``failures`` (in this outage) and ``outages`` (since the process started)."""
        with self._lock:
            return {
                "reachable": self.reachable,
                "since": self.since,
                "error": None if self.reachable else self.error,
                "failures": self.failures,
                "outages": self.outages,
            }

    def call(self, fn: Callable[[], Any], stop: threading.Event) -> Any:
        """``fn()``, tried again (with backoff) for as long as it fails because the
        store is unreachable and ``stop`` is not set; other errors are raised. Raises
        the last unreachable error if ``stop`` is set first."""
        from headrace.store.failures import is_unreachable

        while True:
            try:
                result = fn()
            except Exception as exc:
                if not is_unreachable(exc):
                    raise
                delay = self.lost(exc)
                if stop.wait(delay):
                    raise
                continue
            self.back()
            return result

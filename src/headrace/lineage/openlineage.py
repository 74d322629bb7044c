"""``OpenLineageEmitter``: a run observer that sends OpenLineage RunEvents.

What is emitted (docs/openlineage.md has the whole model):

- ``run_started`` -> START of the run-level job ``<project>``; ``run_finished`` ->
  COMPLETE (success), FAIL (failed, with an ``errorMessage``) or ABORT (canceled).
- ``step_started`` -> START of the asset's job ``<project>.<asset>`` (RUNNING for a
  retry's later attempts), with the inputs and the output dataset's name.
- ``step_finished``: ``success`` -> COMPLETE with the inputs and the new output version
  (schema, version, row count); ``failed`` -> FAIL with the error and its traceback.
  A ``skipped`` (cached) step emits nothing: nothing ran and no version was written,
  its current version's lineage was sent by the run that made it. Other statuses
  (``retrying``, ``upstream_failed``) emit nothing either.

Emission never fails or slows a run: events are built in the caller's thread (cheap)
and handed to a background sender thread; delivery errors are logged on the
``headrace.lineage`` logger and counted in :attr:`OpenLineageEmitter.stats`.
``run_finished`` waits (up to ``flush_timeout``) for the run's events to be delivered,
then stops the sender thread once no run is in progress.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from headrace.core.observers import RunInfo, StepEvent
from headrace.lineage.events import EventBuilder, headrace_version
from headrace.lineage.transports import LineageTransport

log = logging.getLogger("headrace.lineage")

PRODUCER = f"urn:headrace:{headrace_version()}"

#: Consecutive delivery failures after which sending pauses for ``_BREAKER_PAUSE`` s.
_BREAKER_FAILURES = 3
_BREAKER_PAUSE = 30.0
_FAILED_STEPS_NAMED = 10


@dataclass(frozen=True)
class LineageStats:
    """Events delivered, failed (the transport raised) and dropped (never tried); of
    the failed and dropped, those ``kept`` in the emitter's file of undelivered events."""

    sent: int = 0
    failed: int = 0
    dropped: int = 0
    kept: int = 0

    @property
    def errors(self) -> int:
        """Events that were not delivered."""
        return self.failed + self.dropped


@dataclass
class _RunState:
    started_steps: set[str] = field(default_factory=set)
    failed_steps: list[str] = field(default_factory=list)
    stats_at_start: LineageStats = field(default_factory=LineageStats)


class OpenLineageEmitter:
    """Sends a run's OpenLineage events through ``transport``.

    Args:
        transport: where events go (:class:`~headrace.lineage.FileTransport`,
            :class:`~headrace.lineage.HttpTransport`, ...).
        producer: the events' ``producer`` URI.
        max_queued: events waiting for the sender beyond this are dropped (and counted).
        flush_timeout: how long ``run_finished`` waits for the run's events to go out.
        keep: where events go that could not be delivered (failed, dropped, or still
            queued at ``stop``), e.g. a :class:`~headrace.lineage.FileTransport`, so
            that none is lost silently; None drops them (counted and logged).
    """

    def __init__(
        self,
        transport: LineageTransport,
        *,
        producer: str = PRODUCER,
        max_queued: int = 10_000,
        flush_timeout: float = 30.0,
        keep: LineageTransport | None = None,
    ) -> None:
        self.transport = transport
        self.flush_timeout = flush_timeout
        self._builder = EventBuilder(producer)
        self._sender = _Sender(transport, max_queued=max_queued, keep=keep)
        self._lock = threading.Lock()
        self._runs: dict[str, _RunState] = {}

    @property
    def stats(self) -> LineageStats:
        return self._sender.stats()

    # -- RunObserver ----------------------------------------------------------------

    def run_started(self, run: RunInfo) -> None:
        try:
            self._state(run)
            self._sender.submit(self._builder.run_started(run))
        except Exception:
            self._build_failed("run_started", run.run_id)

    def step_started(self, event: StepEvent) -> None:
        try:
            state = self._state(event.run)
            with self._lock:
                first = event.step_key not in state.started_steps
                state.started_steps.add(event.step_key)
            self._sender.submit(self._builder.step(event, "START" if first else "RUNNING"))
        except Exception:
            self._build_failed("step_started", event.run.run_id)

    def step_finished(self, event: StepEvent) -> None:
        event_type = {"success": "COMPLETE", "failed": "FAIL"}.get(event.status)
        if event_type is None:
            return  # skipped (cached), retrying, upstream_failed: nothing ran to completion
        try:
            state = self._state(event.run)
            with self._lock:
                first = event.step_key not in state.started_steps
                state.started_steps.add(event.step_key)
                if event_type == "FAIL":
                    state.failed_steps.append(event.step_key)
            if first:  # every OpenLineage run starts with a START
                self._sender.submit(self._builder.step(event, "START"))
            self._sender.submit(self._builder.step(event, event_type))
        except Exception:
            self._build_failed("step_finished", event.run.run_id)

    def run_finished(self, run: RunInfo, status: str, at: float, error: str | None) -> None:
        with self._lock:
            state = self._runs.pop(run.run_id, None) or _RunState(stats_at_start=self.stats)
        try:
            if error is None and state.failed_steps:
                error = _failed_steps_message(state.failed_steps)
            self._sender.submit(self._builder.run_finished(run, status, at, error))
        except Exception:
            self._build_failed("run_finished", run.run_id)
        self._sender.flush(self.flush_timeout)
        with self._lock:
            idle = not self._runs
        if idle:  # no other run is going on: hold no thread or connection between runs
            self._sender.stop()
        self._report(run, state)

    # -- lifecycle --------------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued event was sent (or failed); False on timeout."""
        return self._sender.flush(self.flush_timeout if timeout is None else timeout)

    def close(self) -> None:
        """Deliver what is queued (up to ``flush_timeout``), stop the sender, close the
        transport. The emitter can still be used afterwards (it starts again)."""
        self._sender.flush(self.flush_timeout)
        self._sender.stop()

    def __repr__(self) -> str:
        return f"OpenLineageEmitter({self.transport!r})"

    # -- internals --------------------------------------------------------------------

    def _state(self, run: RunInfo) -> _RunState:
        with self._lock:
            state = self._runs.get(run.run_id)
            if state is None:
                state = self._runs[run.run_id] = _RunState(stats_at_start=self.stats)
            return state

    def _build_failed(self, what: str, run_id: str) -> None:
        self._sender.count_dropped()
        log.warning(
            "OpenLineage: could not build the %s event of run %s", what, run_id, exc_info=True
        )

    def _report(self, run: RunInfo, state: _RunState) -> None:
        before, after = state.stats_at_start, self.stats
        sent = after.sent - before.sent
        lost = after.errors - before.errors
        if lost:
            log.warning(
                "OpenLineage: %d of %d events of run %s were not delivered to %r (last error: %s)",
                lost,
                sent + lost,
                run.run_id,
                self.transport,
                self._sender.last_error or "none",
            )


def _failed_steps_message(keys: list[str]) -> str:
    named = ", ".join(keys[:_FAILED_STEPS_NAMED])
    more = len(keys) - _FAILED_STEPS_NAMED
    suffix = f" and {more} more" if more > 0 else ""
    noun = "step" if len(keys) == 1 else "steps"
    return f"{len(keys)} {noun} failed: {named}{suffix}"


class _Sender:
    """A background thread that hands queued events to the transport one by one.

    The thread starts with the first event and stops on ``stop`` (the emitter stops it
    when no run is in progress), so an idle emitter holds no thread. After
    ``_BREAKER_FAILURES`` consecutive failures, events are dropped for ``_BREAKER_PAUSE``
    seconds instead of each waiting for a timeout.
    """

    def __init__(
        self,
        transport: LineageTransport,
        *,
        max_queued: int,
        keep: LineageTransport | None = None,
    ) -> None:
        self._transport = transport
        self._keep = keep
        self._kept = 0
        self._max_queued = max_queued
        self._cond = threading.Condition()
        self._queue: deque[dict[str, Any]] = deque()
        self._busy = 0
        self._worker: _Worker | None = None
        self._sent = self._failed = self._dropped = 0
        self._consecutive_failures = 0
        self._paused_until = 0.0
        self.last_error: str | None = None

    def stats(self) -> LineageStats:
        with self._cond:
            return LineageStats(self._sent, self._failed, self._dropped, self._kept)

    def count_dropped(self, count: int = 1) -> None:
        with self._cond:
            self._dropped += count

    def submit(self, event: dict[str, Any]) -> None:
        with self._cond:
            full = len(self._queue) >= self._max_queued
            if full:
                self._dropped += 1
                if self._dropped == 1 or self._dropped % 1000 == 0:
                    log.warning(
                        "OpenLineage: more than %d events are waiting; dropping events (%d so "
                        "far)%s",
                        self._max_queued,
                        self._dropped,
                        "" if self._keep is None else f", kept in {self._keep!r}",
                    )
            else:
                self._queue.append(event)
                if self._worker is None:
                    self._worker = _Worker()
                    thread = threading.Thread(
                        target=self._run,
                        args=(self._worker,),
                        name="headrace-lineage",
                        daemon=True,
                    )
                    self._worker.thread = thread
                    thread.start()
                self._cond.notify_all()
        if full:  # outside the lock: the file is written by this thread
            self._keep_events([event])

    def flush(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._queue or self._busy:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    def stop(self, join_timeout: float = 1.0) -> None:
        """Drop what is still queued (counted), end the thread and close the transport."""
        with self._cond:
            worker, self._worker = self._worker, None
            leftover = list(self._queue)
            left = len(leftover)
            self._queue.clear()
            self._dropped += left
            if worker is not None:
                worker.stopping = True
            self._cond.notify_all()
        if left:
            log.warning(
                "OpenLineage: %d events were not sent in time and are dropped%s",
                left,
                "" if self._keep is None else f"; they are kept in {self._keep!r}",
            )
            self._keep_events(leftover)
        if worker is not None and worker.thread is not None:
            worker.thread.join(join_timeout)
        try:
            self._transport.close()
        except Exception:
            log.warning("OpenLineage: closing %r failed", self._transport, exc_info=True)

    def _run(self, worker: _Worker) -> None:
        while True:
            with self._cond:
                while not self._queue and not worker.stopping:
                    self._cond.wait()
                if worker.stopping:
                    return
                event = self._queue.popleft()
                self._busy += 1
            try:
                self._deliver(event)
            finally:
                with self._cond:
                    self._busy -= 1
                    self._cond.notify_all()

    def _deliver(self, event: dict[str, Any]) -> None:
        if time.monotonic() < self._paused_until:
            self.count_dropped()
            self._keep_events([event])
            return
        try:
            self._transport.send(event)
        except Exception as exc:
            self._failure(exc)
            self._keep_events([event])
        else:
            with self._cond:
                self._sent += 1
                self._consecutive_failures = 0

    def _keep_events(self, events: list[dict[str, Any]]) -> None:
        """Undelivered events to the ``keep`` transport (a file), never raising."""
        if self._keep is None:
            return
        kept = 0
        try:
            for event in events:
                self._keep.send(event)
                kept += 1
        except Exception:
            log.error(
                "OpenLineage: keeping %d undelivered events in %r failed; they are lost",
                len(events) - kept,
                self._keep,
                exc_info=True,
            )
        with self._cond:
            self._kept += kept

    def _failure(self, exc: Exception) -> None:
        message = f"{type(exc).__name__}: {exc}"
        with self._cond:
            self._failed += 1
            self._consecutive_failures += 1
            failures = self._consecutive_failures
            self.last_error = message
        if failures == 1:
            log.warning("OpenLineage: sending an event to %r failed: %s", self._transport, message)
        else:
            log.debug("OpenLineage: sending an event failed again: %s", message)
        if failures >= _BREAKER_FAILURES:
            self._paused_until = time.monotonic() + _BREAKER_PAUSE
            with self._cond:
                self._consecutive_failures = 0
            log.warning(
                "OpenLineage: %d events in a row failed; not sending for %.0f s",
                failures,
                _BREAKER_PAUSE,
            )


@dataclass
class _Worker:
    stopping: bool = False
    thread: threading.Thread | None = None

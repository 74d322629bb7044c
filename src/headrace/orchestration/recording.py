"""Batched, atomic recording of a run's step changes.

The coordinator changes step states in memory; a background thread commits every
changed step, with its new version and its logs, in ONE transaction at most
``interval`` seconds apart. A step is therefore recorded whole or not at all: a run
killed at any moment leaves no half-made version, and only steps whose record was not
yet committed (at most ``interval`` seconds of work) run again on resume.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from headrace.core.tracking import Tracked
from headrace.store.registry import NewModelVersion
from headrace.store.runs import NewVersion, RunRepository, StepBatch

if TYPE_CHECKING:
    from headrace.store.availability import Availability

#: Seconds between commits while a run is going.
FLUSH_INTERVAL = 0.05
#: Seconds between a running run's heartbeats (``runs.heartbeat_at``); a run quiet for
#: much longer than this lost its process (:func:`~headrace.orchestration.service.fail_lost_runs`).
HEARTBEAT = 10.0
#: How long a run's last batch waits for a store that went away before the run fails
#: (and can be resumed): batches before it wait as long as the run goes on.
OUTAGE_PATIENCE = 60.0


@dataclass
class StepState:
    """A step's row, kept in memory by the coordinator and committed by the recorder."""

    key: str
    status: str = "pending"
    attempts: int = 0
    started_at: float | None = None
    ended_at: float | None = None
    duration_s: float | None = None
    version_id: str | None = None
    cache_key: str | None = None
    reason: str | None = None
    error: str | None = None
    traceback: str | None = None

    def row(self) -> dict[str, Any]:
        """The step's whole row, as the recorder commits it."""
        return asdict(self)


class Recorder:
    """Collects step changes and commits them in batches from a background thread.

    Callers change a :class:`StepState` and call :meth:`mark` while holding
    :attr:`lock`, so a batch never holds a step's new status without its version.
    """

    def __init__(
        self,
        runs: RunRepository,
        run_id: str,
        branch: str,
        states: dict[str, StepState],
        *,
        interval: float = FLUSH_INTERVAL,
        actor: str | None = None,
    ) -> None:
        self.lock = threading.Lock()
        self._runs = runs
        self._run_id = run_id
        self._branch = branch
        self._states = states
        self._actor = actor
        self._interval = interval
        self._dirty: dict[str, None] = {}
        self._versions: list[tuple[NewVersion, str, float]] = []
        self._logs: list[tuple[str, int, str, float, str]] = []
        self._tracked = Tracked()
        self._models: list[NewModelVersion] = []
        self._write_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._store_state: Availability | None = None
        self._refused_versions: set[str] = set()
        self._refused: list[tuple[str, str]] = []
        self.error: BaseException | None = None

    def mark(
        self,
        key: str,
        *,
        version: tuple[NewVersion, float] | None = None,
        logs: list[tuple[str, float, str]] | None = None,
        attempt: int = 0,
    ) -> None:
        """Note a change of ``key`` (call with :attr:`lock` held)."""
        self._dirty[key] = None
        if version is not None:
            self._versions.append((version[0], key, version[1]))
        if logs:
            self._logs.extend((key, attempt, stream, at, text) for stream, at, text in logs)

    def register_model(self, model: NewModelVersion) -> None:
        """A model version to register once its asset version lands (same batch)."""
        with self.lock:
            self._models.append(model)

    def track(self, tracked: Tracked) -> None:
        """Note what a step logged (params, metrics, tags, artifacts) for the run."""
        with self.lock:
            self._tracked.extend(tracked)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="headrace-recorder", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        from headrace.store.failures import is_unreachable

        availability = self._availability()
        beaten = time.monotonic()
        wait = self._interval
        while not self._stop.wait(wait):
            wait = self._interval
            try:
                self.flush()
                availability.back()
                if time.monotonic() - beaten >= HEARTBEAT:  # the run's process is alive
                    beaten = time.monotonic()
                    self._beat()
            except BaseException as exc:
                if isinstance(exc, Exception) and is_unreachable(exc):
                    # the batch was put back: the steps run on, and it goes in later
                    wait = availability.lost(exc)
                    continue
                self.error = exc  # surfaced to the coordinator, which stops the run
                return

    def _availability(self) -> Availability:
        """The run's view of the store, shared by the loop and the last batch, so that
        an outage is said once in the log, and its end too."""
        from headrace.store.availability import Availability

        if self._store_state is None:
            logger = logging.getLogger("headrace.orchestration")
            self._store_state = Availability(f"run {self._run_id}", logger=logger)
        return self._store_state

    def _beat(self) -> None:
        """Say the run's process is alive. A beat the store cannot take is skipped, not
        fatal: it only feeds lost-run detection, which waits a minute of silence, and a
        step that needs no store rides out the outage (what it records later does)."""
        from headrace.store.failures import is_unreachable

        try:
            self._runs.beat(self._run_id, time.time())
        except Exception as exc:
            if not is_unreachable(exc):
                raise

    def flush(self, *, finish: tuple[str, float] | None = None) -> bool:
        """Commit everything marked so far, in order with earlier batches; with
        ``finish`` (status, time), end the run in the same transaction unless a version
        is refused. Whether the run was ended."""
        with self._write_lock:
            with self.lock:
                if not (
                    self._dirty
                    or self._versions
                    or self._logs
                    or self._tracked
                    or self._models
                    or finish
                ):
                    return False
                dirty = list(self._dirty)
                rows = [self._states[k].row() for k in dirty]
                versions, logs = self._versions, self._logs
                tracked, self._tracked = self._tracked, Tracked()
                models, self._models = self._models, []
                self._dirty, self._versions, self._logs = {}, [], []
            batch = StepBatch(
                run_id=self._run_id,
                branch=self._branch,
                actor=self._actor,
                steps=rows,
                versions=versions,
                logs=logs,
                tracked=tracked if tracked else None,
                models=models,
                finish=finish,
            )
            try:
                refused = self._runs.write_batch(batch, refused_versions=self._refused_versions)
            except BaseException:
                # one transaction: nothing of it was written, so it is put back in front
                # of what was marked since, for the next flush (after an outage, say)
                with self.lock:
                    self._dirty = {**dict.fromkeys(dirty), **self._dirty}
                    self._versions[:0] = versions
                    self._logs[:0] = logs
                    tracked.extend(self._tracked)
                    self._tracked = tracked
                    self._models[:0] = models
                raise
            if refused:
                with self.lock:
                    self._refused.extend(refused.items())
            return finish is not None and not refused

    def take_refused(self) -> list[tuple[str, str]]:
        """Steps whose versions the store kept off the branch (conflicts), with why."""
        with self.lock:
            out, self._refused = self._refused, []
        return out

    def close(self, *, finish: tuple[str, float] | None = None) -> bool:
        """Stop the background thread and commit what is left; with ``finish``, end the
        run in that last transaction when no refusal is pending or made (one commit
        less per run). Whether the run was ended."""
        from headrace.store.availability import CAP, FIRST_RETRY
        from headrace.store.failures import is_unreachable

        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self.lock:
            pending = bool(self._refused)
        # the last batch waits out a short outage too: the steps are done, only their
        # record is missing, and a resume would run them again
        deadline = time.monotonic() + OUTAGE_PATIENCE
        wait = FIRST_RETRY
        availability = self._availability()
        while True:
            try:
                ended = self.flush(finish=None if pending else finish)
            except Exception as exc:
                if not is_unreachable(exc) or time.monotonic() + wait > deadline:
                    raise
                availability.lost(exc)
                time.sleep(wait)
                wait = min(CAP, wait * 2)
                continue
            availability.back()
            return ended

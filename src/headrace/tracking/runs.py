"""Logging params, metrics, tags and artifacts on the current run.

Inside an asset the current run is the pipeline run: what the function logs travels
back with its step's result and is written in the step's transaction (a worker never
writes metadata). Outside pipelines, ``start_run`` opens a tracked run; what it logs is
buffered and written in batches (every 1,000 values or every second, and on exit, also
when the user's code raises), so logging costs microseconds per value.
"""

from __future__ import annotations

import atexit
import logging
import math
import numbers
import os
import socket
import threading
import time
from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any

from headrace.core.tracking import Tracked, TrackingError
from headrace.store.errors import StoreUnreachableError
from headrace.store.failures import refusal
from headrace.tracking.batches import TrackedWriter, spill

if TYPE_CHECKING:
    from types import TracebackType

    from headrace.runtime.workspace import Workspace

log = logging.getLogger("headrace.tracking")

MAX_KEY = 250
MAX_PARAM = 6000
#: Write a run's buffer once it holds this many values, or this many seconds after
#: the last write.
FLUSH_EVERY = 1000
FLUSH_SECONDS = 1.0
#: Metric values a run keeps while the store cannot be reached; past it, logging raises.
MAX_PENDING = 1_000_000
#: Seconds between attempts to reach the store: doubling from the first to the last.
BACKOFF = (0.2, 5.0)
#: Attempts to write what is left when a run ends, before it goes to a file.
END_ATTEMPTS = 3


def _key(key: Any, what: str) -> str:
    if (
        not isinstance(key, str)
        or not key
        or len(key) > MAX_KEY
        or key != key.strip()
        or "\x00" in key
    ):
        raise TrackingError(
            f"{what} key {key!r}: expected a non-empty name of at most {MAX_KEY} characters "
            "without surrounding spaces or NUL bytes"
        )
    return key


def _text(name: str, what: str, text: str) -> str:
    # PostgreSQL's text cannot hold a NUL byte: refused at the call on every database,
    # not as a failed write later (which, in a pipeline, would fail the run)
    if "\x00" in text:
        raise TrackingError(
            f"{what} {name!r}: its value holds a NUL byte, which the metadata store cannot "
            "keep; remove it (or log the data as an artifact)"
        )
    return text


class Collector:
    """What a run logged and has not written yet."""

    def __init__(self, run_id: str, blobs: Any) -> None:
        self.run_id = run_id
        self.blobs = blobs
        self.pending = Tracked()
        self.logged_params: dict[str, str] = {}
        self._metric_keys: set[str] = set()

    def _changed(self) -> None:
        """Hook: a run outside pipelines writes when its buffer is large or old."""

    def log_param(self, key: str, value: Any) -> None:
        self.log_params({key: value})

    def log_params(self, params: Mapping[str, Any]) -> None:
        if not isinstance(params, Mapping):
            raise TrackingError(f"log_params() takes a mapping of names to values, got {params!r}")
        checked: dict[str, str] = {}
        for key, value in params.items():
            name = _key(key, "param")
            text = _text(name, "param", value if isinstance(value, str) else str(value))
            if len(text) > MAX_PARAM:
                raise TrackingError(
                    f"param {name!r}: its value has {len(text):,} characters; at most "
                    f"{MAX_PARAM:,} (log long text as an artifact)"
                )
            before = self.logged_params.get(name)
            if before is not None and before != text:
                raise TrackingError(
                    f"run {self.run_id[:16]}: param {name!r} is already {before!r} and cannot "
                    f"become {text!r}; params are fixed once logged"
                )
            checked[name] = text
        self.logged_params.update(checked)
        self.pending.params.update(checked)
        self._changed()

    def log_metric(
        self, key: str, value: float, step: int | None = None, timestamp: float | None = None
    ) -> None:
        if key not in self._metric_keys:
            self._metric_keys.add(_key(key, "metric"))
        if isinstance(value, float):
            number = value
        elif isinstance(value, numbers.Real) and not isinstance(value, bool):
            number = float(value)
        else:
            raise TrackingError(f"metric {key!r}: {value!r} is not a number")
        if step is None:
            step = 0
        elif isinstance(step, bool) or not isinstance(step, int):
            raise TrackingError(f"metric {key!r}: step must be a whole number, got {step!r}")
        if math.isinf(number):
            raise TrackingError(f"metric {key!r}: {number} is not a finite number (NaN is kept)")
        self.pending.metrics.append(
            (key, number, step, time.time() if timestamp is None else float(timestamp))
        )
        if len(self.pending.metrics) >= FLUSH_EVERY:
            self._changed()

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        if not isinstance(metrics, Mapping):
            raise TrackingError(
                f"log_metrics() takes a mapping of names to numbers, got {metrics!r}"
            )
        now = time.time()
        for key, value in metrics.items():
            self.log_metric(key, value, step, now)
        self._changed()

    def set_tag(self, key: str, value: Any) -> None:
        self.set_tags({key: value})

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        for key, value in tags.items():
            name = _key(key, "tag")
            self.pending.tags[name] = _text(name, "tag", str(value))
        self._changed()

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> list[str]:
        """Store a file (or every file of a folder) with the run; returns their paths."""
        source = Path(path)
        if not source.exists():
            raise TrackingError(f"log_artifact(): {str(source)!r} does not exist")
        prefix = (artifact_path or "").strip("/")
        files = (
            [source] if source.is_file() else sorted(p for p in source.rglob("*") if p.is_file())
        )
        stored = []
        for file in files:
            relative = file.name if source.is_file() else file.relative_to(source).as_posix()
            name = f"{prefix}/{relative}" if prefix else relative
            digest = self.blobs.put_file(file)
            self.pending.artifacts.append((name, digest, file.stat().st_size, time.time()))
            stored.append(name)
        self._changed()
        return stored

    def take(self) -> Tracked:
        """Hand over what is pending (it is written by the caller)."""
        pending, self.pending = self.pending, Tracked()
        return pending


#: The collector of the asset function running in this thread, if any.
STEP: ContextVar[Collector | None] = ContextVar("headrace_step_collector", default=None)

_lock = threading.Lock()
_active: list[ActiveRun] = []


class ActiveRun(Collector):
    """A tracked run started with :func:`start_run`; a context manager."""

    def __init__(
        self,
        ws: Workspace,
        run_id: str,
        experiment: str,
        name: str | None,
        parent: ActiveRun | None,
        owns_workspace: bool,
    ) -> None:
        super().__init__(run_id, ws.blobs)
        self.ws = ws
        self.id = run_id
        self.experiment = experiment
        self.name = name
        self.parent = parent
        self.status: str | None = None
        self._owns = owns_workspace
        self._written = time.monotonic()
        self._next_try = 0.0
        self._delay = BACKOFF[0]
        # A local store isolates refused values into dead letters; a team server's
        # tracking API answers each batch itself.
        self._isolating = (
            TrackedWriter(ws.store, run_id) if hasattr(ws.store, "deadletters") else None
        )

    def __repr__(self) -> str:
        return f"<ActiveRun {self.id[:16]} experiment={self.experiment!r} name={self.name!r}>"

    def _changed(self) -> None:
        if (
            len(self.pending.metrics) >= FLUSH_EVERY
            or time.monotonic() - self._written >= FLUSH_SECONDS
        ) and time.monotonic() >= self._next_try:
            self.flush()

    def flush(self) -> None:
        """Write what is pending now (kept pending while the store cannot be reached)."""
        pending = self.take()
        if pending:
            self._write(pending)
        self._written = time.monotonic()

    def _write(self, pending: Tracked) -> bool:
        """Write ``pending``; False when the store could not be reached (it is pending
        again, before anything logged since). Values the database refuses become dead
        letters and are not retried."""
        if self._isolating is None:
            try:
                self.ws.store.tracking.write(self.id, pending)
            except BaseException:
                self._keep(pending)
                raise
            return True
        left, outcome = self._isolating.write(pending)
        if outcome.error is None:
            self._delay, self._next_try = BACKOFF[0], 0.0
            return True
        self._keep(left)
        self._next_try = time.monotonic() + self._delay
        log.warning(
            "run %s: the metadata store cannot be reached (%s); %d metric values wait, next "
            "attempt in %.1f s",
            self.id[:16],
            refusal(outcome.error),
            len(self.pending.metrics),
            self._delay,
        )
        self._delay = min(self._delay * 2, BACKOFF[1])
        if len(self.pending.metrics) > MAX_PENDING:
            raise StoreUnreachableError(
                f"run {self.id[:16]}: {len(self.pending.metrics):,} metric values wait for "
                f"the metadata store (at most {MAX_PENDING:,}; {refusal(outcome.error)}); "
                "they are kept: retry once the store answers"
            ) from outcome.error
        return False

    def _keep(self, older: Tracked) -> None:
        older.extend(self.pending)  # what was logged meanwhile is newer
        self.pending = older

    def end(self, status: str = "success") -> None:
        """Write what is pending and mark the run finished (idempotent). When the store
        still cannot be reached after a few attempts, what is pending goes to a file
        under ``.headrace/unlogged/`` and :class:`StoreUnreachableError` names it."""
        if self.status is not None:
            return
        if self._isolating is None:
            pending = self.take()
            try:
                self.ws.store.tracking.write(self.id, pending, status=status)
            except BaseException:
                self._keep(pending)
                raise
        else:
            self._end_isolated(status)
        self.status = status
        self._forget()

    def _end_isolated(self, status: str) -> None:
        for attempt in range(END_ATTEMPTS):
            pending = self.take()
            if not pending or self._write(pending):
                self.ws.store.tracking.write(self.id, Tracked(), status=status)
                return
            if attempt + 1 < END_ATTEMPTS:
                time.sleep(min(self._delay, 1.0))
        kept, self.pending = self.pending, Tracked()
        path = spill(self.ws.settings.state_dir / "unlogged", self.id, kept)
        self.status = "unwritten"
        self._forget()
        log.critical("run %s: what it logged could not be written; kept in %s", self.id, path)
        raise StoreUnreachableError(
            f"run {self.id[:16]}: the metadata store could not be reached, so the run could "
            f"not be marked {status}; what it logged and could not write is kept in {path}"
        )

    def _forget(self) -> None:
        with _lock:
            if self in _active:
                _active.remove(self)
        if self._owns:
            self.ws.close()

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if kind is None:
            status = "success"
        elif issubclass(kind, KeyboardInterrupt):
            status = "canceled"
        else:
            status = "failed"
        self.end(status)


def start_run(
    experiment: str | None = None,
    *,
    name: str | None = None,
    nested: bool = False,
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, Any] | None = None,
    workspace: Workspace | None = None,
) -> ActiveRun:
    """Start a tracked run outside pipelines (use it as ``with start_run(...) as run:``).

    ``experiment`` defaults to the parent run's, else ``default``. With a run already
    active, ``nested=True`` starts a child of it; without, it is an error (end the
    other run first), so a forgotten ``end()`` does not silently nest runs.
    """
    if STEP.get() is not None:
        raise TrackingError(
            "start_run() inside an asset: the pipeline run is the tracked run; call "
            "headrace.log_metric(...) and friends directly"
        )
    with _lock:
        parent = _active[-1] if _active else None
    if parent is not None and not nested:
        raise TrackingError(
            f"run {parent.id[:16]} is still active; end it first, or pass nested=True to "
            "start a child run"
        )
    owns = workspace is None
    if workspace is None:
        workspace = _default_workspace()
    try:
        chosen = (
            experiment if experiment is not None else (parent.experiment if parent else "default")
        )
        record = workspace.store.tracking.experiment(chosen)
        run_id = workspace.store.tracking.start(
            experiment_id=record.id,
            name=name,
            parent_run_id=parent.id if parent else None,
            host=socket.gethostname(),
            pid=os.getpid(),
        )
    except BaseException:
        if owns:
            workspace.close()
        raise
    run = ActiveRun(workspace, run_id, chosen, name, parent, owns)
    with _lock:
        _active.append(run)
    if params:
        run.log_params(params)
    if tags:
        run.set_tags(tags)
    return run


def _default_workspace() -> Any:
    """The workspace found from here, or, with ``HEADRACE_URL`` set, the team server's
    tracking (see :mod:`headrace.tracking.remote`)."""
    from headrace.runtime.remote import Remote

    remote = Remote.from_environment()
    if remote is not None:
        from headrace.tracking.remote import RemoteTrackingWorkspace

        return RemoteTrackingWorkspace(remote)
    from headrace.runtime.workspace import open_workspace

    return open_workspace()


def active_run() -> ActiveRun | None:
    with _lock:
        return _active[-1] if _active else None


def current() -> Collector:
    """Where a log call goes: the running asset's step, else the innermost active run."""
    step = STEP.get()
    if step is not None:
        return step
    with _lock:
        if _active:
            return _active[-1]
    raise TrackingError(
        "no active run: log inside an asset, or within `with headrace.start_run(...):`"
    )


# -- the module-level API (``hr.log_metric`` and friends) -------------------------------


def log_param(key: str, value: Any) -> None:
    """Record a param on the current run (the asset's pipeline run, or the active run)."""
    current().log_param(key, value)


def log_params(params: Mapping[str, Any]) -> None:
    current().log_params(params)


def log_metric(key: str, value: float, step: int | None = None) -> None:
    """Record one value of a metric (its history is kept by ``step``)."""
    current().log_metric(key, value, step)


def log_metrics(metrics: Mapping[str, float], step: int | None = None) -> None:
    current().log_metrics(metrics, step)


def set_tag(key: str, value: Any) -> None:
    current().set_tag(key, value)


def set_tags(tags: Mapping[str, Any]) -> None:
    current().set_tags(tags)


def log_artifact(path: str | Path, artifact_path: str | None = None) -> list[str]:
    """Store a file, or a folder's files, with the current run."""
    return current().log_artifact(path, artifact_path)


@atexit.register
def _end_all() -> None:
    """At interpreter exit, write what runs still hold and end them."""
    while True:
        with _lock:
            if not _active:
                return
            run = _active[-1]
        try:
            run.end("success")
        except Exception:
            with _lock:
                if run in _active:
                    _active.remove(run)

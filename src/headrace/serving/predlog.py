"""The prediction log's writer: requests append, a background thread writes in batches.

Nothing is encoded or written on the request path: a request appends its table and
predictions to a queue; the writer turns them into rows and inserts them every
``interval`` seconds (or sooner once ``batch`` rows wait). ``close`` writes what is left,
so a graceful shutdown loses nothing.

No answered prediction is lost. Rows the database refuses are isolated and kept as dead
letters (:class:`~headrace.store.deadletters.IsolatingWriter`); the rest of their batch
is written. While the store cannot be reached, rows wait in memory and are retried with
backoff, up to ``capacity`` rows: then new requests are refused with a 503 before they
are scored. Rows still unwritten at shutdown go to a JSON-lines file. Each of these is
logged, counted in ``/metrics`` and shown by ``/health``.
"""

from __future__ import annotations

import itertools
import json
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from headrace.core.deadletters import PREDICTIONS
from headrace.serving.errors import PredictionLogFullError
from headrace.serving.unlogged import spill

if TYPE_CHECKING:
    from headrace.store.engine import MetadataStore

log = logging.getLogger("headrace.serving")


@dataclass(frozen=True, slots=True)
class Scored:
    request_id: str
    model: str
    version: int
    role: str
    inputs: Any  # a polars DataFrame or a fast path's Matrix
    outputs: list[Any]
    latency_ms: float
    at: float
    keys: list[str | None] | None = None
    #: a binary classifier's positive-class probabilities for ``inputs`` (or None)
    scorer: Any = None


def _inputs_json(items: list[Scored]) -> list[list[str]]:
    """Each item's input rows as JSON objects, encoded by polars in as few calls as the
    items' columns allow (the fast path's matrices of one model are stacked first)."""
    from headrace.serving.fastpath import Matrix, as_frame, stack

    encoded: list[list[str] | None] = [None] * len(items)
    same: dict[tuple[str, ...], list[int]] = {}
    for index, item in enumerate(items):
        if isinstance(item.inputs, Matrix):
            same.setdefault(tuple(item.inputs.columns), []).append(index)
        else:
            encoded[index] = _ndjson(as_frame(item.inputs))
    for indexes in same.values():
        lines = _ndjson(stack([items[i].inputs for i in indexes]).frame())
        offset = 0
        for i in indexes:
            height = items[i].inputs.height
            encoded[i] = lines[offset : offset + height]
            offset += height
    return [e if e is not None else [] for e in encoded]


def _scores(items: list[Scored]) -> list[list[float] | None]:
    """Each item's positive-class probabilities, one call of each model's scorer for all
    its items of the flush; a scorer that fails leaves its rows without a score."""
    from headrace.serving.fastpath import stack

    out: list[list[float] | None] = [None] * len(items)
    by_scorer: dict[int, list[int]] = {}
    for index, item in enumerate(items):
        if item.scorer is not None:
            by_scorer.setdefault(id(item.scorer), []).append(index)
    for indexes in by_scorer.values():
        scorer = items[indexes[0]].scorer
        try:
            values = [float(v) for v in scorer(stack([items[i].inputs for i in indexes]))]
        except Exception:
            log.exception("scoring %d logged rows for the monitors failed", len(indexes))
            continue
        offset = 0
        for i in indexes:
            height = len(items[i].outputs)
            out[i] = values[offset : offset + height]
            offset += height
    return out


def _ndjson(frame: Any) -> list[str]:
    try:
        text: str = frame.write_ndjson()
    except Exception:  # a type polars cannot write as JSON: each value as text
        return [json.dumps(record, default=str) for record in frame.to_dicts()]
    return text.splitlines()


_ENCODE = json.JSONEncoder(default=str).encode


def _rows(items: list[Scored], ids: Iterator[str]) -> list[dict[str, Any]]:
    """The rows of the log's table for ``items``; ``ids`` gives each request's own id
    (a client may send the same X-Request-Id twice)."""
    rows = []
    scores = _scores(items)
    for item, inputs, item_scores in zip(items, _inputs_json(items), scores, strict=True):
        unique = next(ids)
        keys = item.keys
        for index, (record, output) in enumerate(zip(inputs, item.outputs, strict=True)):
            rows.append(
                {
                    "id": f"{unique}:{index}",
                    "request_id": item.request_id,
                    "model": item.model,
                    "version": item.version,
                    "role": item.role,
                    "row": index,
                    "key": keys[index] if keys else None,
                    "inputs": record,
                    "output": _ENCODE(output),
                    "latency_ms": item.latency_ms,
                    "created_at": item.at,
                    "label": None,
                    "labeled_at": None,
                    "score": item_scores[index] if item_scores is not None else None,
                }
            )
    return rows


def row_ids() -> Iterator[str]:
    """Ids unique across processes and restarts: a random prefix, then a count."""
    prefix = uuid.uuid4().hex
    return (f"{prefix}-{n}" for n in itertools.count())


#: Rows kept in memory while the store cannot be reached (then requests get a 503).
CAPACITY = 200_000
#: Seconds between attempts to reach the store: doubling from the first to the last.
BACKOFF = (0.2, 5.0)
#: ``/health`` says degraded this long after a row was dead-lettered.
DEGRADED_SECONDS = 600.0


class PredictionLog:
    """The queue of scored requests and the thread that writes them; see the module."""

    def __init__(
        self,
        store: MetadataStore,
        *,
        interval: float = 0.05,
        batch: int = 1000,
        capacity: int = CAPACITY,
        spill_dir: Path | None = None,
        registry: Any = None,
    ) -> None:
        from headrace.store.deadletters import IsolatingWriter

        self._store = store
        self._writer: IsolatingWriter[dict[str, Any]] = IsolatingWriter(
            store, PREDICTIONS, store.predictions.write, _payload
        )
        self._queue: deque[Scored] = deque()
        self._queued_rows = 0
        self._count_lock = threading.Lock()
        #: encoded rows whose write waits for the store to answer again (in order)
        self._waiting: list[dict[str, Any]] = []
        self._interval = interval
        self._batch = batch
        self.capacity = capacity
        self._spill_dir = spill_dir
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()  # one writer at a time (the thread, or close)
        self._ids = row_ids()
        self._next_try = 0.0
        self._delay = BACKOFF[0]
        self.written = 0
        self.dead_lettered = 0
        self.failed_flushes = 0
        self.unlogged = 0
        self.last_error: str | None = None
        self.unreachable_since: float | None = None
        self._dead_lettered_at: float | None = None
        self.spilled_to: list[Path] = []
        self._metrics = _Metrics(registry, self) if registry is not None else None
        self._thread = threading.Thread(target=self._loop, name="headrace-predlog", daemon=True)
        self._thread.start()

    def append(self, item: Scored) -> None:
        with self._count_lock:
            self._queued_rows += len(item.outputs)
            self._queue.append(item)
        if len(self._queue) >= self._batch:
            self._wake.set()

    @property
    def pending(self) -> int:
        """Rows not written yet: queued, or waiting for the store."""
        return self._queued_rows + len(self._waiting)

    def check_room(self) -> None:
        """Raise :class:`PredictionLogFullError` when no more rows may be kept (called
        before a request is scored, so a refused request was never answered)."""
        pending = self.pending
        if pending >= self.capacity:
            why = f"; last error: {self.last_error}" if self.last_error else ""
            raise PredictionLogFullError(
                f"the prediction log holds {pending:,} rows waiting for the metadata store "
                f"(at most {self.capacity:,}{why}); retry once the store keeps up again"
            )

    def health(self) -> dict[str, Any]:
        """The log's state for ``/health``: ``degraded`` with why, or ``ok``."""
        reasons = []
        if self._waiting:
            reasons.append(f"{len(self._waiting):,} rows wait for the metadata store")
        recent = self._dead_lettered_at is not None and (
            time.time() - self._dead_lettered_at < DEGRADED_SECONDS
        )
        if recent:
            reasons.append(f"{self.dead_lettered:,} rows were refused by the database")
        if self.unlogged:
            reasons.append(f"{self.unlogged:,} rows could not be written to the store")
        return {
            "status": "degraded" if reasons else "ok",
            "reasons": reasons,
            "pending_rows": self.pending,
            "capacity": self.capacity,
            "written_rows": self.written,
            "dead_lettered_rows": self.dead_lettered,
            "failed_flushes": self.failed_flushes,
            "unlogged_rows": self.unlogged,
            "last_error": self.last_error,
        }

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._interval)
            self._wake.clear()
            if time.monotonic() >= self._next_try:
                try:
                    self.flush()
                except Exception:  # the writer thread must live: logged, tried again
                    log.exception("the prediction log's flush failed")

    def _take(self) -> list[Scored]:
        items: list[Scored] = []
        with self._count_lock:
            while self._queue:
                items.append(self._queue.popleft())
            self._queued_rows -= sum(len(item.outputs) for item in items)
        return items

    def flush(self) -> bool:
        """Write what waits; False when the store could not be reached (kept)."""
        with self._lock:
            rows, self._waiting = self._waiting, []
            items = self._take()
            if items:
                rows.extend(self._encode(items))
            if not rows:
                return True
            outcome = self._writer.write(rows)
            self.written += outcome.written
            if outcome.dead_lettered:
                self.dead_lettered += len(outcome.dead_lettered)
                self._dead_lettered_at = time.time()
                if self._metrics is not None:
                    self._metrics.dead_lettered.inc(len(outcome.dead_lettered))
            if outcome.error is None:
                if self.unreachable_since is not None:
                    log.warning(
                        "the prediction log reaches the metadata store again after %.1f s",
                        time.time() - self.unreachable_since,
                    )
                self.unreachable_since = None
                self._delay = BACKOFF[0]
                self._next_try = 0.0
                return True
            self._waiting = outcome.unwritten
            self._failed(outcome.error)
            return False

    def _failed(self, error: BaseException) -> None:
        from headrace.store.failures import refusal

        self.failed_flushes += 1
        if self._metrics is not None:
            self._metrics.failed_flushes.inc()
        self.last_error = refusal(error)
        if self.unreachable_since is None:
            self.unreachable_since = time.time()
        log.error(
            "the prediction log cannot reach the metadata store (%s): %d rows wait in "
            "memory (at most %d), next attempt in %.1f s",
            self.last_error,
            len(self._waiting),
            self.capacity,
            self._delay,
        )
        self._next_try = time.monotonic() + self._delay
        self._delay = min(self._delay * 2, BACKOFF[1])

    def _encode(self, items: list[Scored]) -> list[dict[str, Any]]:
        try:
            return _rows(items, self._ids)
        except Exception:  # one item polars cannot encode must not take the others
            rows: list[dict[str, Any]] = []
            for item in items:
                try:
                    rows.extend(_rows([item], self._ids))
                except Exception as exc:
                    log.exception("the prediction log cannot encode request %s", item.request_id)
                    self._unencodable(item, exc)
            return rows

    def _unencodable(self, item: Scored, exc: Exception) -> None:
        letter = {
            "request_id": item.request_id,
            "model": item.model,
            "version": item.version,
            "role": item.role,
            "outputs": item.outputs,
            "created_at": item.at,
        }
        try:
            self._store.deadletters.add(
                PREDICTIONS, [(f"encoding failed: {type(exc).__name__}: {exc}", letter)]
            )
        except Exception:
            log.exception("dead-lettering request %s failed", item.request_id)
            self._lost([letter], count=len(item.outputs))
            return
        self.dead_lettered += len(item.outputs)
        self._dead_lettered_at = time.time()

    def close(self, *, attempts: int = 3) -> None:
        """Stop the thread and write what is left; rows the store still cannot take
        after ``attempts`` go to a JSON-lines file (or, failing that, are logged as
        lost), never silently dropped."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=30)
        for attempt in range(attempts):
            if self.flush():
                return
            if attempt + 1 < attempts:
                time.sleep(min(self._delay, 1.0))
        with self._lock:
            rows, self._waiting = self._waiting, []
        if rows:
            self._lost(rows)

    def _lost(self, rows: list[dict[str, Any]], *, count: int | None = None) -> None:
        """Rows the store would not take: to a file under ``spill_dir``, loudly."""
        count = len(rows) if count is None else count
        self.unlogged += count
        if self._metrics is not None:
            self._metrics.unlogged.inc(count)
        path = None
        if self._spill_dir is not None:
            try:
                path = spill(self._spill_dir, rows)
            except OSError:
                log.exception("writing %d unlogged prediction rows to a file failed", len(rows))
        if path is None:
            log.critical(
                "%d prediction rows were NOT logged: the metadata store could not be reached "
                "(%s) and no file could keep them",
                len(rows),
                self.last_error,
            )
            return
        self.spilled_to.append(path)
        log.critical(
            "%d prediction rows could not be written to the metadata store (%s); they are "
            "kept in %s: load them with: headrace predictions load %s",
            len(rows),
            self.last_error,
            path,
            path,
        )


def _payload(row: dict[str, Any]) -> dict[str, Any]:
    return row


class _Metrics:
    """The log's Prometheus series, in the server's registry."""

    def __init__(self, registry: Any, owner: PredictionLog) -> None:
        from prometheus_client import Counter, Gauge

        self.dead_lettered = Counter(
            "headrace_prediction_log_dead_lettered_rows",
            "Logged rows the database refused, kept as dead letters",
            registry=registry,
        )
        self.failed_flushes = Counter(
            "headrace_prediction_log_failed_flushes",
            "Writes of the prediction log that could not reach the metadata store",
            registry=registry,
        )
        self.unlogged = Counter(
            "headrace_prediction_log_unlogged_rows",
            "Answered rows not written to the metadata store (kept in a file, or lost)",
            registry=registry,
        )
        pending = Gauge(
            "headrace_prediction_log_pending_rows",
            "Rows of the prediction log not written yet",
            registry=registry,
        )
        pending.set_function(lambda: owner.pending)

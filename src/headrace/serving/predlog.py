"""The prediction log's writer: requests append, a background thread writes in batches.

Nothing is encoded or written on the request path: a request appends its table and
predictions to a queue; the writer turns them into rows and inserts them every
``interval`` seconds (or sooner once ``batch`` rows wait). ``close`` writes what is left,
so a graceful shutdown loses nothing.
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
from typing import Any

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


class PredictionLog:
    def __init__(self, repository: Any, *, interval: float = 0.05, batch: int = 1000) -> None:
        self._repository = repository
        self._queue: deque[Scored] = deque()
        self._interval = interval
        self._batch = batch
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()  # one writer at a time (the thread, or close)
        self.written = 0
        self._ids = row_ids()
        self.failures = 0
        self._thread = threading.Thread(target=self._loop, name="headrace-predlog", daemon=True)
        self._thread.start()

    def append(self, item: Scored) -> None:
        self._queue.append(item)
        if len(self._queue) >= self._batch:
            self._wake.set()

    @property
    def pending(self) -> int:
        return len(self._queue)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._interval)
            self._wake.clear()
            self.flush()

    def flush(self) -> None:
        with self._lock:
            items: list[Scored] = []
            while self._queue:
                items.append(self._queue.popleft())
            if not items:
                return
            rows = _rows(items, self._ids)
            for attempt in range(5):
                try:
                    self._repository.write(rows)
                    self.written += len(rows)
                    return
                except Exception:  # a locked database: wait and try again
                    self.failures += 1
                    log.exception(
                        "writing %d prediction rows failed (attempt %d)", len(rows), attempt + 1
                    )
                    time.sleep(0.2 * (attempt + 1))
            for item in reversed(items):  # kept for the next flush, in order
                self._queue.appendleft(item)

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=30)
        self.flush()

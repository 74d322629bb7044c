"""The prediction log's writer: requests append, a background thread writes in batches.

Nothing is encoded or written on the request path: a request appends its table and
predictions to a queue; the writer turns them into rows and inserts them every
``interval`` seconds (or sooner once ``batch`` rows wait). ``close`` writes what is left,
so a graceful shutdown loses nothing.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("headrace.serving")


@dataclass(frozen=True, slots=True)
class Scored:
    request_id: str
    model: str
    version: int
    role: str
    inputs: Any  # a polars DataFrame
    outputs: list[Any]
    latency_ms: float
    at: float
    keys: list[str | None] | None = None


def _rows(item: Scored) -> list[dict[str, Any]]:
    records = item.inputs.to_dicts()
    # the row's own id: a client may send the same X-Request-Id twice
    unique = uuid.uuid4().hex
    return [
        {
            "id": f"{unique}:{index}",
            "request_id": item.request_id,
            "model": item.model,
            "version": item.version,
            "role": item.role,
            "row": index,
            "key": item.keys[index] if item.keys else None,
            "inputs": json.dumps(record, default=str),
            "output": json.dumps(output, default=str),
            "latency_ms": item.latency_ms,
            "created_at": item.at,
            "label": None,
            "labeled_at": None,
        }
        for index, (record, output) in enumerate(zip(records, item.outputs, strict=True))
    ]


class PredictionLog:
    def __init__(self, repository: Any, *, interval: float = 0.2, batch: int = 2000) -> None:
        self._repository = repository
        self._queue: deque[Scored] = deque()
        self._interval = interval
        self._batch = batch
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()  # one writer at a time (the thread, or close)
        self.written = 0
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
            rows = [row for item in items for row in _rows(item)]
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

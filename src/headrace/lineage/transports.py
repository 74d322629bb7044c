"""Where OpenLineage events go: a JSON-lines file, an HTTP endpoint, or memory.

A transport is two methods: ``send`` one event (a JSON-ready dict; raise on failure)
and ``close`` what it holds open. Transports are called from one sender thread at a
time (see ``OpenLineageEmitter``); they do not retry on their own beyond what is
documented here, and never need to swallow errors: the emitter counts and logs them.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path
from typing import Any, Protocol

if sys.platform != "win32":
    import fcntl

#: Retries of the HTTP transport (urllib3 ``Retry``): a short blip is ridden out, a down
#: server costs well under a second per event before the emitter's circuit breaker
#: stops trying for a while.
HTTP_RETRY: dict[str, Any] = {
    "total": 2,
    "connect": 2,
    "read": 1,
    "backoff_factor": 0.2,
    "status_forcelist": [500, 502, 503, 504],
    "allowed_methods": ["POST"],
}

LINEAGE_ENDPOINT = "api/v1/lineage"


class LineageTransport(Protocol):
    def send(self, event: dict[str, Any]) -> None:
        """Deliver one event; raise when it could not be delivered."""
        ...

    def close(self) -> None:
        """Release connections or files; ``send`` may be called again afterwards."""
        ...


class FileTransport:
    """Appends each event as one JSON line to ``path`` (its folders are created).

    Each event is written by a single ``write`` on a file opened with ``O_APPEND``, under
    an exclusive ``flock``, so concurrent runs (threads or processes) appending to the
    same file never interleave their lines.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    def send(self, event: dict[str, Any]) -> None:
        line = json.dumps(event, ensure_ascii=False, separators=(",", ":")) + "\n"
        data = memoryview(line.encode("utf-8"))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
        fd = os.open(self.path, flags, 0o644)
        try:
            if sys.platform != "win32":
                fcntl.flock(fd, fcntl.LOCK_EX)  # released by close
            while data:
                written = os.write(fd, data)
                data = data[written:]
        finally:
            os.close(fd)

    def close(self) -> None:
        pass

    def __repr__(self) -> str:
        return f"FileTransport({str(self.path)!r})"


class HttpTransport:
    """POSTs each event as JSON to ``<url>/api/v1/lineage`` (Marquez and most consumers).

    Sending goes through openlineage-python's ``HttpTransport`` (requests, keep-alive,
    ``Authorization: Bearer <api_key>``, retries per :data:`HTTP_RETRY`), imported on
    the first event so that configuring lineage costs no import time. A non-2xx answer
    raises.
    """

    def __init__(self, url: str, *, api_key: str | None = None, timeout: float = 5.0) -> None:
        self.url = url.rstrip("/")
        self.api_key = api_key or None
        self.timeout = timeout
        self._client: Any = None
        self._lock = threading.Lock()

    @property
    def endpoint(self) -> str:
        return f"{self.url}/{LINEAGE_ENDPOINT}"

    def send(self, event: dict[str, Any]) -> None:
        with self._lock:
            if self._client is None:
                self._client = self._connect()
            client = self._client
        client.emit(event)

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def _connect(self) -> Any:
        from openlineage.client.transport.http import HttpConfig
        from openlineage.client.transport.http import HttpTransport as ClientTransport

        config: dict[str, Any] = {
            # A trailing slash: the client joins url and endpoint like a browser would,
            # which would drop the url's last path segment otherwise.
            "url": self.url + "/",
            "endpoint": LINEAGE_ENDPOINT,
            "timeout": self.timeout,
            "retry": dict(HTTP_RETRY),
        }
        if self.api_key:
            config["auth"] = {"type": "api_key", "apiKey": self.api_key}
        return ClientTransport(HttpConfig.from_dict(config))

    def __repr__(self) -> str:
        return f"HttpTransport({self.endpoint!r})"


class MemoryTransport:
    """Keeps the events (as their JSON round trip) in ``events``: for tests and tools."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def send(self, event: dict[str, Any]) -> None:
        copy = json.loads(json.dumps(event))
        with self._lock:
            self.events.append(copy)

    def close(self) -> None:
        pass

"""Capturing a step's stdout, stderr and log records while it runs.

``sys.stdout``/``sys.stderr`` are swapped once for routers that send each write to the
buffer of the step running in the current thread (a context variable), or to the real
stream outside steps. Threads of the threads executor therefore never mix their logs.
"""

from __future__ import annotations

import contextlib
import contextvars
import io
import logging
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any, TextIO

_current: contextvars.ContextVar[StepLogBuffer | None] = contextvars.ContextVar(
    "headrace_step_logs", default=None
)
_lock = threading.Lock()
_installed = 0
_originals: tuple[TextIO, TextIO] | None = None
_handler: logging.Handler | None = None

#: Loggers handed to asset code (``context.log``) log at INFO and above.
ASSET_LOGGER = "headrace.asset"


class StepLogBuffer:
    """Writes of one step attempt, merged into runs of the same stream."""

    def __init__(self) -> None:
        self.entries: list[tuple[str, float, str]] = []

    def write(self, stream: str, text: str) -> None:
        if not text:
            return
        if self.entries and self.entries[-1][0] == stream:
            last = self.entries[-1]
            self.entries[-1] = (stream, last[1], last[2] + text)
        else:
            self.entries.append((stream, time.time(), text))


class _Router(io.TextIOBase):
    def __init__(self, stream: str, original: TextIO) -> None:
        self._stream = stream
        self._original = original

    def write(self, text: str) -> int:
        buffer = _current.get()
        if buffer is None:
            return self._original.write(text)
        buffer.write(self._stream, text)
        return len(text)

    def flush(self) -> None:
        if _current.get() is None:
            self._original.flush()

    def isatty(self) -> bool:
        return self._original.isatty()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._original, "encoding", "utf-8")

    def fileno(self) -> int:
        return self._original.fileno()


class _Handler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        buffer = _current.get()
        if buffer is not None:
            buffer.write("log", self.format(record) + "\n")


def install() -> None:
    """Route the process's stdout, stderr and logging through step buffers (refcounted)."""
    global _installed, _originals, _handler
    with _lock:
        _installed += 1
        if _installed > 1:
            return
        _originals = (sys.stdout, sys.stderr)
        sys.stdout = _Router("stdout", sys.stdout)
        sys.stderr = _Router("stderr", sys.stderr)
        _handler = _Handler()
        logging.getLogger().addHandler(_handler)
        asset_logger = logging.getLogger(ASSET_LOGGER)
        if asset_logger.level == logging.NOTSET:
            asset_logger.setLevel(logging.INFO)


def uninstall() -> None:
    global _installed, _originals, _handler
    with _lock:
        _installed -= 1
        if _installed > 0:
            return
        if _originals is not None:
            sys.stdout, sys.stderr = _originals
            _originals = None
        if _handler is not None:
            logging.getLogger().removeHandler(_handler)
            _handler = None


@contextlib.contextmanager
def installed() -> Iterator[None]:
    install()
    try:
        yield
    finally:
        uninstall()


@contextlib.contextmanager
def capturing(buffer: StepLogBuffer) -> Iterator[StepLogBuffer]:
    token = _current.set(buffer)
    try:
        yield buffer
    finally:
        _current.reset(token)


def current_buffer() -> StepLogBuffer | None:
    return _current.get()


def run_in_context(fn: Any, *args: Any) -> Any:
    """Run ``fn`` in a copy of the caller's context (keeps the step's log buffer)."""
    return contextvars.copy_context().run(fn, *args)

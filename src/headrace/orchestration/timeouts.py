"""Enforcing an asset's timeout.

In a main thread (the in-process executor, or a worker process) a SIGALRM timer raises
inside the user's code, which stops it. Elsewhere the function runs in a helper thread
and the step fails when the time is up; Python cannot stop that thread, so its result
is discarded when it finally returns.
"""

from __future__ import annotations

import contextvars
import signal
import threading
from collections.abc import Callable
from typing import Any

from headrace.orchestration.errors import StepTimeoutError


def call_with_timeout(fn: Callable[[], Any], timeout: float | None, asset: str) -> Any:
    if timeout is None:
        return fn()
    if threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer"):
        return _with_alarm(fn, timeout, asset)
    return _with_thread(fn, timeout, asset)


def _with_alarm(fn: Callable[[], Any], timeout: float, asset: str) -> Any:
    def on_alarm(_signum: int, _frame: Any) -> None:
        raise StepTimeoutError(asset, timeout)

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        return fn()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _with_thread(fn: Callable[[], Any], timeout: float, asset: str) -> Any:
    outcome: dict[str, Any] = {}
    context = contextvars.copy_context()

    def target() -> None:
        try:
            outcome["value"] = context.run(fn)
        except BaseException as exc:  # handed back to the caller's thread
            outcome["error"] = exc

    worker = threading.Thread(target=target, name=f"headrace-{asset}", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise StepTimeoutError(asset, timeout)
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")

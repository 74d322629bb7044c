"""Executors: where steps run. In the calling thread, in threads, or in processes.

Each executor has one job: turn a :class:`StepTask` into a future :class:`StepResult`.
"""

from __future__ import annotations

import pickle
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Protocol

from headrace.core.assets import AssetSpec
from headrace.core.graph import AssetGraph
from headrace.orchestration.errors import ExecutorError
from headrace.orchestration.step import StepResult, StepTask, execute_step

if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor

EXECUTORS = ("in_process", "threads", "processes")


class Executor(Protocol):
    concurrency: int

    def submit(self, task: StepTask) -> Future[StepResult]: ...

    def shutdown(self) -> None: ...


class InProcessExecutor:
    """Runs each step at once in the calling thread: the lowest overhead."""

    concurrency = 1

    def __init__(self, graph: AssetGraph, blobs: Any) -> None:
        self._graph = graph
        self._blobs = blobs

    def submit(self, task: StepTask) -> Future[StepResult]:
        future: Future[StepResult] = Future()
        future.set_result(execute_step(task, self._graph[task.asset], self._blobs))
        return future

    def shutdown(self) -> None:
        return None


class ThreadExecutor:
    """Runs up to ``max_concurrency`` steps at once in threads (for I/O-bound assets)."""

    def __init__(self, graph: AssetGraph, blobs: Any, max_concurrency: int) -> None:
        self._graph = graph
        self._blobs = blobs
        self.concurrency = max_concurrency
        self._pool = ThreadPoolExecutor(max_concurrency, thread_name_prefix="headrace-step")

    def submit(self, task: StepTask) -> Future[StepResult]:
        return self._pool.submit(execute_step, task, self._graph[task.asset], self._blobs)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


# -- worker processes -------------------------------------------------------------------

_worker_graph: AssetGraph | None = None
_worker_blobs: Any = None


def _init_worker(modules: tuple[str, ...], sys_path: list[str], objects: Any) -> None:
    global _worker_graph, _worker_blobs
    for entry in reversed(sys_path):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    from headrace.objects.blobs import open_blob_store
    from headrace.objects.opening import open_objects
    from headrace.orchestration import capture
    from headrace.workspace.project import load_specs

    specs: list[AssetSpec] = []
    for module in modules:
        specs.extend(load_specs(module))
    _worker_graph = AssetGraph.build(list({id(s): s for s in specs}.values()))
    # The same durability and key as the parent (the key from the inherited environment).
    _worker_blobs = open_blob_store(objects) if isinstance(objects, str) else open_objects(objects)
    capture.install()


def _run_in_worker(task: StepTask) -> StepResult:
    assert _worker_graph is not None
    result = execute_step(task, _worker_graph[task.asset], _worker_blobs)
    if result.exception is not None:
        try:
            pickle.loads(pickle.dumps(result.exception))
        except Exception:  # an exception that cannot cross the process boundary
            result.exception = None
    return result


class ProcessExecutor:
    """Runs steps in ``max_concurrency`` worker processes (for CPU-bound assets).

    Workers are started with ``spawn`` and import the project's modules themselves, so
    assets must live in an importable module (not ``__main__``).
    """

    def __init__(
        self, graph: AssetGraph, modules: tuple[str, ...], objects: Any, max_concurrency: int
    ) -> None:
        bad = sorted({s.module for s in graph.specs.values() if s.module in ("__main__", "")})
        if bad or not modules:
            raise ExecutorError(
                "the processes executor needs assets defined in an importable module, not "
                "in __main__ or a notebook; use executor='threads' or move them into a module"
            )
        self.concurrency = max_concurrency
        self._args = (modules, list(sys.path), objects)
        self._pool = self._start()

    def _start(self) -> ProcessPoolExecutor:
        import multiprocessing  # on use: most runs never start a worker process
        from concurrent.futures import ProcessPoolExecutor

        return ProcessPoolExecutor(
            self.concurrency,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=self._args,
        )

    def submit(self, task: StepTask) -> Future[StepResult]:
        from concurrent.futures.process import BrokenProcessPool

        try:
            return self._pool.submit(_run_in_worker, task)
        except BrokenProcessPool:
            # A worker died (killed, out of memory): start a fresh pool for what follows.
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = self._start()
            return self._pool.submit(_run_in_worker, task)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def make_executor(
    name: str,
    *,
    graph: AssetGraph,
    blobs: Any,
    modules: tuple[str, ...],
    objects: Any,
    max_concurrency: int,
) -> InProcessExecutor | ThreadExecutor | ProcessExecutor:
    if name == "in_process":
        return InProcessExecutor(graph, blobs)
    if name == "threads":
        return ThreadExecutor(graph, blobs, max_concurrency)
    if name == "processes":
        return ProcessExecutor(graph, modules, objects, max_concurrency)
    raise ExecutorError(f"unknown executor {name!r}; expected one of {', '.join(EXECUTORS)}")

"""Micro-batching: concurrent requests scored together in one call of the model.

Requests that arrive while the model is busy, or within ``max_wait`` of the first one,
are concatenated (up to ``max_rows`` rows) and predicted in one call on a worker thread;
each request gets back its own slice. The wait is adaptive: the server counts the
requests it is handling (:meth:`MicroBatcher.handling`), and a batch holding all of them
goes at once, so a lone request (concurrency 1) never waits. A batch whose prediction
raises is retried one request at a time, so one bad request fails alone.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any


@dataclass
class _Item:
    served: Any
    table: Any
    future: asyncio.Future[list[Any]]


class MicroBatcher:
    """``predict(served, table)`` scores a batch (raising what the request should get)."""

    def __init__(self, predict: Callable[[Any, Any], list[Any]], max_rows: int, max_wait: float):
        self._predict = predict
        self.max_rows = max_rows
        self.max_wait = max_wait
        self._queue: asyncio.Queue[_Item] | None = None
        self._task: asyncio.Task[None] | None = None
        self.batches = 0
        self.largest = 0
        self.active = 0  # requests the server is handling (read on the event loop)

    @contextlib.contextmanager
    def handling(self) -> Iterator[None]:
        """Around the whole handling of a request, so the batcher knows who may join."""
        self.active += 1
        try:
            yield
        finally:
            self.active -= 1

    def start(self) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def submit(self, served: Any, table: Any) -> list[Any]:
        assert self._queue is not None, "the batcher is not started"
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Item(served, table, future))
        return await future

    async def _run(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            first = await self._queue.get()
            items, rows = [first], first.table.height
            deadline = loop.time() + self.max_wait
            while rows < self.max_rows:
                if len(items) >= self.active and self._queue.empty():
                    break  # every request being handled is in the batch: nobody to wait for
                timeout = deadline - loop.time()
                try:
                    item = (
                        self._queue.get_nowait()
                        if timeout <= 0
                        else await asyncio.wait_for(self._queue.get(), timeout)
                    )
                except (asyncio.QueueEmpty, TimeoutError):
                    break
                items.append(item)
                rows += item.table.height
            # one model version per call: a hot swap may split a batch in two
            groups: dict[int, list[_Item]] = {}
            for item in items:
                groups.setdefault(id(item.served), []).append(item)
            for group in groups.values():
                if len(items) == 1 and self.active <= 1:
                    self._score(group)  # a lone request: no one to keep the loop free for
                else:
                    await loop.run_in_executor(None, self._score, group)

    def _score(self, group: list[_Item]) -> None:
        from headrace.serving.fastpath import stack

        self.batches += 1
        self.largest = max(self.largest, len(group))
        try:
            outputs = self._predict(group[0].served, stack([i.table for i in group]))
        except Exception as exc:
            if len(group) > 1:
                for item in group:
                    self._score([item])
                return
            raise_in(group[0], exc)
            return
        offset = 0
        for item in group:
            size = item.table.height
            done(item, outputs[offset : offset + size])
            offset += size


def done(item: _Item, value: list[Any]) -> None:
    loop = item.future.get_loop()
    loop.call_soon_threadsafe(_set, item.future, value, None)


def raise_in(item: _Item, error: BaseException) -> None:
    loop = item.future.get_loop()
    loop.call_soon_threadsafe(_set, item.future, None, error)


def _set(future: asyncio.Future[list[Any]], value: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(value)

"""Workers: take runs from the durable queue and execute them, holding a lease they
renew by heartbeat. A run that comes back to the queue because its worker died is
resumed from its completed steps.

A serving worker rides out its metadata store going away: it says so once in its log
(and its health file), tries again with backoff, and carries on when the store is back.
A run in flight keeps going while what it records waits for the store; one the outage
stopped goes back to the queue as soon as the store answers again and is resumed from
its completed steps; one that finished meanwhile is recorded as finished once the store
is back. Nothing is left running.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from headrace.core.automation import Automation, Pipeline
from headrace.store.automation import QueuedRun, QueueLimits
from headrace.store.availability import Availability
from headrace.store.failures import is_unreachable

if TYPE_CHECKING:
    from headrace.runtime.workspace import Workspace
    from headrace.scheduling.health import HealthFile

log = logging.getLogger("headrace.scheduling")

#: how long a claimed run is held without a heartbeat before it counts as lost
DEFAULT_LEASE = 30.0


def worker_name() -> str:
    """``host:pid:random``, unique per worker."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def queue_limits(automation: Automation) -> QueueLimits:
    return QueueLimits(
        total=automation.limits.total,
        pipelines={
            p.name: p.max_concurrent
            for p in automation.pipelines.values()
            if p.max_concurrent is not None
        },
        tags=dict(automation.limits.tags),
    )


class _Heartbeat:
    """Renews a claimed run's lease every third of it until stopped."""

    def __init__(
        self, ws: Workspace, item: QueuedRun, worker: str, lease: float, availability: Availability
    ) -> None:
        self.ws, self.item, self.worker, self.lease = ws, item, worker, lease
        self.availability = availability
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="headrace-heartbeat", daemon=True)

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        every = self.lease / 3
        wait = every
        while not self._stop.wait(wait):
            wait = every
            try:
                if not self.ws.store.queue.heartbeat(self.item.id, self.worker, lease=self.lease):
                    self.lost = True
                    log.warning(
                        "worker %s lost its lease on queued run %s", self.worker, self.item.id
                    )
                    return
                self.availability.back()
            except Exception as exc:  # the next beat tries again, sooner if the store is away
                if is_unreachable(exc):
                    wait = min(every, self.availability.lost(exc))
                else:
                    log.exception("heartbeat of queued run %s failed", self.item.id)


class Worker:
    """Takes runs from the queue of ``ws`` and executes them, one at a time."""

    def __init__(
        self,
        ws: Workspace,
        automation: Automation,
        *,
        name: str | None = None,
        lease: float = DEFAULT_LEASE,
    ) -> None:
        self.ws = ws
        self.automation = automation
        self.name = name or worker_name()
        self.lease = lease
        self.limits = queue_limits(automation)
        #: the run id this worker's last claim offered
        self._fresh: str | None = None
        self.availability = Availability(f"worker {self.name}", logger=log)
        #: set while serving: store calls after a run wait out an outage until it is set
        self._stop: threading.Event | None = None

    def claim(self) -> QueuedRun | None:
        """Take the next run that may start, giving it the id its pipeline run will
        have (a run a dead worker had keeps its own); None when nothing can start."""
        from headrace.core.ids import new_id

        self._fresh = new_id()
        return self.ws.store.queue.claim(
            self.name, lease=self.lease, limits=self.limits, run_id=self._fresh
        )

    def run_one(self) -> QueuedRun | None:
        """Claim and execute the next run that may start; what it was, or None."""
        item = self.claim()
        if item is None:
            return None
        self.execute(item)
        return item

    def drain(self, *, stop: threading.Event | None = None) -> int:
        """Execute runs until none can start; how many ran."""
        done = 0
        while (stop is None or not stop.is_set()) and self.run_one() is not None:
            done += 1
        return done

    def serve(
        self,
        stop: threading.Event,
        *,
        poll: float = 0.2,
        until: Callable[[], bool] | None = None,
        health: HealthFile | None = None,
    ) -> None:
        """Execute runs until ``stop`` is set (or ``until()`` says so, asked between
        runs), polling the queue when it is empty. A store outage is waited out with
        backoff; ``health`` (a health file) is told how the store is."""
        self._stop = stop
        try:
            while not stop.is_set() and not (until is not None and until()):
                try:
                    taken = self.run_one()
                except Exception as exc:
                    if is_unreachable(exc):
                        stop.wait(self.availability.lost(exc))
                    else:  # never die quietly: say what broke, wait, try again
                        log.exception("worker %s: taking a run failed", self.name)
                        stop.wait(min(5.0, poll * 10))
                else:
                    self.availability.back()
                    if taken is None:
                        stop.wait(poll)
                if health is not None:
                    health.update()
        finally:
            self._stop = None

    def execute(self, item: QueuedRun) -> str:
        """Run a claimed queue row to its end; its final status."""
        from headrace.runtime.identity import acting_as

        pipeline = self.automation.pipelines.get(item.pipeline)
        fresh = item.run_id is not None and item.run_id == self._fresh
        status, error, result = "failed", None, None
        outage: Exception | None = None
        # a run someone started through the server acts as them; the rest as the daemon
        actor = str(item.details.get("actor") or f"daemon:{item.trigger}")
        beat = _Heartbeat(self.ws, item, self.name, self.lease, self.availability)
        with beat, acting_as(actor):
            try:
                if item.kind == "monitor":
                    from headrace.monitoring.runner import run_monitors

                    run_monitors(self.ws, [item.selection or ""])
                    status = "success"
                else:
                    result = self._run_assets(item, fresh=fresh)
                    status = "success" if result.success else "failed"
                    if not result.success:
                        error = _first_error(result)
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                if self._stop is not None and is_unreachable(exc):
                    outage = exc  # not the run's fault: it goes again once the store is back
                else:
                    log.warning("queued run %s (%s) failed: %s", item.id, item.pipeline, error)
        if outage is not None:
            return self._after_outage(item, outage)
        if (
            result is not None
            and not result.success
            and _lost_a_race(result)
            and item.attempts < item.max_attempts
            and self._call(
                lambda: self.ws.store.queue.release(
                    item.id,
                    self.name,
                    why=f"{error}; its run is resumed, building on the other run's version",
                )
            )
        ):
            # two runs wrote the same head at once and this one lost: nothing was wrong
            # with it, so it goes again at once (an attempt), resumed from its steps
            log.info("queued run %s (%s) lost a branch race; queued again", item.id, item.pipeline)
            return "requeued"
        run_id = item.run_id
        made_run = result is not None or (
            run_id is not None and self._call(lambda: self.ws.store.runs.exists(run_id))
        )
        # it failed before its run was made (a bad selection, say): the id this claim
        # offered is forgotten; one given at enqueue (the server told its caller) stays
        forget = fresh and not made_run
        if not self._call(
            lambda: self.ws.store.queue.finish(
                item.id, self.name, status, error, made_run=not forget
            )
        ):
            log.warning("queued run %s ended after its lease was lost", item.id)
        if status != "success":
            reported = replace(item, run_id=item.run_id if made_run else None)
            # notifications are deduplicated by key, so a report the outage cut short
            # is simply made again
            self._call(lambda: self._report(reported, pipeline, result, error))
        return status

    def _call(self, fn: Callable[[], Any]) -> Any:
        """``fn()``; while serving, an outage is waited out (with backoff) first."""
        if self._stop is None:
            return fn()
        return self.availability.call(fn, self._stop)

    def _after_outage(self, item: QueuedRun, exc: Exception) -> str:
        """The store went away under a run: once it is back, put the run back in the
        queue (resumed from its completed steps by whichever worker takes it)."""
        self.availability.lost(exc)
        why = (
            f"the metadata store became unreachable mid-run ({type(exc).__name__}); "
            "its run is resumed from its completed steps"
        )
        assert self._stop is not None
        released = self.availability.call(
            lambda: self.ws.store.queue.release(item.id, self.name, why=why), self._stop
        )
        if released:
            log.warning(
                "queued run %s (%s) was interrupted by the store outage; queued again to resume",
                item.id,
                item.pipeline,
            )
        else:  # its lease ran out and the reaper queued it again already
            log.warning("queued run %s was interrupted and requeued by the reaper", item.id)
        return "requeued"

    def _run_assets(self, item: QueuedRun, *, fresh: bool) -> Any:
        from headrace.orchestration.runner import RunResult
        from headrace.orchestration.service import default_observers, materialize, resume
        from headrace.store.errors import RunNotFoundError

        observers = default_observers(self.ws)
        previous = None
        if item.run_id is not None and not fresh:  # a worker that died had it
            with contextlib.suppress(RunNotFoundError):  # it died before making the run
                previous = self.ws.store.runs.get(item.run_id)
        if previous is not None:  # finish that run, keeping its completed steps
            if previous.status == "success":  # it died just after the run ended
                return RunResult(run_id=previous.id, status="success")
            if previous.status == "running":  # the dead worker never closed it
                self.ws.store.runs.set_status(
                    previous.id,
                    "failed",
                    ended_at=time.time(),
                    error="its worker stopped heartbeating; resumed by another",
                )
            return resume(self.ws, previous.id, observers=observers)
        return materialize(
            self.ws,
            item.selection,
            params=item.params,
            partitions=item.partitions,
            branch=item.branch,
            exclude=item.exclude,
            trigger=item.trigger[:32],
            observers=observers,
            run_id=item.run_id,
            force=bool(item.details.get("force", False)),
            missing_only=bool(item.details.get("missing_only", False)),
        )

    def _report(
        self, item: QueuedRun, pipeline: Pipeline | None, result: Any, error: str | None
    ) -> None:
        from headrace.scheduling.notify import notify

        run_id = getattr(result, "run_id", None) or item.run_id
        failed = []
        exhausted = []
        if result is not None:
            for key, state in result.steps.items():
                if state.status == "failed":
                    failed.append((key, state.error))
                    if state.attempts > 1:
                        exhausted.append((key, state.attempts))
        step, step_error = failed[0] if failed else (None, error)
        inspect = f"headrace runs show {run_id}" if run_id else f"headrace queue show {item.id}"
        payload = {
            "pipeline": item.pipeline,
            "trigger": item.trigger,
            "queue_id": item.id,
            "run_id": run_id,
            "step": step,
            "error": step_error or error,
            "failed_steps": [k for k, _ in failed],
            "inspect": inspect,
            "message": (
                f"pipeline {item.pipeline} ({item.trigger}) failed"
                + (f" at {step}" if step else "")
                + f": {step_error or error or 'see the run'}\ninspect: {inspect}"
            ),
        }
        notify(
            self.ws,
            self.automation,
            "run_failed",
            f"run of {item.pipeline} failed" + (f" at {step}" if step else ""),
            payload,
            pipeline=pipeline,
            dedupe_key=f"run_failed:{item.id}:{item.attempts}",
        )
        if exhausted:
            notify(
                self.ws,
                self.automation,
                "retries_exhausted",
                f"{exhausted[0][0]} failed after {exhausted[0][1]} attempts",
                {**payload, "attempts": dict(exhausted)},
                pipeline=pipeline,
                dedupe_key=f"retries_exhausted:{item.id}:{item.attempts}",
            )
        if run_id is not None:
            held = [
                q
                for q in self.ws.store.quality.quarantined(status=None, limit=1000)
                if q.run_id == run_id
            ]
            for q in held:
                notify(
                    self.ws,
                    self.automation,
                    "check_failed",
                    f"checks failed on {q.asset}: version {q.version_id[:16]} quarantined",
                    {
                        **payload,
                        "asset": q.asset,
                        "version": q.version_id,
                        "reason": q.reason,
                        "inspect": f"headrace quarantine show {q.version_id}",
                        "message": f"{q.asset} version {q.version_id[:16]} was quarantined "
                        f"on {q.branch}: {q.reason}",
                    },
                    pipeline=pipeline,
                    dedupe_key=f"check_failed:{q.version_id}",
                )


def _lost_a_race(result: Any) -> bool:
    """Whether every failed step of a run failed only because a concurrent run moved
    its branch head first."""
    from headrace.store.runs import CONFLICT

    failed = [s for s in result.steps.values() if s.status == "failed"]
    return bool(failed) and all((s.error or "").startswith(CONFLICT) for s in failed)


def _first_error(result: Any) -> str | None:
    for key, state in result.steps.items():
        if state.status == "failed":
            return f"{key}: {state.error}"
    return None


def process_main(root: str, lease: float, poll: float) -> None:
    """A worker process (``headrace daemon --workers N`` spawns these): serve the queue
    of the workspace at ``root`` until SIGTERM."""
    import signal

    from headrace.runtime.logs import log_to_stderr
    from headrace.runtime.workspace import open_workspace
    from headrace.scheduling.definitions import load_automation
    from headrace.scheduling.health import HealthFile

    log_to_stderr()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with open_workspace(root) as ws:  # the store opens at first use, inside serve
        worker = Worker(ws, load_automation(ws, check_paths=False), lease=lease)
        health = HealthFile(ws.settings.state_dir, "worker", worker.availability)
        try:
            worker.serve(stop, poll=poll, health=health)
        finally:
            health.remove()


def reap(ws: Workspace, automation: Automation, *, now: float | None = None) -> list[str]:
    """Put runs whose worker died back in the queue (or fail them, their attempts
    spent, and notify); what happened, one line each."""
    from headrace.scheduling.notify import notify

    lines = []
    for lost in ws.store.queue.reap(now=now):
        item = lost.item
        if lost.requeued:
            lines.append(
                f"queued run {item.id[:12]} ({item.pipeline}): worker {item.worker} lost; "
                f"queued again (attempt {item.attempts + 1} of {item.max_attempts})"
            )
            continue
        lines.append(
            f"queued run {item.id[:12]} ({item.pipeline}): worker {item.worker} lost; "
            f"all {item.max_attempts} attempts spent, failed"
        )
        inspect = f"headrace runs show {item.run_id}" if item.run_id else "headrace queue"
        notify(
            ws,
            automation,
            "retries_exhausted",
            f"run of {item.pipeline} lost its worker {item.max_attempts} times",
            {
                "pipeline": item.pipeline,
                "trigger": item.trigger,
                "queue_id": item.id,
                "run_id": item.run_id,
                "error": f"worker {item.worker} stopped heartbeating; attempts spent",
                "inspect": inspect,
                "message": f"pipeline {item.pipeline} ({item.trigger}): its worker died "
                f"{item.max_attempts} times\ninspect: {inspect}",
            },
            pipeline=automation.pipelines.get(item.pipeline),
            dedupe_key=f"retries_exhausted:{item.id}",
        )
    return lines

"""``headrace daemon``: evaluate schedules, sensors and freshness policies, keep the run
queue healthy (runs of dead workers back in the queue), deliver notifications, and run
worker processes that execute the queue.

``run_once`` does all of it once and drains the queue in this process: for cron-style
deployment, tests and the demo. It repeats evaluate-then-run until nothing new is
queued (at most ``rounds`` times), so a monitor run that raises an alert starts the
retraining its alert sensor asks for within the same call.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from headrace.orchestration.service import fail_lost_runs
from headrace.scheduling.definitions import load_automation
from headrace.scheduling.evaluate import Evaluation, evaluate
from headrace.scheduling.notify import deliver_due
from headrace.scheduling.worker import DEFAULT_LEASE, Worker, process_main, reap
from headrace.store.availability import Availability
from headrace.store.failures import is_unreachable

if TYPE_CHECKING:
    from headrace.core.automation import Automation
    from headrace.runtime.workspace import Workspace

log = logging.getLogger("headrace.scheduling")


@dataclass
class OnceReport:
    """What ``daemon --once`` did."""

    evaluation: Evaluation = field(default_factory=Evaluation)
    ran: list[tuple[str, str, str]] = field(default_factory=list)  # (id, pipeline, status)
    lost: list[str] = field(default_factory=list)
    sent: int = 0
    failing: int = 0


def run_once(
    ws: Workspace,
    *,
    now: float | None = None,
    run: bool = True,
    rounds: int = 10,
    on_run: Any = None,
) -> OnceReport:
    """Evaluate everything once as of ``now`` and (with ``run``) execute what it queued
    in this process, repeating while runs queue more; then send due notifications."""
    automation = load_automation(ws)
    report = OnceReport()
    worker = Worker(ws, automation, name=f"once:{id(report):x}")
    for _ in range(max(1, rounds)):
        report.lost += fail_lost_runs(ws)  # real time, whatever ``now`` the schedules use
        report.lost += reap(ws, automation)
        evaluation = evaluate(ws, automation, now=now)
        report.evaluation.merge(evaluation)
        ran = 0
        while run:
            item = worker.claim()
            if item is None:
                break
            if on_run is not None:
                on_run(item)
            status = worker.execute(item)
            report.ran.append((item.id, item.pipeline, status))
            ran += 1
        if not evaluation.enqueued and not ran:
            break
    report.sent, report.failing = deliver_due(ws)
    return report


#: Seconds between looks at the project's files for changed definitions.
RELOAD_EVERY = 2.0
#: After the store comes back, nothing is declared lost for this long (or one lease,
#: if longer): workers whose heartbeats failed during the outage beat again first.
GRACE = 15.0


class _Unreachable(Exception):
    """The store went away during a step: the rest of the step waits for it."""


class Daemon:
    """The long-running daemon: evaluates every ``tick`` seconds (each sensor at its own
    interval, freshness every minute), reaps lost runs, sends notifications, and keeps
    ``workers`` worker processes running (restarting one that dies).

    It outlives its metadata store going away: a step that finds the store unreachable
    stops there, the daemon says so (log, health file) and tries again with backoff;
    its workers, which ride out the outage themselves, keep running. Any other error of
    a part of a step is logged and the other parts still run.
    """

    def __init__(
        self,
        ws: Workspace,
        *,
        workers: int = 1,
        lease: float = DEFAULT_LEASE,
        tick: float = 1.0,
        poll: float = 0.2,
        automation: Automation | None = None,
        reload: bool = True,
    ) -> None:
        self.ws = ws
        self.automation = automation if automation is not None else load_automation(ws)
        self.workers = workers
        self.lease = lease
        self.tick = tick
        self.poll = poll
        #: watch the project's files and load changed definitions (``--no-reload``: not)
        self.reload = reload
        #: why the newest definitions did not load (the last good ones are in use)
        self.reload_error: str | None = None
        self.reloads = 0
        self._processes: list[Any] = []
        self._retiring: list[Any] = []
        self._next: dict[str, float] = {}
        self.availability = Availability("daemon", logger=log)
        #: nothing is declared lost before this time (monotonic): after an outage
        self._lost_after = 0.0
        #: seconds until the next step when the store is unreachable (else None)
        self.retry_in: float | None = None

    def serve(self, stop: threading.Event, *, parent: int | None = None) -> None:
        """Run until ``stop`` is set (or, with ``parent``, until that process is gone:
        a daemon started beside ``headrace server`` ends with it)."""
        import os

        from headrace.scheduling.health import HealthFile
        from headrace.scheduling.reload import ProjectWatch

        context = multiprocessing.get_context("spawn")
        watch = ProjectWatch(self.ws, every=RELOAD_EVERY) if self.reload else None
        health = HealthFile(self.ws.settings.state_dir, "daemon", self.availability)
        try:
            while not stop.is_set():
                if parent is not None and os.getppid() != parent:
                    log.warning("the process that started the daemon is gone; stopping")
                    break
                if watch is not None and watch.changed():
                    self.load_changed()
                self._supervise(context)
                self.step()
                health.update(workers=[p.pid for p in self._processes])
                stop.wait(self.tick if self.retry_in is None else self.retry_in)
        finally:
            self._stop_workers()
            health.remove()

    def load_changed(self) -> bool:
        """Load the project's definitions afresh (its files changed): schedules,
        sensors, pipelines and monitors as they now are, and new worker processes (the
        old ones finish the run in hand, then exit). If they do not load, keep the last
        good ones and say why; whether they were loaded."""
        from headrace.scheduling.reload import reload_project

        try:
            automation = reload_project(self.ws, lambda: load_automation(self.ws))
        except Exception as exc:
            self.reload_error = f"{type(exc).__name__}: {exc}"
            log.error(
                "the project's definitions changed but do not load; the last good ones "
                "stay in use: %s",
                self.reload_error,
            )
            return False
        self.automation = automation
        self.reload_error = None
        self.reloads += 1
        self._next = {}
        for process in self._processes:  # SIGTERM: they stop taking runs
            process.terminate()
        self._retiring += self._processes
        self._processes = []
        log.warning(
            "definitions reloaded: %d schedules, %d sensors, %d freshness policies",
            len(automation.schedules),
            len(automation.sensors),
            len(automation.freshness),
        )
        return True

    def step(self, now: float | None = None) -> Evaluation:
        """One pass: what is due is evaluated, lost runs are reaped, notifications sent."""
        at = time.time() if now is None else now
        due = [s.name for s in self.automation.schedules.values()]
        for sensor in self.automation.sensors.values():
            if self._next.get(sensor.name, 0.0) <= at:
                due.append(sensor.name)
                self._next[sensor.name] = at + sensor.interval
        if self._next.get("freshness", 0.0) <= at:
            due.append("freshness")
            self._next["freshness"] = at + 60.0
        evaluation = Evaluation()
        self.retry_in = None
        try:
            if not self.availability.reachable:  # is it back? (not every part asks it)
                # (a lambda: the store itself may not be open yet, if it was down at start)
                self._part("asking the metadata store", lambda: self.ws.store.ping())
                self.availability.back()
                # leases ran out while nobody could renew them: let them beat again
                self._lost_after = time.monotonic() + max(GRACE, self.lease)
            if time.monotonic() >= self._lost_after:
                lines = self._part("finding lost runs", lambda: fail_lost_runs(self.ws)) or []
                lines += (
                    self._part(
                        "reaping runs of lost workers",
                        lambda: reap(self.ws, self.automation, now=at),
                    )
                    or []
                )
                for line in lines:
                    log.warning("%s", line)
            done = self._part(
                "evaluating", lambda: evaluate(self.ws, self.automation, now=at, only=due)
            )
            if done is not None:
                evaluation = done
                for line in evaluation.skipped:
                    log.info("%s", line)
            self._part("sending notifications", lambda: deliver_due(self.ws))
            self._checkpoint(at)
        except _Unreachable:
            pass  # the rest of the step waits for the store
        return evaluation

    def _checkpoint(self, at: float) -> None:
        """Every ``[audit] checkpoint_every``, anchor the audit log's head in the object
        store if entries were appended since the newest checkpoint. A failure is a
        warning (the next interval tries again), never the daemon's end."""
        every = self.ws.settings.audit_checkpoint_every
        if not every or self._next.get("audit", 0.0) > at:
            return
        self._next["audit"] = at + every
        from headrace.runtime.audit import checkpoint_if_new

        try:
            point = checkpoint_if_new(self.ws)
        except Exception as exc:
            if is_unreachable(exc):
                self._next["audit"] = 0.0  # the next step after the outage tries again
                self.retry_in = self.availability.lost(exc)
                raise _Unreachable from exc
            log.warning("the audit checkpoint failed: %s: %s", type(exc).__name__, exc)
            return
        if point is not None:
            log.info("audit checkpoint of entry %d signed with key %s", point.seq, point.key_id)

    def _part(self, what: str, fn: Any) -> Any:
        """``fn()`` as one part of a step: a store outage stops the step (and says how
        long to wait); any other error is logged and the next part still runs."""
        try:
            return fn()
        except Exception as exc:
            if is_unreachable(exc):
                self.retry_in = self.availability.lost(exc)
                raise _Unreachable from exc
            log.exception("%s failed", what)
            return None

    def _supervise(self, context: Any) -> None:
        self._retiring = [p for p in self._retiring if p.is_alive()]
        alive = []
        for process in self._processes:
            if process.is_alive():
                alive.append(process)
            else:
                log.warning(
                    "worker process %s exited (%s); starting another", process.pid, process.exitcode
                )
        self._processes = alive
        root = str(self.ws.settings.root)
        while len(self._processes) < self.workers:
            process = context.Process(
                target=process_main, args=(root, self.lease, self.poll), daemon=True
            )
            process.start()
            self._processes.append(process)

    def _stop_workers(self) -> None:
        every = self._processes + self._retiring
        for process in every:
            process.terminate()
        for process in every:
            process.join(timeout=60)
            if process.is_alive():
                process.kill()
        self._processes, self._retiring = [], []

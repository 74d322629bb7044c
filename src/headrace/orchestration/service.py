"""The orchestration service: materialize a selection, backfill, resume, read values."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from headrace.core.errors import PartitionError, SelectionError
from headrace.core.ids import new_id
from headrace.core.observers import RunObserver
from headrace.core.params import jsonable, resolve_params
from headrace.core.partitions import parse_partition_arg
from headrace.core.plan import Plan, Step, build_plan
from headrace.core.selection import select
from headrace.orchestration import capture
from headrace.orchestration.errors import ExecutorError, RunNotResumableError
from headrace.orchestration.executors import EXECUTORS
from headrace.orchestration.reporting import Reporter
from headrace.orchestration.runner import Coordinator, RunResult
from headrace.runtime.workspace import Workspace
from headrace.store.records import RunRecord, VersionRecord


def _expand_partitions(
    ws: Workspace, names: Sequence[str], partitions: str | Sequence[str] | None
) -> list[str] | None:
    """Partition keys from ``2013-01``, ``2013-01..2013-03`` or a list of keys."""
    if partitions is None:
        return None
    items = [partitions] if isinstance(partitions, str) else list(partitions)
    definitions = [p for n in names if (p := ws.graph[n].partitions) is not None]
    if not definitions:
        raise PartitionError("partitions were given but no selected asset is partitioned")
    keys: list[str] = []
    for item in items:
        first, last = parse_partition_arg(item)
        if last is None:
            keys.append(first)
            continue
        expanded: list[str] | None = None
        errors: list[str] = []
        for definition in definitions:
            try:
                expanded = definition.key_range(first, last)
                break
            except PartitionError as exc:
                errors.append(str(exc))
        if expanded is None:
            raise PartitionError(errors[0])
        keys.extend(expanded)
    return list(dict.fromkeys(keys))


def _only_missing(plan: Plan, ws: Workspace, branch: str) -> Plan:
    heads = ws.store.versions.heads(
        branch, keys={(s.asset, s.partition) for s in plan.steps.values()}
    )
    keep = {k for k, s in plan.steps.items() if (s.asset, s.partition) not in heads}
    return Plan(
        steps={
            k: Step(
                key=s.key,
                asset=s.asset,
                partition=s.partition,
                deps=tuple(d for d in s.deps if d in keep),
            )
            for k, s in plan.steps.items()
            if k in keep
        }
    )


def materialize(
    ws: Workspace,
    selection: str | Sequence[str] | None = None,
    *,
    params: Mapping[str, Any] | None = None,
    partitions: str | Sequence[str] | None = None,
    branch: str = "main",
    executor: str | None = None,
    max_concurrency: int | None = None,
    force: bool = False,
    missing_only: bool = False,
    exclude: str | None = None,
    trigger: str = "python",
    reporter: Reporter | None = None,
    observers: Sequence[RunObserver] | None = None,
    run_id: str | None = None,
) -> RunResult:
    """Plan and run a selection of assets; see :func:`headrace.materialize`.

    ``run_id``: the id to give the run (the run queue assigns it), else a new one.
    """
    planned = plan_run(
        ws,
        selection,
        params=params,
        partitions=partitions,
        branch=branch,
        executor=executor,
        max_concurrency=max_concurrency,
        missing_only=missing_only,
        exclude=exclude,
    )
    now = time.time()
    run = RunRecord(
        id=run_id or new_id(),
        status="running",
        selection=planned.expression,
        params=jsonable(dict(params or {})),
        partitions=planned.partitions,
        branch=branch,
        trigger=trigger,
        executor=planned.executor,
        max_concurrency=planned.concurrency,
        force=force,
        host=socket.gethostname(),
        pid=os.getpid(),
        plan=planned.plan.to_json(),
        created_at=now,
        started_at=now,
        heartbeat_at=now,
    )
    plan = planned.plan
    ws.store.runs.create(run, [(s.key, s.asset, s.partition) for s in plan.steps.values()])
    with capture.installed():
        return Coordinator(
            ws,
            run,
            plan,
            planned.asset_params,
            reporter=reporter,
            observers=default_observers(ws) if observers is None else observers,
        ).execute()


@dataclass(frozen=True)
class PlannedRun:
    """What a run will do, checked: its selection, params, partitions and plan."""

    expression: str
    asset_params: dict[str, dict[str, Any]]
    partitions: list[str] | None
    plan: Plan
    executor: str
    concurrency: int


def plan_run(
    ws: Workspace,
    selection: str | Sequence[str] | None = None,
    *,
    params: Mapping[str, Any] | None = None,
    partitions: str | Sequence[str] | None = None,
    branch: str = "main",
    executor: str | None = None,
    max_concurrency: int | None = None,
    missing_only: bool = False,
    exclude: str | None = None,
) -> PlannedRun:
    """Check and plan a run without starting it: the same errors as
    :func:`materialize` (an unknown branch, selection, param or partition, a bad
    executor), so a run that is queued (``POST /runs``) is refused at once, not later
    by a worker."""
    expression = (
        selection if selection is None or isinstance(selection, str) else " ".join(selection)
    )
    if not ws.store.branches.exists(branch):
        from headrace.store.errors import BranchNotFoundError

        raise BranchNotFoundError(branch)
    names = select(ws.graph, expression, exclude=exclude)
    if not names:
        raise SelectionError(f"selection {expression!r} matches no asset")
    asset_params = resolve_params([ws.graph[n] for n in names], params or {})
    keys = _expand_partitions(ws, names, partitions)
    plan = build_plan(ws.graph, names, keys)
    if missing_only:
        plan = _only_missing(plan, ws, branch)
    executor_name = executor or ws.settings.executor
    if executor_name not in EXECUTORS:
        raise ExecutorError(
            f"unknown executor {executor_name!r}; expected one of {', '.join(EXECUTORS)}"
        )
    concurrency = max_concurrency or ws.settings.max_concurrency
    if concurrency < 1:
        raise ExecutorError(f"max_concurrency must be >= 1, got {concurrency}")
    return PlannedRun(
        expression=expression or "*",
        asset_params=asset_params,
        partitions=keys,
        plan=plan,
        executor=executor_name,
        concurrency=concurrency,
    )


def _alive(run: RunRecord) -> bool:
    if run.pid is None or run.host != socket.gethostname() or run.pid == os.getpid():
        return False
    try:
        os.kill(run.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


#: A pipeline run whose process has not written its heartbeat for this long (six
#: beats) lost its process.
LOST_AFTER = 60.0


def fail_lost_runs(
    ws: Workspace, *, now: float | None = None, quiet: float = LOST_AFTER
) -> list[str]:
    """Fail the pipeline runs left ``running`` by a process that died (killed, its
    machine lost) outside the run queue: no heartbeat for ``quiet`` seconds, and not
    a live process on this host. They can be resumed. What was failed, a line each."""
    import datetime as dt

    at = time.time() if now is None else now
    lines = []
    for run in ws.store.runs.unfinished(quiet_since=at - quiet):
        if _alive(run) or (run.host == socket.gethostname() and run.pid == os.getpid()):
            continue  # a live process here that did not beat (an older headrace, say)
        heard = run.heartbeat_at or run.started_at or run.created_at
        since = dt.datetime.fromtimestamp(heard, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        error = (
            f"its process ({run.host}, pid {run.pid}) stopped: no heartbeat since {since}; "
            f"headrace runs resume {run.id} finishes it"
        )
        if ws.store.runs.fail_if_quiet(run.id, quiet_since=at - quiet, error=error):
            lines.append(f"run {run.id[:12]} ({run.selection}): {error}")
    return lines


def default_observers(ws: Workspace) -> list[RunObserver]:
    """The observers the workspace's settings ask for (OpenLineage, when configured)."""
    from headrace.lineage import emitter_from_settings

    emitter = emitter_from_settings(ws.settings)
    return [] if emitter is None else [emitter]


def resumable(ws: Workspace, run_id: str) -> tuple[RunRecord, Plan]:
    """The run ``run_id`` names and its plan, if it can be resumed; else why not
    (:class:`RunNotResumableError`, or the run is unknown)."""
    run = ws.store.runs.get(run_id)
    if run.status == "success":
        raise RunNotResumableError(f"run {run.id} already succeeded; nothing to resume")
    if run.status == "running" and _alive(run):
        raise RunNotResumableError(
            f"run {run.id} is still running in process {run.pid} on {run.host}"
        )
    plan = Plan.from_json(run.plan)
    missing = sorted({s.asset for s in plan.steps.values() if s.asset not in ws.graph})
    if missing:
        raise RunNotResumableError(
            f"run {run.id} cannot be resumed: assets {', '.join(missing)} are no longer defined"
        )
    return run, plan


def resume(
    ws: Workspace,
    run_id: str,
    *,
    reporter: Reporter | None = None,
    observers: Sequence[RunObserver] | None = None,
) -> RunResult:
    """Finish an interrupted or failed run without redoing its completed steps."""
    run, plan = resumable(ws, run_id)
    steps = ws.store.runs.steps(run.id)
    completed: dict[str, VersionRecord] = {}
    for record in steps:
        if record.status in ("success", "skipped") and record.version_id:
            completed[record.key] = ws.store.versions.get(record.version_id)
    asset_params = resolve_params(
        [ws.graph[a] for a in {s.asset for s in plan.steps.values()}], run.params
    )
    ws.store.runs.claim_for_resume(
        run.id, host=socket.gethostname(), pid=os.getpid(), started_at=time.time()
    )
    resumed = RunRecord(**{**run.__dict__, "status": "running"})
    with capture.installed():
        return Coordinator(
            ws,
            resumed,
            plan,
            asset_params,
            reporter=reporter,
            completed=completed,
            observers=default_observers(ws) if observers is None else observers,
        ).execute()


from headrace.data.versions import read  # noqa: E402  (re-exported)
from headrace.runtime.reading import read_version  # noqa: E402  (re-exported)

__all__ = ["materialize", "read", "read_version", "resume"]

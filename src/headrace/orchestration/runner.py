"""The coordinator: runs a plan's steps in dependency order and records each outcome.

Only the coordinator writes metadata. Each finished step is one transaction (version,
inputs, branch head, step status, logs), so a run killed at any moment leaves complete
versions only, and ``resume`` continues from the steps that finished.
"""

from __future__ import annotations

import heapq
import inspect
import logging
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from typing import Any

from headrace.core.assets import AssetSpec
from headrace.core.checks import Suite
from headrace.core.codeversion import code_version
from headrace.core.graph import closure
from headrace.core.ids import new_id
from headrace.core.observers import RunInfo, RunObserver, StepEvent, VersionRef
from headrace.core.params import jsonable
from headrace.core.plan import Plan, Step
from headrace.orchestration.caching import cache_key, why_run
from headrace.orchestration.errors import MissingInputError
from headrace.orchestration.executors import make_executor
from headrace.orchestration.recording import Recorder, StepState
from headrace.orchestration.reporting import NullReporter, Reporter
from headrace.orchestration.step import (
    CheckContext,
    InputRef,
    StepInput,
    StepResult,
    StepTask,
)
from headrace.orchestration.tracebacks import user_traceback
from headrace.runtime.identity import actor
from headrace.runtime.workspace import Workspace
from headrace.store.records import RunRecord, VersionRecord
from headrace.store.registry import NewModelVersion
from headrace.store.runs import NewVersion

DONE = frozenset({"success", "skipped"})


@dataclass
class RunResult:
    """What a run did; ``steps`` maps each step key to its final state."""

    run_id: str
    status: str
    steps: dict[str, StepState] = field(default_factory=dict)

    @property
    def success(self) -> bool:
        return self.status == "success"

    def by_status(self, status: str) -> list[str]:
        return [k for k, s in self.steps.items() if s.status == status]

    @property
    def failed(self) -> list[str]:
        return self.by_status("failed")

    @property
    def skipped(self) -> list[str]:
        return self.by_status("skipped")

    @property
    def materialized(self) -> list[str]:
        return self.by_status("success")


def _ref(version: VersionRecord) -> InputRef:
    return InputRef(
        version_id=version.id,
        blob=version.blob,
        format=version.format,
        flavor=version.flavor,
        partition=version.partition,
    )


def _result_of(future: Future[StepResult], task: StepTask) -> StepResult:
    """The step's result, or a failed one when the executor itself broke (a worker died)."""
    try:
        return future.result()
    except Exception as exc:
        now = time.time()
        where = f" partition {task.partition!r}" if task.partition else ""
        return StepResult(
            key=task.key,
            attempt=task.attempt,
            ok=False,
            started_at=now,
            ended_at=now,
            error_type=type(exc).__name__,
            error=f"asset {task.asset!r}{where} failed: its worker died ({type(exc).__name__}: "
            f"{exc})",
            retryable=True,
            exception=exc,
        )


class Coordinator:
    def __init__(
        self,
        workspace: Workspace,
        run: RunRecord,
        plan: Plan,
        asset_params: dict[str, dict[str, Any]],
        *,
        reporter: Reporter | None = None,
        completed: dict[str, VersionRecord] | None = None,
        observers: Sequence[RunObserver] = (),
    ) -> None:
        self.ws = workspace
        self.observers = list(observers)
        self.info = RunInfo(
            run_id=run.id,
            project=workspace.settings.project_name,
            selection=run.selection,
            branch=run.branch,
            params=dict(run.params),
            started_at=run.started_at or run.created_at,
        )
        self.graph = workspace.graph
        self.store = workspace.store
        self.run = run
        self.plan = plan
        self.asset_params = asset_params
        self.params_json = {a: jsonable(v) for a, v in asset_params.items()}
        self.reporter: Reporter = reporter or NullReporter()
        self.states = {key: StepState(key=key) for key in plan.steps}
        self.dependents: dict[str, list[str]] = {key: [] for key in plan.steps}
        for step in plan.steps.values():
            for dep in step.deps:
                self.dependents[dep].append(step.key)
        self.heads: dict[tuple[str, str | None], VersionRecord] = self._read_heads()
        #: per asset, the newest version any of its partitions has as head (read lazily)
        self._newest: dict[str, VersionRecord | None] = {}
        self.code_versions: dict[str, str] = {}
        self.recorder = Recorder(self.store.runs, run.id, run.branch, self.states, actor=actor())
        #: The head each new version replaces on the branch: what the run saw, then
        #: what it made itself.
        self._replaces: dict[tuple[str, str | None], str] = {
            key: version.id for key, version in self.heads.items()
        }
        for key, version in (completed or {}).items():
            state = self.states[key]
            state.status, state.version_id = "skipped", version.id
            state.reason = "completed before the run was resumed"
            self.heads[(version.asset, version.partition)] = version
        self._completed = set(completed or ())
        self._meta: dict[str, tuple[str, str]] = {}
        self._histories: dict[str, dict[str, list[float]]] = {}
        self._params: dict[str, tuple[str, str]] = {}

    def _read_heads(self) -> dict[tuple[str, str | None], VersionRecord]:
        """The heads the plan's steps write and read: only the partitions they touch, so
        one partition of an asset with thousands reads a row, not thousands; whole
        assets for what checks reference."""
        keys: set[tuple[str, str | None]] = set()
        whole: set[str] = set()
        for step in self.plan.steps.values():
            spec = self.graph[step.asset]
            keys.add((step.asset, step.partition))
            whole.update(spec.check_references)
            for item in spec.inputs:
                wanted = self.graph.upstream_partitions(spec, item, step.partition)
                if wanted is None:
                    keys.add((item.asset, None))
                else:
                    keys.update((item.asset, key) for key in wanted)
        heads = self.store.versions.heads(self.run.branch, keys=keys)
        if whole:
            heads.update(self.store.versions.heads(self.run.branch, whole))
        return heads

    # -- preparing a step -------------------------------------------------------------

    def _code_version(self, asset: str) -> str:
        found = self.code_versions.get(asset)
        if found is None:
            found = code_version(self.graph[asset], self.ws.project_modules)
            self.code_versions[asset] = found
        return found

    def _source_version(self, step: Step) -> str | None:
        """The fingerprint of outside data an asset declares, given what it names."""
        spec = self.graph[step.asset]
        if spec.source_version is None:
            return None
        wanted = inspect.signature(spec.source_version).parameters
        values: dict[str, Any] = dict(self.asset_params.get(step.asset, {}))
        values["partition"] = step.partition
        values["workspace_root"] = str(self.ws.settings.root)
        takes_all = any(p.kind is p.VAR_KEYWORD for p in wanted.values())
        kwargs = {k: v for k, v in values.items() if takes_all or k in wanted}
        return str(spec.source_version(**kwargs))

    def _inputs(self, step: Step) -> tuple[StepInput, ...]:
        spec = self.graph[step.asset]
        out: list[StepInput] = []
        for item in spec.inputs:
            wanted = self.graph.upstream_partitions(spec, item, step.partition)
            if wanted is None:
                head = self.heads.get((item.asset, None))
                if head is None:
                    if not item.optional:
                        raise MissingInputError(step.asset, item.asset, self.run.branch, None)
                    out.append(StepInput(item.parameter, None, False))
                else:
                    out.append(StepInput(item.parameter, (_ref(head),), False))
                continue
            many = spec.partitions is None or self.graph[item.asset].partitions != spec.partitions
            if not wanted:  # past the first partition
                out.append(StepInput(item.parameter, None, many))
                continue
            refs = []
            for key in wanted:
                head = self.heads.get((item.asset, key))
                if head is not None:
                    refs.append(_ref(head))
                elif not many:
                    raise MissingInputError(step.asset, item.asset, self.run.branch, key)
            if not refs and not item.optional:
                raise MissingInputError(step.asset, item.asset, self.run.branch, None)
            out.append(StepInput(item.parameter, tuple(refs) if refs else None, many))
        return tuple(out)

    # -- the loop ---------------------------------------------------------------------

    def execute(self) -> RunResult:
        ws = self.ws
        executor = make_executor(
            self.run.executor,
            graph=self.graph,
            blobs=ws.blobs,
            modules=ws.definition_modules,
            objects=ws.objects_config,
            max_concurrency=self.run.max_concurrency,
        )
        remaining = {
            key: sum(1 for d in step.deps if d not in self._completed)
            for key, step in self.plan.steps.items()
        }
        ready = deque(
            key for key in self.plan.steps if remaining[key] == 0 and key not in self._completed
        )
        self.remaining = remaining
        self.ready = ready
        running: dict[Future[StepResult], tuple[str, StepTask]] = {}
        retries: list[tuple[float, int, str, int]] = []
        counter = 0
        self.reporter.run_started(self.run.id, len(self.plan))
        self._notify("run_started", self.info)
        self.recorder.start()
        try:
            while ready or running or retries:
                if self.recorder.error is not None:
                    raise self.recorder.error
                self._apply_refusals()
                now = time.time()
                while retries and retries[0][0] <= now:
                    _, _, key, attempt = heapq.heappop(retries)
                    ready.appendleft(key)
                    self.states[key].attempts = attempt - 1
                while ready and len(running) < executor.concurrency:
                    key = ready.popleft()
                    if self.states[key].status == "upstream_failed":
                        continue
                    task = self._prepare(key)
                    if task is None:
                        continue
                    future = executor.submit(task)
                    if future.done():
                        retry = self._finish(task, _result_of(future, task))
                    else:
                        running[future] = (key, task)
                        continue
                    if retry is not None:
                        counter += 1
                        heapq.heappush(retries, (retry[0], counter, key, retry[1]))
                if running:
                    timeout = max(0.0, retries[0][0] - time.time()) if retries else None
                    done, _ = wait(list(running), timeout=timeout, return_when=FIRST_COMPLETED)
                    for future in done:
                        key, task = running.pop(future)
                        retry = self._finish(task, _result_of(future, task))
                        if retry is not None:
                            counter += 1
                            heapq.heappush(retries, (retry[0], counter, key, retry[1]))
                elif retries and not ready:
                    time.sleep(max(0.0, min(retries[0][0] - time.time(), 1.0)))
            # steps run in this thread can finish the plan without passing the check
            # above: a batch the store did not take (an outage) must not be forgotten
            # by a run that then ends as if everything were recorded
            if self.recorder.error is not None:
                raise self.recorder.error
        except BaseException as exc:
            status = "canceled" if isinstance(exc, KeyboardInterrupt) else "failed"
            executor.shutdown()
            if self.recorder.error is None:
                self.recorder.close()
            message = f"{type(exc).__name__}: {exc}"
            self.store.runs.set_status(self.run.id, status, ended_at=time.time(), error=message)
            self.reporter.run_finished(self.run.id, status)
            self._notify("run_finished", self.info, status, time.time(), message)
            raise
        executor.shutdown()
        ok = all(s.status in DONE for s in self.states.values())
        status = "success" if ok else "failed"
        if not self.recorder.close(finish=(status, time.time())):
            while self._apply_refusals():
                self.recorder.flush()
            ok = all(s.status in DONE for s in self.states.values())
            status = "success" if ok else "failed"
            self.store.runs.set_status(self.run.id, status, ended_at=time.time())
        self.reporter.run_finished(self.run.id, status)
        self._notify("run_finished", self.info, status, time.time(), None)
        return RunResult(run_id=self.run.id, status=status, steps=self.states)

    def _prepare(self, key: str) -> StepTask | None:
        """A task to run, or None when the step completed at once (cached or failed)."""
        step = self.plan.steps[key]
        state = self.states[key]
        attempt = state.attempts + 1
        now = time.time()
        spec = self.graph[step.asset]
        try:
            inputs = self._inputs(step)
            references = self._references(step)
        except MissingInputError as exc:
            self._fail(step, attempt, str(exc), None, [], now, None)
            return None
        params = self.params_json.get(step.asset, {})
        version = self._code_version(step.asset)
        try:
            source = self._source_version(step)
        except Exception as exc:
            self._fail(
                step,
                attempt,
                f"asset {step.asset!r}: its source_version function failed: "
                f"{type(exc).__name__}: {exc}",
                user_traceback(exc),
                [],
                now,
                None,
            )
            return None
        key_hash = cache_key(
            source=source,
            code_version=version,
            partition=step.partition,
            io=spec.io,
            params=params,
            inputs=[
                *((i.parameter, [r.version_id for r in i.refs or ()]) for i in inputs),
                # a referenced table that changed re-runs the checks that read it
                *((f"check:{a}", [r.version_id for r in refs]) for a, _, refs in references),
            ],
        )
        head = self.heads.get((step.asset, step.partition))
        if not self.run.force and head is not None and head.cache_key == key_hash:
            reason = f"cached: code, inputs and params unchanged since {head.id[:16]}"
            with self.recorder.lock:
                state.status, state.version_id, state.reason = "skipped", head.id, reason
                state.cache_key, state.ended_at, state.duration_s = key_hash, now, 0.0
                state.attempts = 0
                self.recorder.mark(key)
            self.reporter.step_finished(key, "skipped", 0.0, reason)
            self._release(key)
            return None
        with self.recorder.lock:
            state.reason = why_run(
                head,
                code_version=version,
                params=params,
                force=self.run.force,
                observed=spec.source_version is not None,
                has_inputs=bool(spec.inputs),
            )
            state.attempts, state.status, state.started_at = attempt, "running", now
            state.ended_at = state.duration_s = None
            state.error = state.traceback = None
            self.recorder.mark(key)
        self._meta[key] = (version, key_hash)
        self.reporter.step_started(key, attempt)
        if self.observers:
            self._notify("step_started", self._event(step, "running", now, inputs))
        return StepTask(
            run_id=self.run.id,
            key=key,
            asset=step.asset,
            partition=step.partition,
            attempt=attempt,
            inputs=inputs,
            params=self.asset_params.get(step.asset, {}),
            branch=self.run.branch,
            workspace_root=str(self.ws.settings.root),
            checks=self._check_context(step, references) if spec.checks else None,
        )

    def _params_conflict(self, task: StepTask, params: dict[str, str]) -> str | None:
        """Params are fixed once logged: a step may not log another value for one."""
        for key, value in list(params.items()):
            before = self._params.setdefault(key, (value, task.key))
            if before[0] != value:
                del params[key]
                return (
                    f"asset {task.asset!r} logged param {key!r} = {value!r}, but step "
                    f"{before[1]} of this run logged {before[0]!r}; a run's params are fixed "
                    "once logged (log a metric, or prefix the param with the asset's name)"
                )
        return None

    # -- what checks need -----------------------------------------------------------

    def _references(
        self, step: Step
    ) -> tuple[tuple[str, tuple[str, ...], tuple[InputRef, ...]], ...]:
        """The current versions (every partition) of the assets a step's checks reference."""
        spec = self.graph[step.asset]
        if not spec.check_references:
            return ()
        wanted = Suite(spec.name, spec.checks).references
        out = []
        for asset in spec.check_references:
            heads = sorted(
                (v for (a, _), v in self.heads.items() if a == asset),
                key=lambda v: v.partition or "",
            )
            if not heads:
                raise MissingInputError(step.asset, asset, self.run.branch, None)
            out.append((asset, tuple(sorted(wanted[asset])), tuple(_ref(v) for v in heads)))
        return tuple(out)

    def _newest_head(self, asset: str) -> VersionRecord | None:
        if asset not in self._newest:
            self._newest[asset] = self.store.versions.newest_head(self.run.branch, asset)
        found = self._newest[asset]
        made = [v for (a, _), v in self.heads.items() if a == asset]
        if found is not None:
            made.append(found)
        return max(made, key=lambda v: v.created_at, default=None)

    def _check_context(
        self, step: Step, references: tuple[tuple[str, tuple[str, ...], tuple[InputRef, ...]], ...]
    ) -> CheckContext:
        spec = self.graph[step.asset]
        previous = self.heads.get((step.asset, step.partition))
        if previous is None:  # a new partition: compare with the asset's newest version
            previous = self._newest_head(step.asset)
        return CheckContext(
            references=references,
            history={name: list(values) for name, values in self._history(spec).items()},
            previous_schema=previous.schema if previous is not None else None,
        )

    def _history(self, spec: AssetSpec) -> dict[str, list[float]]:
        """Each anomaly check's past values: stored ones, read once a run, then this
        run's own as its steps finish (so partitions see the months before them)."""
        found = self._histories.get(spec.name)
        if found is None:
            anomalies = [c for c in spec.checks if c.kind == "anomaly"]
            found = self.store.quality.metric_history(
                spec.name,
                [c.name for c in anomalies],
                limit=max((c.window + 1 for c in anomalies), default=1),
            )
            self._histories[spec.name] = found
        return found

    def _learn(self, asset: str, results: list[dict[str, Any]]) -> None:
        history = self._histories.get(asset)
        if history is None:
            return
        for result in results:
            value = result.get("observed")
            if result["name"] not in history or isinstance(value, bool):
                continue
            if isinstance(value, int | float):
                history[result["name"]].append(float(value))

    def _finish(self, task: StepTask, result: StepResult) -> tuple[float, int] | None:
        """Record a finished attempt; returns (when, attempt) if it is to be retried."""
        step = self.plan.steps[task.key]
        state = self.states[task.key]
        duration = result.ended_at - result.started_at
        version_code, key_hash = self._meta.pop(task.key)
        with self.recorder.lock:
            state.duration_s = duration
        if result.tracked:
            conflict = self._params_conflict(task, result.tracked.params)
            if conflict is not None:
                result.ok, result.retryable = False, False
                result.error = result.traceback = conflict
            self.recorder.track(result.tracked)
        if result.ok:
            assert result.blob is not None and result.kind and result.format and result.flavor
            version = NewVersion(
                id=new_id(),
                asset=step.asset,
                partition=step.partition,
                kind=result.kind,
                format=result.format,
                flavor=result.flavor,
                blob=result.blob,
                size=result.size or 0,
                row_count=result.row_count,
                schema=result.schema,
                code_version=version_code,
                params=self.params_json.get(step.asset, {}),
                cache_key=key_hash,
                inputs=[(i.parameter, r.version_id) for i in task.inputs for r in i.refs or ()],
                replaces=self._replaces.get((step.asset, step.partition)),
                stats=result.stats,
                primary_key=self.graph[step.asset].primary_key,
                check_results=result.checks,
                quarantine_reason=result.quarantine_reason,
            )
            if result.quarantine_reason is not None:
                self._quarantine(step, task, result, version, duration)
                return None
            self._learn(step.asset, result.checks)
            model = self.graph[step.asset].model
            if model is not None:
                self.recorder.register_model(
                    NewModelVersion(
                        name=model.name,
                        flavor=result.flavor,
                        blob=result.blob,
                        size=result.size or 0,
                        signature=(result.stats or {}).get("signature"),
                        model_class=str((result.stats or {}).get("model_class", "?")),
                        run_id=self.run.id,
                        asset_version_id=version.id,
                        data_versions=list(
                            dict.fromkeys(r.version_id for i in task.inputs for r in i.refs or ())
                        ),
                    )
                )
            if result.warnings:
                state.reason = f"{state.reason}; warnings: " + "; ".join(result.warnings)
            with self.recorder.lock:
                state.status, state.version_id, state.cache_key = "success", version.id, key_hash
                state.ended_at = result.ended_at
                self.recorder.mark(
                    task.key,
                    version=(version, result.ended_at),
                    logs=result.logs,
                    attempt=task.attempt,
                )
            self.heads[(step.asset, step.partition)] = version.record(
                run_id=self.run.id, step_key=task.key, created_at=result.ended_at
            )
            self._replaces[(step.asset, step.partition)] = version.id
            self.reporter.step_finished(task.key, "success", duration, state.reason)
            if self.observers:
                output = VersionRef(
                    asset=step.asset,
                    partition=step.partition,
                    version_id=version.id,
                    schema=version.schema,
                    row_count=version.row_count,
                )
                self._notify(
                    "step_finished",
                    self._event(step, "success", result.ended_at, task.inputs, output=output),
                )
            self._release(task.key)
            return None
        policy = self.graph[step.asset].retry
        retryable = result.retryable and policy is not None
        if retryable and policy is not None and policy.should_retry(task.attempt, result.exception):
            delay = policy.delay_before(task.attempt + 1)
            with self.recorder.lock:
                state.status, state.ended_at = "retrying", result.ended_at
                state.reason = f"retry {task.attempt} of {policy.max_retries} in {delay:g} s"
                state.error, state.traceback = result.error, result.traceback
                self.recorder.mark(task.key, logs=result.logs, attempt=task.attempt)
            self.reporter.step_finished(task.key, "retrying", duration, result.error)
            return time.time() + delay, task.attempt + 1
        self._fail(
            step,
            task.attempt,
            result.error or "failed",
            result.traceback,
            result.logs,
            result.ended_at,
            duration,
        )
        return None

    def _quarantine(
        self,
        step: Step,
        task: StepTask,
        result: StepResult,
        version: NewVersion,
        duration: float,
    ) -> None:
        """Keep the version off the branch, fail the step, stop what reads it."""
        state = self.states[task.key]
        error = (
            f"asset {step.asset!r}"
            + (f" partition {step.partition!r}" if step.partition else "")
            + f": {result.quarantine_reason}; version {version.id} is quarantined "
            "(headrace quarantine show " + version.id[:16] + ")"
        )
        blocked = self._downstream(task.key)
        reason = f"upstream step {task.key} failed its checks"
        with self.recorder.lock:
            state.status, state.error, state.version_id = "failed", error, version.id
            state.ended_at, state.duration_s = result.ended_at, duration
            self.recorder.mark(
                task.key,
                version=(version, result.ended_at),
                logs=result.logs,
                attempt=task.attempt,
            )
            for key in blocked:
                child = self.states[key]
                child.status, child.reason, child.ended_at = "upstream_failed", reason, time.time()
                self.recorder.mark(key)
        self.reporter.step_finished(task.key, "failed", duration, error)
        for key in blocked:
            self.reporter.step_finished(key, "upstream_failed", None, reason)
        if self.observers:
            event = self._event(step, "failed", result.ended_at, task.inputs, error=error)
            self._notify("step_finished", event)

    def _fail(
        self,
        step: Step,
        attempt: int,
        error: str,
        tb: str | None,
        logs: list[tuple[str, float, str]],
        at: float,
        duration: float | None,
    ) -> None:
        state = self.states[step.key]
        blocked = self._downstream(step.key)
        reason = f"upstream step {step.key} failed"
        with self.recorder.lock:
            state.status, state.error, state.traceback = "failed", error, tb
            state.attempts, state.ended_at, state.duration_s = attempt, at, duration
            self.recorder.mark(step.key, logs=logs, attempt=attempt)
            for key in blocked:
                child = self.states[key]
                child.status, child.reason, child.ended_at = "upstream_failed", reason, at
                self.recorder.mark(key)
        self.reporter.step_finished(step.key, "failed", duration, error)
        if self.observers:
            event = self._event(step, "failed", at, (), error=error, traceback=tb)
            self._notify("step_finished", event)
        for key in blocked:
            self.reporter.step_finished(key, "upstream_failed", None, reason)

    def _notify(self, method: str, *args: Any) -> None:
        """Tell every observer; an observer's failure never fails the run."""
        for observer in self.observers:
            try:
                getattr(observer, method)(*args)
            except Exception:
                logging.getLogger("headrace.observers").exception(
                    "observer %r failed in %s", observer, method
                )

    def _event(
        self,
        step: Step,
        status: str,
        at: float,
        inputs: Sequence[StepInput],
        *,
        output: VersionRef | None = None,
        error: str | None = None,
        traceback: str | None = None,
    ) -> StepEvent:
        spec = self.graph[step.asset]
        assets = {i.parameter: i.asset for i in spec.inputs}
        refs = []
        for item in inputs:
            asset = assets.get(item.parameter, item.parameter)
            for ref in item.refs or ():
                record = self.heads.get((asset, ref.partition))
                if record is not None and record.id != ref.version_id:
                    record = None
                refs.append(
                    VersionRef(
                        asset=asset,
                        partition=ref.partition,
                        version_id=ref.version_id,
                        schema=None if record is None else record.schema,
                        row_count=None if record is None else record.row_count,
                    )
                )
        return StepEvent(
            run=self.info,
            step_key=step.key,
            asset=step.asset,
            partition=step.partition,
            status=status,
            at=at,
            description=spec.description,
            inputs=refs,
            output=output,
            error=error,
            traceback=traceback,
        )

    def _apply_refusals(self) -> bool:
        """Fail the steps whose versions were kept off the branch, and their downstream."""
        refused = self.recorder.take_refused()
        for key, message in refused:
            state = self.states[key]
            if state.status == "failed":
                continue
            blocked = self._downstream(key)
            reason = f"upstream step {key} failed"
            with self.recorder.lock:
                state.status, state.error = "failed", message
                self.recorder.mark(key)
                for child in blocked:
                    self.states[child].status, self.states[child].reason = "upstream_failed", reason
                    self.recorder.mark(child)
            self.reporter.step_finished(key, "failed", state.duration_s, message)
            for child in blocked:
                self.reporter.step_finished(child, "upstream_failed", None, reason)
        return bool(refused)

    def _downstream(self, key: str) -> list[str]:
        reachable = closure(self.dependents[key], self.dependents.__getitem__)
        return [k for k in self.plan.steps if k in reachable and self.states[k].status == "pending"]

    def _release(self, key: str) -> None:
        for child in self.dependents[key]:
            self.remaining[child] -= 1
            if self.remaining[child] == 0 and self.states[child].status == "pending":
                self.ready.append(child)

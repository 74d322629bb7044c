"""Runs, their steps and the steps' logs."""

from __future__ import annotations

import builtins
import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import String, and_, bindparam, func, insert, select, update

from headrace.core.tracking import Tracked
from headrace.store.branches import heads_at, label, move_heads
from headrace.store.errors import BranchConflictError, RunNotFoundError, StoreError
from headrace.store.quality import hold, record_checks
from headrace.store.records import LogRecord, RunRecord, StepRecord, VersionRecord
from headrace.store.registry import NewModelVersion, register_in
from headrace.store.schema import (
    asset_versions,
    branch_events,
    runs,
    step_logs,
    steps,
    version_inputs,
)
from headrace.store.upsert import head_upsert

if TYPE_CHECKING:
    from headrace.store.engine import MetadataStore

FINISHED = frozenset({"success", "failed", "canceled"})

# Hot-path statements are built once: building a Core statement per call costs far
# more than executing it.
_STEP_WHERE = and_(steps.c.run_id == bindparam("b_run_id"), steps.c.key == bindparam("b_key"))
_STEP_STARTED = (
    update(steps)
    .where(_STEP_WHERE)
    .values(
        status="running",
        attempts=bindparam("attempts"),
        started_at=bindparam("started_at"),
        ended_at=None,
    )
)
_STEP_FINISHED = (
    update(steps)
    .where(_STEP_WHERE)
    .values(
        status=bindparam("status"),
        attempts=bindparam("attempts"),
        ended_at=bindparam("ended_at"),
        duration_s=bindparam("duration_s"),
        reason=bindparam("reason"),
        error=bindparam("error"),
        traceback=bindparam("traceback"),
        version_id=func.coalesce(bindparam("version_id", type_=String), steps.c.version_id),
        cache_key=func.coalesce(bindparam("cache_key", type_=String), steps.c.cache_key),
    )
)
_STEP_ROW = (
    update(steps)
    .where(_STEP_WHERE)
    .values(
        status=bindparam("status"),
        attempts=bindparam("attempts"),
        started_at=bindparam("started_at"),
        ended_at=bindparam("ended_at"),
        duration_s=bindparam("duration_s"),
        reason=bindparam("reason"),
        error=bindparam("error"),
        traceback=bindparam("traceback"),
        version_id=bindparam("version_id"),
        cache_key=bindparam("cache_key"),
    )
)
#: How a step whose version lost the race for its branch head fails (its error starts
#: so): run again, it builds on the winner's version.
CONFLICT = "branch conflict"

_INSERT_RUN = insert(runs)
_INSERT_STEPS = insert(steps)
_END_RUN = (
    update(runs)
    .where(runs.c.id == bindparam("b_id"))
    .values(status=bindparam("b_status"), ended_at=bindparam("b_ended_at"))
)
_BEAT = (
    update(runs)
    .where(runs.c.id == bindparam("b_id"), runs.c.status == "running")
    .values(heartbeat_at=bindparam("b_at"))
)
_INSERT_VERSION = insert(asset_versions)
_INSERT_INPUTS = insert(version_inputs)
_INSERT_LOGS = insert(step_logs)


@dataclass(frozen=True, kw_only=True)
class NewVersion:
    """A version to record together with the step that produced it."""

    id: str
    asset: str
    partition: str | None
    kind: str
    format: str
    flavor: str
    blob: str
    size: int
    row_count: int | None
    schema: list[list[str]] | None
    code_version: str
    params: dict[str, Any]
    cache_key: str
    inputs: list[tuple[str, str]] = field(default_factory=list)  # (parameter, version id)
    #: The branch head this version replaces (None: the first one); a head moved by
    #: someone else meanwhile makes this version a conflict, kept off the branch.
    replaces: str | None = None
    stats: dict[str, Any] | None = None
    primary_key: tuple[str, ...] = ()
    #: Results of the asset's checks (``CheckResult`` fields as dicts).
    check_results: list[dict[str, Any]] = field(default_factory=list)
    #: Set when an error-severity check failed: the version is kept in quarantine and
    #: never moves the branch head.
    quarantine_reason: str | None = None

    def record(self, *, run_id: str, step_key: str, created_at: float) -> VersionRecord:
        """The version as the store will return it once recorded."""
        grouped: dict[str, list[str]] = {}
        for parameter, input_id in self.inputs:
            grouped.setdefault(parameter, []).append(input_id)
        return VersionRecord(
            id=self.id,
            asset=self.asset,
            partition=self.partition,
            kind=self.kind,
            format=self.format,
            flavor=self.flavor,
            blob=self.blob,
            size=self.size,
            row_count=self.row_count,
            schema=self.schema,
            run_id=run_id,
            step_key=step_key,
            code_version=self.code_version,
            params=self.params,
            cache_key=self.cache_key,
            created_at=created_at,
            inputs=grouped,
            stats=self.stats,
            primary_key=self.primary_key,
        )


def version_row(
    version: NewVersion, run_id: str, step_key: str, created_at: float
) -> dict[str, Any]:
    return {
        "id": version.id,
        "asset": version.asset,
        "partition": version.partition or "",
        "kind": version.kind,
        "format": version.format,
        "flavor": version.flavor,
        "blob": version.blob,
        "size": version.size,
        "row_count": version.row_count,
        "schema": None if version.schema is None else json.dumps(version.schema),
        "run_id": run_id,
        "step_key": step_key,
        "code_version": version.code_version,
        "params": json.dumps(version.params, sort_keys=True),
        "cache_key": version.cache_key,
        "created_at": created_at,
        "stats": None if version.stats is None else json.dumps(version.stats, default=str),
        "primary_key": json.dumps(list(version.primary_key)) if version.primary_key else None,
    }


@dataclass(frozen=True, kw_only=True)
class StepBatch:
    """Step rows, new versions and logs of one run, committed in one transaction.

    ``steps`` hold each changed step's whole row (keys: ``key``, ``status``,
    ``attempts``, ``started_at``, ``ended_at``, ``duration_s``, ``reason``, ``error``,
    ``traceback``, ``version_id``, ``cache_key``); ``versions`` pair a new version with
    its step key and creation time; ``logs`` are (step key, attempt, stream, time, text).
    """

    run_id: str
    branch: str
    actor: str | None = None
    steps: Sequence[dict[str, Any]] = ()
    versions: Sequence[tuple[NewVersion, str, float]] = ()
    logs: Sequence[tuple[str, int, str, float, str]] = ()
    #: What the run's steps logged (experiment tracking).
    tracked: Tracked | None = None
    #: Model versions to register, each once its asset version lands on the branch.
    models: Sequence[NewModelVersion] = ()
    #: (status, time): end the run in the same transaction, if nothing in the batch
    #: is refused (a refusal changes a step, so the caller decides the status again).
    finish: tuple[str, float] | None = None


@dataclass(frozen=True, kw_only=True)
class StepOutcome:
    """What became of one attempt of a step, written in one transaction."""

    run_id: str
    key: str
    status: str
    attempt: int
    ended_at: float
    duration_s: float | None = None
    version_id: str | None = None
    cache_key: str | None = None
    reason: str | None = None
    error: str | None = None
    traceback: str | None = None
    logs: Sequence[tuple[str, float, str]] = ()  # (stream, time, text)
    new_version: NewVersion | None = None


class RunRepository:
    def __init__(self, store: MetadataStore) -> None:
        self._store = store
        self._upsert: Any = None

    def create(self, run: RunRecord, plan_steps: Sequence[tuple[str, str, str | None]]) -> None:
        """Insert a run and all its steps as ``pending``."""
        with self._store.write() as c:
            c.execute(
                _INSERT_RUN,
                {
                    "id": run.id,
                    "status": run.status,
                    "selection": run.selection,
                    "params": json.dumps(run.params, sort_keys=True),
                    "partitions": None if run.partitions is None else json.dumps(run.partitions),
                    "branch": run.branch,
                    "trigger": run.trigger,
                    "executor": run.executor,
                    "max_concurrency": run.max_concurrency,
                    "force": run.force,
                    "host": run.host,
                    "pid": run.pid,
                    "plan": json.dumps(run.plan),
                    "created_at": run.created_at,
                    "started_at": run.started_at,
                    "heartbeat_at": run.heartbeat_at,
                },
            )
            if plan_steps:
                c.execute(
                    _INSERT_STEPS,
                    [
                        {
                            "run_id": run.id,
                            "key": key,
                            "asset": asset,
                            "partition": partition,
                            "position": i,
                            "status": "pending",
                            "attempts": 0,
                        }
                        for i, (key, asset, partition) in enumerate(plan_steps)
                    ],
                )

    def exists(self, run_id: str) -> bool:
        """Whether a run has exactly this id."""
        with self._store.read() as c:
            return c.execute(select(runs.c.id).where(runs.c.id == run_id)).first() is not None

    def get(self, run_id: str) -> RunRecord:
        """A run by id, or by a unique prefix of its id (at least 6 characters)."""
        with self._store.read() as c:
            row = c.execute(select(runs).where(runs.c.id == run_id)).first()
            if row is None and len(run_id) >= 6:
                rows = c.execute(
                    select(runs).where(func.substr(runs.c.id, 1, len(run_id)) == run_id).limit(2)
                ).all()
                if len(rows) > 1:
                    raise StoreError(f"run id prefix {run_id!r} is ambiguous")
                row = rows[0] if rows else None
        if row is None:
            raise RunNotFoundError(run_id)
        return RunRecord.from_row(row)

    def list(
        self, *, limit: int = 20, offset: int = 0, status: str | None = None
    ) -> builtins.list[RunRecord]:
        query = select(runs).order_by(runs.c.created_at.desc(), runs.c.id.desc())
        if status:
            query = query.where(runs.c.status == status)
        with self._store.read() as c:
            rows = c.execute(query.limit(limit).offset(offset)).all()
        return [RunRecord.from_row(r) for r in rows]

    def steps(self, run_id: str) -> builtins.list[StepRecord]:
        with self._store.read() as c:
            rows = c.execute(
                select(steps).where(steps.c.run_id == run_id).order_by(steps.c.position)
            ).all()
        return [StepRecord.from_row(r) for r in rows]

    def step_counts(self, run_ids: Iterable[str]) -> dict[str, dict[str, int]]:
        ids = list(run_ids)
        out: dict[str, dict[str, int]] = {i: {} for i in ids}
        if not ids:
            return out
        with self._store.read() as c:
            rows = c.execute(
                select(steps.c.run_id, steps.c.status, func.count())
                .where(steps.c.run_id.in_(ids))
                .group_by(steps.c.run_id, steps.c.status)
            ).all()
        for run_id, status, count in rows:
            out[run_id][status] = count
        return out

    def beat(self, run_id: str, at: float) -> None:
        """The run's process is alive (while the run goes)."""
        with self._store.write_one() as c:
            c.execute(_BEAT, {"b_id": run_id, "b_at": at})

    def unfinished(self, *, quiet_since: float) -> builtins.list[RunRecord]:
        """Pipeline runs still ``running`` whose process has not said it was alive
        since ``quiet_since`` (or never did: runs from before heartbeats). Tracked runs
        (``executor`` none: an MLflow client's, or ``hr.start_run``) have no heartbeat
        and are not listed."""
        heard = func.coalesce(runs.c.heartbeat_at, runs.c.started_at, runs.c.created_at)
        with self._store.read() as c:
            rows = c.execute(
                select(runs).where(
                    runs.c.status == "running", runs.c.executor != "none", heard < quiet_since
                )
            ).all()
        return [RunRecord.from_row(r) for r in rows]

    def fail_if_quiet(self, run_id: str, *, quiet_since: float, error: str) -> bool:
        """Fail a running run whose heartbeat is still older than ``quiet_since`` (a
        beat meanwhile keeps it); whether it was failed."""
        heard = func.coalesce(runs.c.heartbeat_at, runs.c.started_at, runs.c.created_at)
        with self._store.write_one() as c:
            done = c.execute(
                update(runs)
                .where(runs.c.id == run_id, runs.c.status == "running", heard < quiet_since)
                .values(status="failed", ended_at=time.time(), error=error)
            )
            return done.rowcount == 1

    def set_status(self, run_id: str, status: str, **values: Any) -> None:
        with self._store.write_one() as c:
            c.execute(update(runs).where(runs.c.id == run_id).values(status=status, **values))

    def claim_for_resume(self, run_id: str, *, host: str, pid: int, started_at: float) -> None:
        """Mark an unfinished run as running again and reset its unfinished steps."""
        with self._store.write() as c:
            c.execute(
                update(runs)
                .where(runs.c.id == run_id)
                .values(
                    status="running",
                    host=host,
                    pid=pid,
                    ended_at=None,
                    error=None,
                    heartbeat_at=started_at,
                )
            )
            c.execute(
                update(steps)
                .where(
                    and_(
                        steps.c.run_id == run_id,
                        steps.c.status.not_in(("success", "skipped")),
                    )
                )
                .values(status="pending", error=None, traceback=None, reason=None)
            )

    def step_started(self, run_id: str, key: str, attempt: int, started_at: float) -> None:
        with self._store.write() as c:
            c.execute(
                _STEP_STARTED,
                {"b_run_id": run_id, "b_key": key, "attempts": attempt, "started_at": started_at},
            )

    def step_finished(self, outcome: StepOutcome, *, branch: str) -> None:
        """Record a step's outcome, its logs and its new version in ONE transaction.

        A run killed at any point therefore leaves either the whole version (blob,
        version row, inputs, branch head, step status) or none of it.
        """
        with self._store.write() as c:
            version = outcome.new_version
            if version is not None:
                c.execute(
                    _INSERT_VERSION,
                    version_row(version, outcome.run_id, outcome.key, outcome.ended_at),
                )
                if version.inputs:
                    c.execute(
                        _INSERT_INPUTS,
                        [
                            {"version_id": version.id, "input_version_id": v, "parameter": p}
                            for p, v in dict.fromkeys(version.inputs)
                        ],
                    )
                head = (version.asset, version.partition or "")
                previous = heads_at(c, branch, [head]).get(head)
                # Unconditional (last writer wins) for this single-step API, but recorded
                # in the branch history like every other head move.
                c.execute(
                    self._head_upsert(),
                    {
                        "branch": branch,
                        "asset": version.asset,
                        "partition": version.partition or "",
                        "version_id": version.id,
                        "run_id": outcome.run_id,
                        "updated_at": outcome.ended_at,
                    },
                )
                c.execute(
                    insert(branch_events).values(
                        branch=branch,
                        kind="materialize",
                        asset=head[0],
                        partition=head[1],
                        old_version_id=previous,
                        new_version_id=version.id,
                        run_id=outcome.run_id,
                        created_at=outcome.ended_at,
                    )
                )
            c.execute(
                _STEP_FINISHED,
                {
                    "b_run_id": outcome.run_id,
                    "b_key": outcome.key,
                    "status": outcome.status,
                    "attempts": outcome.attempt,
                    "ended_at": outcome.ended_at,
                    "duration_s": outcome.duration_s,
                    "reason": outcome.reason,
                    "error": outcome.error,
                    "traceback": outcome.traceback,
                    "version_id": outcome.version_id,
                    "cache_key": outcome.cache_key,
                },
            )
            if outcome.logs:
                c.execute(
                    _INSERT_LOGS,
                    [
                        {
                            "run_id": outcome.run_id,
                            "step_key": outcome.key,
                            "attempt": outcome.attempt,
                            "stream": stream,
                            "created_at": at,
                            "text": text,
                        }
                        for stream, at, text in outcome.logs
                    ],
                )

    def write_batch(
        self, batch: StepBatch, *, refused_versions: builtins.set[str] | None = None
    ) -> dict[str, str]:
        """Commit a batch of step changes atomically: every step wholly or not at all.

        Each new version moves its branch head only if the head is still the one the
        version ``replaces``; otherwise (another writer moved it), or when one of its
        inputs was itself refused, the version is kept but stays off the branch and its
        step is recorded as failed. ``refused_versions`` carries refusals across
        batches. Returns the refused steps' keys with the reason.
        """
        if not (
            batch.steps
            or batch.versions
            or batch.logs
            or batch.tracked
            or batch.models
            or batch.finish
        ):
            return {}
        for attempt in range(3):
            tainted = set(refused_versions or ())
            try:
                # First optimistically: each head is still what the version replaces
                # (the compare-and-swap proves it); after a conflict, read them first.
                refused = self._write_batch(batch, tainted, optimistic=attempt == 0)
            except BranchConflictError:
                if attempt == 2:
                    raise
                continue  # a head moved between our check and our write: check again
            if refused_versions is not None:
                refused_versions.update(tainted)
            return refused
        raise AssertionError("unreachable")

    def _write_batch(
        self, batch: StepBatch, tainted: builtins.set[str], *, optimistic: bool = False
    ) -> dict[str, str]:
        refused: dict[str, str] = {}
        with self._store.write() as c:
            if batch.tracked:
                from headrace.store.tracking import file_under_default, write_tracked

                dialect = self._store.engine.dialect.name
                write_tracked(c, dialect, batch.run_id, batch.tracked)
                file_under_default(c, dialect, batch.run_id)
            if batch.versions:
                c.execute(
                    _INSERT_VERSION,
                    [version_row(v, batch.run_id, key, at) for v, key, at in batch.versions],
                )
                inputs = [
                    {"version_id": v.id, "input_version_id": i, "parameter": p}
                    for v, _, _ in batch.versions
                    for p, i in dict.fromkeys(v.inputs)
                ]
                if inputs:
                    c.execute(_INSERT_INPUTS, inputs)
                record_checks(c, batch.run_id, batch.versions)
                keys = {(v.asset, v.partition or ""): v.replaces for v, _, _ in batch.versions}
                current = (
                    {k: old for k, old in keys.items() if old is not None}
                    if optimistic and len(keys) == len(batch.versions)
                    else heads_at(c, batch.branch, keys)
                )
                moves: list[tuple[tuple[str, str], str | None, str, float]] = []
                for version, key, at in batch.versions:
                    head = (version.asset, version.partition or "")
                    if version.quarantine_reason is not None:
                        hold(c, batch, version, at)
                        tainted.add(version.id)
                        continue
                    bad = [i for _, i in version.inputs if i in tainted]
                    if bad:
                        refused[key] = (
                            f"version {version.id[:16]} of {label(head)} was kept off branch "
                            f"{batch.branch!r}: it was made from version {bad[0][:16]}, which "
                            "was refused"
                        )
                    elif current.get(head) != version.replaces:
                        refused[key] = (
                            f"{CONFLICT}: {label(head)} on branch {batch.branch!r} was "
                            f"moved to version {str(current.get(head))[:16]} by another writer "
                            f"while this run made version {version.id[:16]}; the new version "
                            "is kept but not put on the branch"
                        )
                    else:
                        current[head] = version.id
                        moves.append((head, version.replaces, version.id, at))
                        continue
                    tainted.add(version.id)
                move_heads(
                    c,
                    self._store.dialect,
                    batch.branch,
                    moves,
                    kind="materialize",
                    run_id=batch.run_id,
                    actor=batch.actor,
                    message=None,
                )
            for model in batch.models:
                if model.asset_version_id not in tainted:  # only versions that landed
                    register_in(c, model, batch.actor)
            if batch.steps:
                c.execute(
                    _STEP_ROW,
                    [
                        {
                            "b_run_id": batch.run_id,
                            "b_key": row["key"],
                            **{k: v for k, v in row.items() if k != "key"},
                            **(
                                {"status": "failed", "error": refused[row["key"]]}
                                if row["key"] in refused
                                else {}
                            ),
                        }
                        for row in batch.steps
                    ],
                )
            if batch.logs:
                c.execute(
                    _INSERT_LOGS,
                    [
                        {
                            "run_id": batch.run_id,
                            "step_key": key,
                            "attempt": attempt,
                            "stream": stream,
                            "created_at": at,
                            "text": text,
                        }
                        for key, attempt, stream, at, text in batch.logs
                    ],
                )
            if batch.finish is not None and not refused:
                status, ended_at = batch.finish
                c.execute(
                    _END_RUN, {"b_id": batch.run_id, "b_status": status, "b_ended_at": ended_at}
                )
        return refused

    def _head_upsert(self) -> Any:
        if self._upsert is None:
            self._upsert = head_upsert(self._store.dialect)
        return self._upsert

    def steps_blocked(self, run_id: str, keys: Sequence[str], reason: str, at: float) -> None:
        if not keys:
            return
        with self._store.write() as c:
            c.execute(
                update(steps)
                .where(and_(steps.c.run_id == run_id, steps.c.key.in_(list(keys))))
                .values(status="upstream_failed", reason=reason, ended_at=at)
            )

    def logs(self, run_id: str, step_key: str | None = None) -> builtins.list[LogRecord]:
        query = select(
            step_logs.c.step_key,
            step_logs.c.attempt,
            step_logs.c.stream,
            step_logs.c.created_at,
            step_logs.c.text,
        ).where(step_logs.c.run_id == run_id)
        if step_key is not None:
            query = query.where(step_logs.c.step_key == step_key)
        with self._store.read() as c:
            rows = c.execute(query.order_by(step_logs.c.id)).all()
        return [LogRecord(**dict(r._mapping)) for r in rows]

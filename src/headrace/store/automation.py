"""The durable run queue, the state of schedules, sensors and freshness policies, the
files sensors handled, and failure notifications.

The queue is a table. Enqueueing is idempotent by ``dedupe_key`` (a schedule's tick, a
sensor's file or version): several daemons may evaluate the same tick and exactly one
row results. Workers claim a row in one transaction (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL, the write lock on SQLite), hold a lease they renew by heartbeat, and finish
it only while they still hold it; a row whose lease ran out is put back in the queue
(or failed once its attempts are spent) by :meth:`QueueRepository.reap`.
Concurrency limits are checked inside the claim; when any are set, claims on
PostgreSQL are serialised by an advisory lock so two workers never both take the last
free slot.
"""

from __future__ import annotations

import builtins
import functools
import json
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Float, String, and_, bindparam, case, func, select, text, update

from headrace.store.failures import storable
from headrace.store.schema import (
    automation_state,
    notifications,
    run_queue,
    runs,
    sensor_files,
)
from headrace.store.upsert import insert_ignore, upsert_statement

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from headrace.store.engine import MetadataStore

#: advisory lock key serialising limited claims on PostgreSQL ("hrqueue")
_CLAIM_LOCK = 0x68727175657565
#: queued rows looked at per claim when limits make some wait
_CANDIDATES = 50


@dataclass(frozen=True)
class QueuedRun:
    """One row of the run queue."""

    id: str
    pipeline: str
    kind: str
    selection: str | None
    exclude: str | None
    params: dict[str, Any]
    partitions: list[str] | None
    branch: str
    tags: tuple[str, ...]
    trigger: str
    dedupe_key: str | None
    status: str
    priority: int
    attempts: int
    max_attempts: int
    enqueued_at: float
    not_before: float
    started_at: float | None
    ended_at: float | None
    worker: str | None
    lease_until: float | None
    heartbeat_at: float | None
    run_id: str | None
    error: str | None
    waiting: str | None
    details: dict[str, Any]

    @classmethod
    def from_row(cls, row: Any) -> QueuedRun:
        m = row._mapping
        return cls(
            id=m["id"],
            pipeline=m["pipeline"],
            kind=m["kind"],
            selection=m["selection"],
            exclude=m["exclude"],
            params=json.loads(m["params"]),
            partitions=None if m["partitions"] is None else json.loads(m["partitions"]),
            branch=m["branch"],
            tags=tuple(json.loads(m["tags"])),
            trigger=m["trigger"],
            dedupe_key=m["dedupe_key"],
            status=m["status"],
            priority=m["priority"],
            attempts=m["attempts"],
            max_attempts=m["max_attempts"],
            enqueued_at=m["enqueued_at"],
            not_before=m["not_before"],
            started_at=m["started_at"],
            ended_at=m["ended_at"],
            worker=m["worker"],
            lease_until=m["lease_until"],
            heartbeat_at=m["heartbeat_at"],
            run_id=m["run_id"],
            error=m["error"],
            waiting=m["waiting"],
            details=json.loads(m["details"]),
        )


@dataclass(frozen=True)
class QueueLimits:
    """What the claim enforces: runs at once in all, per pipeline and per tag."""

    total: int | None = None
    pipelines: Mapping[str, int] | None = None
    tags: Mapping[str, int] | None = None

    @property
    def any(self) -> bool:
        return bool(self.total or self.pipelines or self.tags)


@dataclass(frozen=True)
class Notification:
    id: str
    event: str
    subject: str
    dedupe_key: str | None
    payload: dict[str, Any]
    channels: list[dict[str, Any]]
    status: str
    attempts: int
    next_attempt_at: float
    outcomes: list[dict[str, Any]]
    created_at: float
    sent_at: float | None

    @classmethod
    def from_row(cls, row: Any) -> Notification:
        m = row._mapping
        return cls(
            id=m["id"],
            event=m["event"],
            subject=m["subject"],
            dedupe_key=m["dedupe_key"],
            payload=json.loads(m["payload"]),
            channels=json.loads(m["channels"]),
            status=m["status"],
            attempts=m["attempts"],
            next_attempt_at=m["next_attempt_at"],
            outcomes=json.loads(m["outcomes"]),
            created_at=m["created_at"],
            sent_at=m["sent_at"],
        )


@dataclass(frozen=True)
class Lost:
    """A run whose worker stopped heartbeating: requeued, or failed for good."""

    item: QueuedRun
    requeued: bool


class QueueRepository:
    def __init__(self, store: MetadataStore) -> None:
        self._store = store

    # -- enqueue --------------------------------------------------------------------------

    def enqueue(
        self,
        *,
        pipeline: str,
        kind: str = "assets",
        selection: str | None = None,
        exclude: str | None = None,
        params: Mapping[str, Any] | None = None,
        partitions: Sequence[str] | None = None,
        branch: str = "main",
        tags: Sequence[str] = (),
        trigger: str = "manual",
        dedupe_key: str | None = None,
        priority: int = 0,
        max_attempts: int = 3,
        details: Mapping[str, Any] | None = None,
        connection: Connection | None = None,
        at: float | None = None,
        run_id: str | None = None,
    ) -> str | None:
        """Add a run to the queue; its id, or None when ``dedupe_key`` was queued before
        (by this daemon or another). With ``connection``, inside that transaction (so a
        sensor's cursor moves with it). ``run_id``: the id its pipeline run will have
        (given when the caller must know it now), or of the run to resume."""
        now = time.time() if at is None else at
        row = {
            "id": uuid.uuid4().hex,
            "pipeline": pipeline,
            "kind": kind,
            "selection": selection,
            "exclude": exclude,
            "params": json.dumps(dict(params or {}), sort_keys=True, default=str),
            "partitions": None if partitions is None else json.dumps(list(partitions)),
            "branch": branch,
            "tags": json.dumps(list(tags)),
            "trigger": trigger[:300],
            "dedupe_key": None if dedupe_key is None else dedupe_key[:500],
            "status": "queued",
            "priority": priority,
            "attempts": 0,
            "max_attempts": max_attempts,
            "enqueued_at": now,
            "not_before": now,
            "started_at": None,
            "ended_at": None,
            "worker": None,
            "lease_until": None,
            "heartbeat_at": None,
            "run_id": run_id,
            "error": None,
            "waiting": None,
            "details": json.dumps(dict(details or {}), sort_keys=True, default=str),
        }
        if connection is not None:
            return self._insert(connection, row)
        with self._store.write_one() as c:
            return self._insert(c, row)

    def _insert(self, c: Connection, row: dict[str, Any]) -> str | None:
        if row["dedupe_key"] is None:
            c.execute(run_queue.insert(), row)
            return str(row["id"])
        statement = insert_ignore(c.dialect.name, run_queue).returning(run_queue.c.id)
        made = c.execute(statement, row).first()
        return None if made is None else str(made[0])

    # -- claim, heartbeat, finish ---------------------------------------------------------

    def claim(
        self,
        worker: str,
        *,
        lease: float = 30.0,
        limits: QueueLimits | None = None,
        run_id: str | None = None,
    ) -> QueuedRun | None:
        """Take the next queued run that the limits let start (highest priority, then
        oldest), holding it for ``lease`` seconds; None when nothing can start. Runs
        the limits hold back get a ``waiting`` reason.

        ``run_id`` is the id the pipeline run will have, recorded in the same statement
        (a run that already has one, from a worker that died, keeps it: it is resumed);
        :meth:`finish` with ``made_run=False`` forgets it if no run was made.
        """
        now = time.time()
        limited = limits is not None and limits.any
        if not limited:
            return self._claim_next(worker, lease, now, run_id)
        with self._store.write() as c:
            postgres = c.dialect.name == "postgresql"
            if postgres and limited:
                c.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CLAIM_LOCK})
            query = (
                select(run_queue)
                .where(run_queue.c.status == "queued", run_queue.c.not_before <= now)
                .order_by(run_queue.c.priority.desc(), run_queue.c.enqueued_at, run_queue.c.id)
                .limit(_CANDIDATES if limited else 1)
            )
            if postgres:
                query = query.with_for_update(skip_locked=True)
            candidates = [QueuedRun.from_row(r) for r in c.execute(query)]
            if not candidates:
                return None
            chosen = candidates[0]
            if limited:
                assert limits is not None
                held = self._running(c)
                chosen_or_none = None
                for item in candidates:
                    reason = _blocked(item, held, limits)
                    if reason is None:
                        chosen_or_none = item
                        break
                    if item.waiting != reason:
                        c.execute(
                            update(run_queue)
                            .where(run_queue.c.id == item.id)
                            .values(waiting=reason)
                        )
                if chosen_or_none is None:
                    return None
                chosen = chosen_or_none
            c.execute(
                update(run_queue)
                .where(run_queue.c.id == chosen.id)
                .values(
                    status="running",
                    worker=worker[:300],
                    lease_until=now + lease,
                    heartbeat_at=now,
                    attempts=chosen.attempts + 1,
                    started_at=func.coalesce(run_queue.c.started_at, now),
                    waiting=None,
                    run_id=_run_id(run_id),
                )
            )
            found = c.execute(select(run_queue).where(run_queue.c.id == chosen.id)).one()
            return QueuedRun.from_row(found)

    def _claim_next(
        self, worker: str, lease: float, now: float, run_id: str | None
    ) -> QueuedRun | None:
        """Without limits, one statement: take the first claimable row (skipping rows
        other workers are taking, on PostgreSQL) and return it."""
        with self._store.write_one() as c:
            row = c.execute(
                _claim_statement(c.dialect.name == "postgresql", run_id is not None),
                {
                    "b_now": now,
                    "b_worker": worker[:300],
                    "b_lease_until": now + lease,
                    "b_run_id": run_id,
                },
            ).first()
        return None if row is None else QueuedRun.from_row(row)

    def _running(self, c: Connection) -> list[tuple[str, tuple[str, ...]]]:
        rows = c.execute(
            select(run_queue.c.pipeline, run_queue.c.tags).where(run_queue.c.status == "running")
        )
        return [(r.pipeline, tuple(json.loads(r.tags))) for r in rows]

    def for_run(self, run_id: str) -> QueuedRun | None:
        """The newest queued run that is (or will become) pipeline run ``run_id``."""
        with self._store.read() as c:
            row = c.execute(
                select(run_queue)
                .where(run_queue.c.run_id == run_id)
                .order_by(run_queue.c.enqueued_at.desc())
                .limit(1)
            ).first()
        return None if row is None else QueuedRun.from_row(row)

    def heartbeat(self, item_id: str, worker: str, *, lease: float = 30.0) -> bool:
        """Renew the lease; False when the worker no longer holds the run."""
        now = time.time()
        with self._store.write_one() as c:
            done = c.execute(
                update(run_queue)
                .where(_held(item_id, worker))
                .values(lease_until=now + lease, heartbeat_at=now)
            )
            return done.rowcount == 1

    def finish(
        self,
        item_id: str,
        worker: str,
        status: str,
        error: str | None = None,
        *,
        made_run: bool = True,
    ) -> bool:
        """End a run this worker holds (``success`` or ``failed``); False when it lost
        the lease meanwhile (then the row is left to whoever holds it now).
        ``made_run=False``: it failed before its pipeline run was made; forget the id
        the claim gave it."""
        with self._store.write_one() as c:
            done = c.execute(
                _FINISH if made_run else _FINISH_FORGETTING_RUN,
                {
                    "b_id": item_id,
                    "b_worker": worker[:300],
                    "b_status": status,
                    "b_ended_at": time.time(),
                    "b_error": None if error is None else error[:20_000],
                },
            )
            return done.rowcount == 1

    def release(self, item_id: str, worker: str, *, delay: float = 0.0, why: str) -> bool:
        """Put a run this worker holds back in the queue (a retry after ``delay``)."""
        with self._store.write_one() as c:
            done = c.execute(
                update(run_queue)
                .where(_held(item_id, worker))
                .values(
                    status="queued",
                    worker=None,
                    lease_until=None,
                    not_before=time.time() + delay,
                    waiting=why[:2000],
                )
            )
            return done.rowcount == 1

    def reap(self, *, now: float | None = None, retry_delay: float = 0.0) -> list[Lost]:
        """Find runs whose lease ran out (their worker died or hangs): each is queued
        again, to resume from its completed steps, or failed once its attempts are
        spent (and its pipeline run with it)."""
        at = time.time() if now is None else now
        out: list[Lost] = []
        with self._store.write() as c:
            query = select(run_queue).where(
                run_queue.c.status == "running", run_queue.c.lease_until < at
            )
            if c.dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            for row in c.execute(query).all():
                item = QueuedRun.from_row(row)
                lost = (
                    f"worker {item.worker} stopped heartbeating (lease ran out "
                    f"{at - (item.lease_until or at):.0f} s ago)"
                )
                if item.attempts < item.max_attempts:
                    values: dict[str, Any] = {
                        "status": "queued",
                        "worker": None,
                        "lease_until": None,
                        "not_before": time.time() + retry_delay,
                        "waiting": f"{lost}; attempt {item.attempts + 1} of "
                        f"{item.max_attempts} resumes it",
                    }
                else:
                    values = {
                        "status": "failed",
                        "lease_until": None,
                        "ended_at": at,
                        "error": f"{lost}; all {item.max_attempts} attempts spent",
                    }
                    if item.run_id is not None:
                        c.execute(
                            update(runs)
                            .where(runs.c.id == item.run_id, runs.c.status == "running")
                            .values(status="failed", ended_at=at, error=values["error"])
                        )
                c.execute(update(run_queue).where(run_queue.c.id == item.id).values(values))
                out.append(Lost(item=item, requeued=values["status"] == "queued"))
        return out

    # -- reading ----------------------------------------------------------------------------

    def get(self, item_id: str) -> QueuedRun:
        from headrace.store.errors import StoreError

        with self._store.read() as c:
            rows = c.execute(
                select(run_queue).where(run_queue.c.id.startswith(item_id)).limit(2)
            ).all()
        exact = [r for r in rows if r.id == item_id]
        if not exact and len(rows) != 1:
            raise StoreError(
                f"no queued run {item_id!r}" if not rows else f"{item_id!r} names several"
            )
        return QueuedRun.from_row((exact or rows)[0])

    def list(
        self,
        *,
        status: str | Sequence[str] | None = None,
        pipeline: str | None = None,
        limit: int = 100,
    ) -> builtins.list[QueuedRun]:
        """Rows newest first (queued ones in the order they will be taken)."""
        query = select(run_queue)
        if status is not None:
            wanted = [status] if isinstance(status, str) else builtins.list(status)
            query = query.where(run_queue.c.status.in_(wanted))
        if pipeline is not None:
            query = query.where(run_queue.c.pipeline == pipeline)
        query = query.order_by(
            (run_queue.c.status == "queued").desc(),
            run_queue.c.priority.desc(),
            run_queue.c.enqueued_at.desc(),
        ).limit(limit)
        with self._store.read() as c:
            rows = [QueuedRun.from_row(r) for r in c.execute(query)]
        queued = sorted(
            (r for r in rows if r.status == "queued"), key=lambda r: (-r.priority, r.enqueued_at)
        )
        return queued + [r for r in rows if r.status != "queued"]

    def counts(self) -> dict[str, int]:
        with self._store.read() as c:
            rows = c.execute(select(run_queue.c.status, func.count()).group_by(run_queue.c.status))
            return {r[0]: int(r[1]) for r in rows}

    def pending(self) -> int:
        """Runs queued or running."""
        counts = self.counts()
        return counts.get("queued", 0) + counts.get("running", 0)


@functools.cache
def _claim_statement(postgres: bool, assign: bool) -> Any:
    """Built once (a worker claims hundreds of runs a second): the claim without
    limits, with bound parameters ``b_now``, ``b_worker``, ``b_lease_until`` and
    (``assign``) ``b_run_id``."""
    now = bindparam("b_now", type_=Float)
    pick = (
        select(run_queue.c.id)
        .where(run_queue.c.status == "queued", run_queue.c.not_before <= now)
        .order_by(run_queue.c.priority.desc(), run_queue.c.enqueued_at, run_queue.c.id)
        .limit(1)
    )
    if postgres:
        pick = pick.with_for_update(skip_locked=True)
    return (
        update(run_queue)
        .where(run_queue.c.id == pick.scalar_subquery(), run_queue.c.status == "queued")
        .values(
            status="running",
            worker=bindparam("b_worker", type_=String),
            lease_until=bindparam("b_lease_until", type_=Float),
            heartbeat_at=now,
            attempts=run_queue.c.attempts + 1,
            started_at=func.coalesce(run_queue.c.started_at, now),
            waiting=None,
            run_id=_run_id(bindparam("b_run_id", type_=String) if assign else None),
        )
        .returning(*run_queue.c)
    )


def _finish_statement(*, forget_run: bool) -> Any:
    held = and_(
        run_queue.c.id == bindparam("b_id"),
        run_queue.c.worker == bindparam("b_worker"),
        run_queue.c.status == "running",
    )
    values: dict[str, Any] = {
        "status": bindparam("b_status"),
        "ended_at": bindparam("b_ended_at"),
        "lease_until": None,
        "error": bindparam("b_error"),
    }
    if forget_run:
        values["run_id"] = None
    return update(run_queue).where(held).values(**values)


_FINISH = _finish_statement(forget_run=False)
_FINISH_FORGETTING_RUN = _finish_statement(forget_run=True)


def _run_id(fresh: Any) -> Any:
    """The run id a claimed row gets: the one it has (its run is resumed), else
    ``fresh`` (a value or a bound parameter); a monitor check makes no pipeline run,
    so it gets none."""
    if fresh is None:
        return run_queue.c.run_id
    return case(
        (run_queue.c.kind == "monitor", run_queue.c.run_id),
        else_=func.coalesce(run_queue.c.run_id, fresh),
    )


def _held(item_id: str, worker: str) -> Any:
    return and_(
        run_queue.c.id == item_id,
        run_queue.c.worker == worker[:300],
        run_queue.c.status == "running",
    )


def _blocked(
    item: QueuedRun, held: Sequence[tuple[str, tuple[str, ...]]], limits: QueueLimits
) -> str | None:
    """Why ``item`` may not start now (its own pipeline's or tag's limit before the
    global one), or None."""
    cap = (limits.pipelines or {}).get(item.pipeline)
    if cap is not None:
        mine = sum(1 for p, _ in held if p == item.pipeline)
        if mine >= cap:
            return f"pipeline {item.pipeline} at its limit: {mine} of {cap} running"
    for tag in item.tags:
        cap = (limits.tags or {}).get(tag)
        if cap is None:
            continue
        count = sum(1 for _, tags in held if tag in tags)
        if count >= cap:
            return f"tag {tag} at its limit: {count} of {cap} running"
    if limits.total is not None and len(held) >= limits.total:
        return f"global limit: {len(held)} of {limits.total} runs running"
    return None


class AutomationStateRepository:
    """Each schedule's, sensor's and freshness policy's switch and cursor, and the files
    file sensors handled."""

    def __init__(self, store: MetadataStore) -> None:
        self._store = store

    def states(self, kind: str | None = None) -> dict[tuple[str, str], dict[str, Any]]:
        query = select(automation_state)
        if kind is not None:
            query = query.where(automation_state.c.kind == kind)
        with self._store.read() as c:
            return {
                (r.kind, r.name): {
                    "enabled": r.enabled,
                    "cursor": None if r.cursor is None else json.loads(r.cursor),
                    "evaluated_at": r.evaluated_at,
                }
                for r in c.execute(query)
            }

    def state(self, kind: str, name: str) -> dict[str, Any]:
        return self.states(kind).get(
            (kind, name), {"enabled": None, "cursor": None, "evaluated_at": None}
        )

    def set_enabled(self, kind: str, name: str, enabled: bool | None) -> None:
        self._save(kind, name, enabled=enabled)

    def advance(
        self,
        kind: str,
        name: str,
        cursor: Any,
        *,
        evaluated_at: float | None = None,
        connection: Connection | None = None,
    ) -> None:
        """Store the cursor (and when it was evaluated), in ``connection`` when given."""
        values = {"cursor": json.dumps(cursor, default=str), "evaluated_at": evaluated_at}
        if connection is not None:
            self._save_in(connection, kind, name, **values)
        else:
            self._save(kind, name, **values)

    def _save(self, kind: str, name: str, **values: Any) -> None:
        with self._store.write() as c:
            self._save_in(c, kind, name, **values)

    def _save_in(self, c: Connection, kind: str, name: str, **values: Any) -> None:
        current = c.execute(
            select(automation_state).where(
                automation_state.c.kind == kind, automation_state.c.name == name
            )
        ).first()
        row = {
            "kind": kind,
            "name": name,
            "enabled": None if current is None else current.enabled,
            "cursor": None if current is None else current.cursor,
            "evaluated_at": None if current is None else current.evaluated_at,
            "updated_at": time.time(),
        }
        row.update(values)
        columns = ("kind", "name", "enabled", "cursor", "evaluated_at", "updated_at")
        c.execute(
            upsert_statement(c.dialect.name, automation_state, ("kind", "name"), columns), row
        )

    # -- file sensors -------------------------------------------------------------------------

    def seen_files(self, sensor: str) -> dict[str, str]:
        """Path → the fingerprint handled last."""
        with self._store.read() as c:
            rows = c.execute(
                select(sensor_files.c.path, sensor_files.c.fingerprint).where(
                    sensor_files.c.sensor == sensor
                )
            )
            return {r.path: r.fingerprint for r in rows}

    def mark_files(self, c: Connection, sensor: str, files: Iterable[tuple[str, str]]) -> None:
        """Record files as handled (in the transaction that enqueued their runs)."""
        rows = [
            {"sensor": sensor, "path": path, "fingerprint": fp, "seen_at": time.time()}
            for path, fp in files
        ]
        if rows:
            c.execute(
                upsert_statement(
                    c.dialect.name,
                    sensor_files,
                    ("sensor", "path"),
                    ("sensor", "path", "fingerprint", "seen_at"),
                ),
                rows,
            )


class NotificationRepository:
    """Failure notifications: added once (by ``dedupe_key``), retried until sent."""

    def __init__(self, store: MetadataStore) -> None:
        self._store = store

    def add(
        self,
        event: str,
        subject: str,
        payload: Mapping[str, Any],
        channels: Sequence[Mapping[str, Any]],
        *,
        dedupe_key: str | None = None,
    ) -> str | None:
        row = {
            "id": uuid.uuid4().hex,
            "event": event,
            # client-supplied names end up in these: bounded, so a notification is
            # never refused (and lost) for a long name or a NUL byte
            "subject": storable(subject, 500),
            "dedupe_key": None if dedupe_key is None else storable(dedupe_key, 500),
            "payload": json.dumps(dict(payload), default=str, sort_keys=True),
            "channels": json.dumps([dict(ch) for ch in channels], default=str),
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": time.time(),
            "outcomes": "[]",
            "created_at": time.time(),
            "sent_at": None,
        }
        with self._store.write() as c:
            statement = insert_ignore(c.dialect.name, notifications).returning(notifications.c.id)
            made = c.execute(statement, row).first()
            return None if made is None else str(made[0])

    def due(self, *, now: float | None = None, limit: int = 100) -> builtins.list[Notification]:
        at = time.time() if now is None else now
        query = (
            select(notifications)
            .where(notifications.c.status == "pending", notifications.c.next_attempt_at <= at)
            .order_by(notifications.c.created_at)
            .limit(limit)
        )
        with self._store.read() as c:
            return [Notification.from_row(r) for r in c.execute(query)]

    def record(
        self,
        notification_id: str,
        *,
        sent: bool,
        outcomes: Sequence[Mapping[str, Any]],
        retry_at: float | None,
    ) -> None:
        """Store one delivery attempt: sent, to be retried at ``retry_at``, or (no retry
        left) failed for good."""
        with self._store.write() as c:
            current = c.execute(
                select(notifications.c.attempts, notifications.c.outcomes).where(
                    notifications.c.id == notification_id
                )
            ).one()
            history = json.loads(current.outcomes) + [
                {"at": time.time(), **dict(o)} for o in outcomes
            ]
            status = "sent" if sent else ("pending" if retry_at is not None else "failed")
            c.execute(
                update(notifications)
                .where(notifications.c.id == notification_id)
                .values(
                    status=status,
                    attempts=current.attempts + 1,
                    next_attempt_at=retry_at if retry_at is not None else time.time(),
                    outcomes=json.dumps(history[-50:], default=str),
                    sent_at=time.time() if sent else None,
                )
            )

    def list(self, *, limit: int = 50, status: str | None = None) -> builtins.list[Notification]:
        query = select(notifications).order_by(notifications.c.created_at.desc()).limit(limit)
        if status is not None:
            query = query.where(notifications.c.status == status)
        with self._store.read() as c:
            return [Notification.from_row(r) for r in c.execute(query)]

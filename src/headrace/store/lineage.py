"""External lineage in the metadata store: OpenLineage events from other producers
(Airflow, Spark, dbt, ...) merged into jobs, datasets, runs and the datasets each job
reads and writes, with every raw event kept.

Datasets are named as OpenLineage names them (namespace + name). headrace's own assets
are the datasets of namespace ``headrace://<project>`` named ``<branch>/<asset>`` (what
headrace's emitter sends), so a Spark job reading ``main/flights_clean`` sits downstream
of that asset in :meth:`LineageRepository.graph`.
"""

from __future__ import annotations

import builtins
import json
import time
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, func, insert, or_, select, update

from headrace.store.schema import (
    lineage_datasets,
    lineage_events,
    lineage_io,
    lineage_jobs,
    lineage_runs,
)

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from headrace.store.engine import MetadataStore

#: OpenLineage run states, and the ones that end a run.
STATES = ("START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER")
FINAL = ("COMPLETE", "ABORT", "FAIL")


@dataclass(frozen=True)
class Node:
    kind: str  # job | dataset
    namespace: str
    name: str

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.namespace}:{self.name}"


def _seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


class LineageRepository:
    def __init__(self, store: MetadataStore) -> None:
        self._store = store

    # -- writing ----------------------------------------------------------------------

    def ingest(self, c: Connection, event: dict[str, Any], *, actor: str | None) -> None:
        """Merge one checked event (see ``headrace.server.lineage_api``) inside the
        caller's transaction: the job, its datasets, the run's state, the edges, the raw
        event."""
        now = time.time()
        if event.get("dataset") is not None:  # a DatasetEvent: the dataset's facets only
            self._upsert_dataset(c, event["dataset"], now)
            self._raw(c, event, None, actor, now)
            return
        job = event["job"]
        run = event.get("run")
        kind = event.get("eventType")
        self._upsert_job(c, job["namespace"], job["name"], event.get("producer"), job, now)
        run_id = run["runId"] if run else None
        if run_id is not None:
            self._record_run(c, run_id, job, kind or "OTHER", _seconds(event["eventTime"]), now)
        for direction, datasets in (("in", event.get("inputs")), ("out", event.get("outputs"))):
            for dataset in datasets or []:
                self._upsert_dataset(c, dataset, now)
                self._edge(c, job, direction, dataset, run_id, now)
        self._raw(c, event, run_id, actor, now)

    @staticmethod
    def _raw(
        c: Connection, event: dict[str, Any], run_id: str | None, actor: str | None, now: float
    ) -> None:
        c.execute(
            insert(lineage_events).values(
                run_id=run_id,
                event_type=event.get("eventType"),
                event_time=event["eventTime"],
                received_at=now,
                received_by=actor,
                body=json.dumps(event, separators=(",", ":")),
            )
        )

    @staticmethod
    def _upsert_job(
        c: Connection, namespace: str, name: str, producer: str | None, job: Any, now: float
    ) -> None:
        where = and_(lineage_jobs.c.namespace == namespace, lineage_jobs.c.name == name)
        row = c.execute(select(lineage_jobs.c.facets).where(where)).first()
        facets = {**(json.loads(row.facets) if row else {}), **(job.get("facets") or {})}
        values = {"producer": producer, "facets": json.dumps(facets), "last_seen": now}
        if row is None:
            c.execute(
                insert(lineage_jobs).values(
                    namespace=namespace, name=name, first_seen=now, **values
                )
            )
        else:
            c.execute(update(lineage_jobs).where(where).values(**values))

    @staticmethod
    def _upsert_dataset(c: Connection, dataset: dict[str, Any], now: float) -> None:
        where = and_(
            lineage_datasets.c.namespace == dataset["namespace"],
            lineage_datasets.c.name == dataset["name"],
        )
        row = c.execute(select(lineage_datasets.c.facets).where(where)).first()
        given = {**(dataset.get("facets") or {})}
        for extra in ("inputFacets", "outputFacets"):
            given.update(dataset.get(extra) or {})
        facets = {**(json.loads(row.facets) if row else {}), **given}
        if row is None:
            c.execute(
                insert(lineage_datasets).values(
                    namespace=dataset["namespace"],
                    name=dataset["name"],
                    facets=json.dumps(facets),
                    first_seen=now,
                    last_seen=now,
                )
            )
        else:
            c.execute(
                update(lineage_datasets)
                .where(where)
                .values(facets=json.dumps(facets), last_seen=now)
            )

    @staticmethod
    def _record_run(c: Connection, run_id: str, job: Any, kind: str, at: float, now: float) -> None:
        row = c.execute(
            select(lineage_runs.c.state, lineage_runs.c.started_at).where(
                lineage_runs.c.run_id == run_id
            )
        ).first()
        values: dict[str, Any] = {"updated_at": now}
        if kind in FINAL:
            values.update(state=kind, ended_at=at)
        elif kind in ("START", "RUNNING") and (row is None or row.state not in FINAL):
            values["state"] = "RUNNING"  # a late START never reopens an ended run
        if kind == "START":
            values["started_at"] = at
        if row is None:
            c.execute(
                insert(lineage_runs).values(
                    run_id=run_id,
                    job_namespace=job["namespace"],
                    job_name=job["name"],
                    state=values.pop("state", "OTHER" if kind == "OTHER" else "RUNNING"),
                    **values,
                )
            )
        else:
            c.execute(update(lineage_runs).where(lineage_runs.c.run_id == run_id).values(**values))

    @staticmethod
    def _edge(
        c: Connection,
        job: Any,
        direction: str,
        dataset: dict[str, Any],
        run_id: str | None,
        now: float,
    ) -> None:
        where = and_(
            lineage_io.c.job_namespace == job["namespace"],
            lineage_io.c.job_name == job["name"],
            lineage_io.c.direction == direction,
            lineage_io.c.dataset_namespace == dataset["namespace"],
            lineage_io.c.dataset_name == dataset["name"],
        )
        if c.execute(select(lineage_io.c.last_seen).where(where)).first() is None:
            c.execute(
                insert(lineage_io).values(
                    job_namespace=job["namespace"],
                    job_name=job["name"],
                    direction=direction,
                    dataset_namespace=dataset["namespace"],
                    dataset_name=dataset["name"],
                    last_run_id=run_id,
                    last_seen=now,
                )
            )
        else:
            c.execute(update(lineage_io).where(where).values(last_run_id=run_id, last_seen=now))

    # -- reading ----------------------------------------------------------------------

    def jobs(self, *, limit: int, offset: int) -> tuple[builtins.list[dict[str, Any]], int]:
        with self._store.read() as c:
            total = c.execute(select(func.count()).select_from(lineage_jobs)).scalar() or 0
            rows = c.execute(
                select(lineage_jobs)
                .order_by(lineage_jobs.c.namespace, lineage_jobs.c.name)
                .limit(limit)
                .offset(offset)
            ).all()
            latest = (
                {
                    (r.job_namespace, r.job_name): r
                    for r in c.execute(
                        select(lineage_runs)
                        .where(
                            or_(
                                *(
                                    and_(
                                        lineage_runs.c.job_namespace == j.namespace,
                                        lineage_runs.c.job_name == j.name,
                                    )
                                    for j in rows
                                )
                            )
                        )
                        .order_by(lineage_runs.c.updated_at)
                    )
                }
                if rows
                else {}
            )
        out = []
        for r in rows:
            run = latest.get((r.namespace, r.name))
            out.append(
                {
                    "namespace": r.namespace,
                    "name": r.name,
                    "producer": r.producer,
                    "facets": json.loads(r.facets),
                    "first_seen": r.first_seen,
                    "last_seen": r.last_seen,
                    "latest_run": None
                    if run is None
                    else {"run_id": run.run_id, "state": run.state, "ended_at": run.ended_at},
                }
            )
        return out, int(total)

    def datasets(self, *, limit: int, offset: int) -> tuple[builtins.list[dict[str, Any]], int]:
        with self._store.read() as c:
            total = c.execute(select(func.count()).select_from(lineage_datasets)).scalar() or 0
            rows = c.execute(
                select(lineage_datasets)
                .order_by(lineage_datasets.c.namespace, lineage_datasets.c.name)
                .limit(limit)
                .offset(offset)
            ).all()
        return [
            {
                "namespace": r.namespace,
                "name": r.name,
                "facets": json.loads(r.facets),
                "first_seen": r.first_seen,
                "last_seen": r.last_seen,
            }
            for r in rows
        ], int(total)

    def runs(self, namespace: str, name: str) -> builtins.list[dict[str, Any]]:
        with self._store.read() as c:
            rows = c.execute(
                select(lineage_runs)
                .where(
                    and_(lineage_runs.c.job_namespace == namespace, lineage_runs.c.job_name == name)
                )
                .order_by(lineage_runs.c.updated_at.desc())
            ).all()
        return [
            {
                "run_id": r.run_id,
                "state": r.state,
                "started_at": r.started_at,
                "ended_at": r.ended_at,
            }
            for r in rows
        ]

    def event_count(self) -> int:
        with self._store.read() as c:
            return int(c.execute(select(func.count()).select_from(lineage_events)).scalar() or 0)

    def io(self) -> builtins.list[tuple[Node, Node]]:
        """Every known edge, as (from, to): dataset → job for inputs, job → dataset for
        outputs."""
        with self._store.read() as c:
            rows = c.execute(select(lineage_io)).all()
        out = []
        for r in rows:
            job = Node("job", r.job_namespace, r.job_name)
            dataset = Node("dataset", r.dataset_namespace, r.dataset_name)
            out.append((dataset, job) if r.direction == "in" else (job, dataset))
        return out


__all__ = ["FINAL", "STATES", "LineageRepository", "Node"]

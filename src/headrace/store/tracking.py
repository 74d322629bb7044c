"""Experiment tracking in the metadata store: experiments, and what runs logged.

A tracked run is a row of ``runs`` like a pipeline run (``trigger = 'tracking'`` for
one started outside a pipeline), so a training run and a pipeline run are the same
thing and share one lineage. Writes come in batches (``Tracked``), in the caller's
transaction when a pipeline step's batch carries them.
"""

from __future__ import annotations

import base64
import builtins
import functools
import json
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Connection,
    and_,
    bindparam,
    exists,
    func,
    insert,
    literal,
    not_,
    or_,
    select,
    update,
)

from headrace.core.ids import new_id
from headrace.core.search import All, AnyOf, Order, Term, parse_filter, parse_order
from headrace.core.tracking import Tracked, TrackingError
from headrace.store.schema import (
    experiments,
    latest_metrics,
    metric_values,
    run_artifacts,
    run_params,
    run_tags,
    runs,
)

if TYPE_CHECKING:
    from headrace.store.engine import MetadataStore

DEFAULT_EXPERIMENT = "default"


class ExperimentNotFoundError(TrackingError):
    pass


@dataclass(frozen=True, kw_only=True)
class ExperimentRecord:
    id: str
    name: str
    description: str | None
    created_at: float
    #: deleted through the MLflow API (restorable)
    deleted_at: float | None = None


@dataclass(frozen=True, kw_only=True)
class TrackedRun:
    """A run as search returns it: attributes, and the params, metrics and tags loaded."""

    id: str
    name: str | None
    experiment: str | None
    status: str
    trigger: str
    branch: str
    parent_run_id: str | None
    created_at: float
    ended_at: float | None
    params: dict[str, str]
    metrics: dict[str, float]
    tags: dict[str, str]
    experiment_id: str | None = None
    #: Each latest metric's step and time (loaded on request: ``with_metric_steps``).
    metric_steps: dict[str, int] = field(default_factory=dict)
    metric_times: dict[str, float] = field(default_factory=dict)
    #: deleted through the MLflow API (restorable)
    deleted_at: float | None = None


@dataclass(frozen=True, kw_only=True)
class SearchPage:
    runs: list[TrackedRun]
    next_page_token: str | None


@dataclass(frozen=True, kw_only=True)
class MetricPoint:
    key: str
    value: float
    step: int
    timestamp: float


def _metric_value(value: float) -> tuple[float | None, bool]:
    return (None, True) if math.isnan(value) else (value, False)


_INSERT_METRICS = insert(metric_values)


def write_tracked(c: Connection, dialect: str, run_id: str, data: Tracked) -> None:
    """Write a batch of what ``run_id`` logged, inside the caller's transaction."""
    from headrace.store.upsert import upsert_statement

    if data.params:
        existing = dict(
            c.execute(
                select(run_params.c.key, run_params.c.value).where(
                    and_(run_params.c.run_id == run_id, run_params.c.key.in_(list(data.params)))
                )
            ).all()
        )
        for key, value in data.params.items():
            if key in existing and existing[key] != value:
                raise TrackingError(
                    f"run {run_id[:16]}: param {key!r} is already {existing[key]!r} and cannot "
                    f"become {value!r}; params are fixed once logged (log a metric or a tag, "
                    "or start another run)"
                )
        new = [
            {"run_id": run_id, "key": k, "value": v, "num_value": _as_number(v)}
            for k, v in data.params.items()
            if k not in existing
        ]
        if new:
            c.execute(insert(run_params), new)
    if data.tags:
        c.execute(
            upsert_statement(dialect, run_tags, ("run_id", "key"), ("run_id", "key", "value")),
            [{"run_id": run_id, "key": k, "value": v} for k, v in data.tags.items()],
        )
    if data.metrics:
        rows = []
        latest: dict[str, tuple[int, float, float]] = {}
        for name, number, step, at in data.metrics:
            stored, nan = _metric_value(number)
            rows.append(
                {
                    "run_id": run_id,
                    "key": name,
                    "value": stored,
                    "is_nan": nan,
                    "step": step,
                    "timestamp": at,
                }
            )
            seen = latest.get(name)
            if seen is None or (step, at) >= (seen[0], seen[1]):
                latest[name] = (step, at, number)
        c.execute(_INSERT_METRICS, rows)
        _upsert_latest(c, dialect, run_id, latest)
    if data.artifacts:
        c.execute(
            upsert_statement(
                dialect,
                run_artifacts,
                ("run_id", "path"),
                ("run_id", "path", "blob", "size", "created_at"),
            ),
            [
                {"run_id": run_id, "path": p, "blob": b, "size": s, "created_at": at}
                for p, b, s, at in data.artifacts
            ],
        )


@functools.cache
def _latest_upsert(dialect: str) -> Any:
    """The upsert of ``latest_metrics`` (built once per dialect: building it costs more
    than running it)."""
    from headrace.store.upsert import _dialect

    columns = ("run_id", "key", "value", "is_nan", "step", "timestamp")
    statement = (
        _dialect(dialect).insert(latest_metrics).values({col: bindparam(col) for col in columns})
    )
    newer = or_(
        statement.excluded.step > latest_metrics.c.step,
        and_(
            statement.excluded.step == latest_metrics.c.step,
            statement.excluded.timestamp >= latest_metrics.c.timestamp,
        ),
    )
    return statement.on_conflict_do_update(
        index_elements=["run_id", "key"],
        set_={col: statement.excluded[col] for col in ("value", "is_nan", "step", "timestamp")},
        where=newer,
    )


def _upsert_latest(
    c: Connection, dialect: str, run_id: str, latest: dict[str, tuple[int, float, float]]
) -> None:
    """Keep each metric's latest value: the highest step, then the newest time."""
    statement = _latest_upsert(dialect)
    rows = []
    for key, (step, at, value) in latest.items():
        stored, nan = _metric_value(value)
        rows.append(
            {
                "run_id": run_id,
                "key": key,
                "value": stored,
                "is_nan": nan,
                "step": step,
                "timestamp": at,
            }
        )
    c.execute(statement, rows)


def file_under_default(c: Connection, dialect: str, run_id: str) -> None:
    """Put a pipeline run that logged something, and has no experiment, in ``default``."""
    from headrace.store.upsert import insert_ignore

    c.execute(
        insert_ignore(dialect, experiments),
        {
            "id": new_id(),
            "name": DEFAULT_EXPERIMENT,
            "description": None,
            "created_at": time.time(),
        },
    )
    default = select(experiments.c.id).where(experiments.c.name == DEFAULT_EXPERIMENT)
    c.execute(
        update(runs)
        .where(and_(runs.c.id == run_id, runs.c.experiment_id.is_(None)))
        .values(experiment_id=default.scalar_subquery())
    )


# -- the search language, compiled -----------------------------------------------------

_SCOPE_TABLES: dict[str, Any] = {"params": run_params, "tags": run_tags}


def _compare(column: Any, op: str, value: Any) -> Any:
    if op == "=":
        return column == value
    if op == "!=":
        return column != value
    if op == "<":
        return column < value
    if op == "<=":
        return column <= value
    if op == ">":
        return column > value
    if op == ">=":
        return column >= value
    if op == "LIKE":
        return column.like(value)
    if op == "ILIKE":
        return func.lower(column).like(func.lower(literal(value)))
    if op == "IN":
        return column.in_(list(value))
    if op == "NOT IN":
        return column.not_in(list(value))
    raise AssertionError(op)


def _as_number(text: str) -> float | None:
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _text_or_number(table: Any, op: str, value: Any) -> Any:
    """Params are text; a number compares them as numbers (params that read as one)."""
    numbers = value if isinstance(value, tuple) else (value,)
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in numbers)
    if numeric and "num_value" in table.c and op not in ("LIKE", "ILIKE"):
        return _compare(table.c.num_value, op, value)
    column = table.c.value
    if isinstance(value, tuple):
        value = tuple(str(v) for v in value)
    elif not isinstance(value, str):
        value = str(value)
    return _compare(column, op, value)


def _condition(node: Any) -> Any:
    if isinstance(node, All):
        return and_(*(_condition(p) for p in node.parts))
    if isinstance(node, AnyOf):
        return or_(*(_condition(p) for p in node.parts))
    assert isinstance(node, Term)
    if node.scope == "attributes":
        if node.key == "experiment":
            names = select(experiments.c.id)
            if node.op in ("IS NULL", "IS NOT NULL"):
                column = runs.c.experiment_id
                return column.is_(None) if node.op == "IS NULL" else column.is_not(None)
            return runs.c.experiment_id.in_(
                names.where(_compare(experiments.c.name, node.op, node.value))
            )
        column = runs.c.id if node.key == "run_id" else runs.c[node.key]
        if node.op == "IS NULL":
            return column.is_(None)
        if node.op == "IS NOT NULL":
            return column.is_not(None)
        return _compare(column, node.op, node.value)
    if node.scope == "metrics":
        table: Any = latest_metrics
        has = and_(table.c.run_id == runs.c.id, table.c.key == node.key)
        if node.op in ("IS NULL", "IS NOT NULL"):
            found = exists().where(has)
            return not_(found) if node.op == "IS NULL" else found
        return exists().where(and_(has, _compare(table.c.value, node.op, node.value)))
    table = _SCOPE_TABLES[node.scope]
    has = and_(table.c.run_id == runs.c.id, table.c.key == node.key)
    if node.op in ("IS NULL", "IS NOT NULL"):
        found = exists().where(has)
        return not_(found) if node.op == "IS NULL" else found
    return exists().where(and_(has, _text_or_number(table, node.op, node.value)))


def _order_columns(order: Order) -> list[Any]:
    if order.scope == "attributes":
        if order.key == "experiment":
            return [
                select(experiments.c.name)
                .where(experiments.c.id == runs.c.experiment_id)
                .scalar_subquery()
            ]
        return [runs.c.id if order.key == "run_id" else runs.c[order.key]]
    table: Any = latest_metrics if order.scope == "metrics" else _SCOPE_TABLES[order.scope]
    # params sort as numbers where they read as numbers, then as text
    values = [table.c.num_value, table.c.value] if "num_value" in table.c else [table.c.value]
    return [
        select(value)
        .where(and_(table.c.run_id == runs.c.id, table.c.key == order.key))
        .scalar_subquery()
        for value in values
    ]


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def _offset(token: str | None) -> int:
    if not token:
        return 0
    try:
        offset = json.loads(base64.urlsafe_b64decode(token.encode()))["offset"]
    except Exception as exc:
        raise TrackingError(f"page token {token!r} is not one this store gave out") from exc
    if not isinstance(offset, int) or offset < 0:
        raise TrackingError(f"page token {token!r} is not one this store gave out")
    return offset


class TrackingRepository:
    def __init__(self, store: MetadataStore) -> None:
        self._store = store

    @property
    def _dialect(self) -> str:
        return self._store.engine.dialect.name

    # -- experiments ------------------------------------------------------------------

    def experiment(self, name: str, *, create: bool = True) -> ExperimentRecord:
        """The experiment named ``name``, made on first use when ``create``."""
        if not isinstance(name, str) or not name.strip() or len(name) > 200:
            raise TrackingError(f"experiment name {name!r}: expected 1 to 200 characters")
        with self._store.read() as c:
            row = c.execute(select(experiments).where(experiments.c.name == name)).first()
        if row is None:
            if not create:
                known = [e.name for e in self.experiments()]
                from headrace.core.graph import suggest

                raise ExperimentNotFoundError(f"no experiment named {name!r}{suggest(name, known)}")
            from headrace.store.upsert import insert_ignore

            with self._store.write() as c:
                c.execute(
                    insert_ignore(self._dialect, experiments),
                    {"id": new_id(), "name": name, "description": None, "created_at": time.time()},
                )
                row = c.execute(select(experiments).where(experiments.c.name == name)).first()
        assert row is not None
        return ExperimentRecord(**dict(row._mapping))

    def run_counts(self) -> dict[str, int]:
        """Experiment id → its number of runs."""
        with self._store.read() as c:
            rows = c.execute(
                select(runs.c.experiment_id, func.count())
                .where(runs.c.experiment_id.is_not(None))
                .group_by(runs.c.experiment_id)
            ).all()
        return {k: int(n) for k, n in rows}

    def experiments(self, *, deleted: bool | None = False) -> builtins.list[ExperimentRecord]:
        """Experiments, oldest first: active ones (``deleted`` False), deleted ones
        (True) or all (None)."""
        query = select(experiments).order_by(experiments.c.created_at)
        if deleted is not None:
            gone = experiments.c.deleted_at.is_not(None)
            query = query.where(gone if deleted else experiments.c.deleted_at.is_(None))
        with self._store.read() as c:
            rows = c.execute(query).all()
        return [ExperimentRecord(**dict(r._mapping)) for r in rows]

    def tags_of(self, table: Any, **key: Any) -> dict[str, str]:
        """The tags kept in ``table`` (experiment, model or model-version tags) for the
        row ``key`` names."""
        query = select(table.c.key, table.c.value).where(
            *(table.c[name] == value for name, value in key.items())
        )
        with self._store.read() as c:
            return {k: v for k, v in c.execute(query.order_by(table.c.key)).all()}

    # -- runs -------------------------------------------------------------------------

    def start(
        self,
        *,
        experiment_id: str,
        name: str | None,
        parent_run_id: str | None,
        branch: str = "main",
        host: str | None = None,
        pid: int | None = None,
    ) -> str:
        run_id = new_id()
        now = time.time()
        with self._store.write() as c:
            c.execute(
                insert(runs).values(
                    id=run_id,
                    status="running",
                    selection="",
                    params="{}",
                    partitions=None,
                    branch=branch,
                    trigger="tracking",
                    executor="none",
                    max_concurrency=1,
                    force=False,
                    host=host,
                    pid=pid,
                    plan="[]",
                    created_at=now,
                    started_at=now,
                    experiment_id=experiment_id,
                    parent_run_id=parent_run_id,
                    name=name,
                )
            )
        return run_id

    def write(self, run_id: str, data: Tracked, *, status: str | None = None) -> None:
        """Write a batch (and optionally end the run) in one transaction."""
        with self._store.write() as c:
            if data:
                write_tracked(c, self._dialect, run_id, data)
            if status is not None:
                c.execute(
                    update(runs)
                    .where(runs.c.id == run_id)
                    .values(status=status, ended_at=time.time())
                )

    def set_experiment(self, run_id: str, experiment_id: str) -> None:
        with self._store.write() as c:
            c.execute(update(runs).where(runs.c.id == run_id).values(experiment_id=experiment_id))

    def params(self, run_id: str) -> dict[str, str]:
        with self._store.read() as c:
            rows = c.execute(
                select(run_params.c.key, run_params.c.value).where(run_params.c.run_id == run_id)
            ).all()
        return {k: v for k, v in rows}

    def tags(self, run_id: str) -> dict[str, str]:
        with self._store.read() as c:
            rows = c.execute(
                select(run_tags.c.key, run_tags.c.value).where(run_tags.c.run_id == run_id)
            ).all()
        return {k: v for k, v in rows}

    def metrics(self, run_id: str) -> dict[str, float]:
        """Each metric's latest value."""
        with self._store.read() as c:
            rows = c.execute(
                select(latest_metrics.c.key, latest_metrics.c.value, latest_metrics.c.is_nan).where(
                    latest_metrics.c.run_id == run_id
                )
            ).all()
        return {k: math.nan if nan else v for k, v, nan in rows}

    def metric_history(
        self, run_ids: Iterable[str], keys: Iterable[str] | None = None
    ) -> builtins.list[tuple[str, MetricPoint]]:
        """(run id, point) for every logged value, by run, key and step."""
        ids = builtins.list(run_ids)
        query = select(metric_values).where(metric_values.c.run_id.in_(ids))
        if keys is not None:
            query = query.where(metric_values.c.key.in_(builtins.list(keys)))
        query = query.order_by(
            metric_values.c.run_id, metric_values.c.key, metric_values.c.step, metric_values.c.id
        )
        with self._store.read() as c:
            rows = c.execute(query).all()
        return [
            (
                r.run_id,
                MetricPoint(
                    key=r.key,
                    value=math.nan if r.is_nan else r.value,
                    step=r.step,
                    timestamp=r.timestamp,
                ),
            )
            for r in rows
        ]

    def artifacts(self, run_id: str) -> builtins.list[tuple[str, str, int]]:
        with self._store.read() as c:
            rows = c.execute(
                select(run_artifacts.c.path, run_artifacts.c.blob, run_artifacts.c.size)
                .where(run_artifacts.c.run_id == run_id)
                .order_by(run_artifacts.c.path)
            ).all()
        return [(p, b, s) for p, b, s in rows]

    # -- search -----------------------------------------------------------------------

    def search(
        self,
        *,
        experiments_: Sequence[str] | None = None,
        filter: str | None = None,
        order_by: str | None = None,
        max_results: int = 100,
        page_token: str | None = None,
        columns: Sequence[str] | None = None,
        experiment_ids: Sequence[str] | None = None,
        run_ids: Sequence[str] | None = None,
        with_metric_steps: bool = False,
        deleted: bool | None = False,
    ) -> SearchPage:
        """Runs matching ``filter`` (see :mod:`headrace.core.search`), a page at a time.

        ``columns`` (``metrics.auc``, ``params.lr``, ``params.*``, ...) limits the
        params, metrics and tags loaded to those named; None loads all of them.
        ``deleted``: active runs only (False), deleted ones only (True), or all (None).
        """
        from headrace.core.search import parse_key

        if not isinstance(max_results, int) or not 1 <= max_results <= 50_000:
            raise TrackingError(f"max_results must be 1 to 50000, got {max_results!r}")
        tree = parse_filter(filter)
        orders = parse_order(order_by)
        offset = _offset(page_token)
        query = select(
            runs.c.id,
            runs.c.name,
            runs.c.experiment_id,
            runs.c.status,
            runs.c.trigger,
            runs.c.branch,
            runs.c.parent_run_id,
            runs.c.created_at,
            runs.c.ended_at,
            runs.c.deleted_at,
        )
        if experiments_ is not None:
            ids = [self.experiment(name, create=False).id for name in experiments_]
            query = query.where(runs.c.experiment_id.in_(ids))
        if experiment_ids is not None:
            query = query.where(runs.c.experiment_id.in_(builtins.list(experiment_ids)))
        if run_ids is not None:
            query = query.where(runs.c.id.in_(builtins.list(run_ids)))
        if deleted is not None:
            gone = runs.c.deleted_at.is_not(None)
            query = query.where(gone if deleted else runs.c.deleted_at.is_(None))
        if tree is not None:
            query = query.where(_condition(tree))
        ordering: list[Any] = []
        for order in orders:
            for column in _order_columns(order):
                ordering.append(column.is_(None))  # runs without the key last
                ordering.append(column.desc() if order.descending else column.asc())
        ordering += [runs.c.created_at.desc(), runs.c.id.desc()]
        query = query.order_by(*ordering).limit(max_results + 1).offset(offset)
        wanted: dict[str, set[str] | None] = {"params": None, "metrics": None, "tags": None}
        if columns is not None:
            wanted = {"params": set(), "metrics": set(), "tags": set()}
            for column in columns:
                head, _, key = column.partition(".")
                if key == "*":
                    from headrace.core.search import SCOPES

                    scope = SCOPES.get(head.lower(), "")
                    if scope not in wanted:
                        raise TrackingError(f"cannot load column {column!r}")
                    wanted[scope] = None
                    continue
                scope, key = parse_key(column)
                bucket = wanted.get(scope)
                if scope != "attributes" and bucket is not None:
                    bucket.add(key)
        with self._store.read() as c:
            rows = c.execute(query).all()
            more = len(rows) > max_results
            rows = rows[:max_results]
            ids = [r[0] for r in rows]
            names = dict(c.execute(select(experiments.c.id, experiments.c.name)).all())
            # a long page is matched by the page's own query, not by a list of its ids
            page = query.with_only_columns(runs.c.id) if len(ids) >= 500 else None
            steps: dict[str, dict[str, tuple[int, float]]] = {}
            loaded = {
                scope: self._load(c, scope, ids, keys, page, steps if with_metric_steps else None)
                for scope, keys in wanted.items()
            }
        params, metrics, tags = loaded["params"], loaded["metrics"], loaded["tags"]
        return SearchPage(
            runs=[
                TrackedRun(
                    id=run_id,
                    name=name,
                    experiment=names.get(experiment_id),
                    status=status,
                    trigger=trigger,
                    branch=branch,
                    parent_run_id=parent,
                    created_at=created,
                    ended_at=ended,
                    params=params.get(run_id, {}),
                    metrics=metrics.get(run_id, {}),
                    tags=tags.get(run_id, {}),
                    experiment_id=experiment_id,
                    metric_steps={k: v[0] for k, v in steps.get(run_id, {}).items()},
                    metric_times={k: v[1] for k, v in steps.get(run_id, {}).items()},
                    deleted_at=deleted_at,
                )
                for (
                    run_id,
                    name,
                    experiment_id,
                    status,
                    trigger,
                    branch,
                    parent,
                    created,
                    ended,
                    deleted_at,
                ) in rows
            ],
            next_page_token=_token(offset + max_results) if more else None,
        )

    def latest_runs(self, run_ids: Sequence[str]) -> builtins.list[TrackedRun]:
        """The runs named, as search returns them (with metric steps and times)."""
        ids = builtins.list(run_ids)
        if not ids:
            return []
        page = self.search(run_ids=ids, max_results=len(ids), with_metric_steps=True, deleted=None)
        return page.runs

    @staticmethod
    def _load(
        c: Connection,
        scope: str,
        ids: builtins.list[str],
        keys: set[str] | None,
        page: Any = None,
        steps: dict[str, dict[str, tuple[int, float]]] | None = None,
    ) -> dict[str, dict[str, Any]]:
        """Each run's values of ``scope``; for metrics, their steps and times into
        ``steps`` when it is given."""
        out: dict[str, dict[str, Any]] = {}
        if not ids or (keys is not None and not keys):
            return out
        table: Any = latest_metrics if scope == "metrics" else _SCOPE_TABLES[scope]
        columns = [table.c.run_id, table.c.key, table.c.value]
        if scope == "metrics":
            columns.append(table.c.is_nan)
            if steps is not None:
                columns += [table.c.step, table.c.timestamp]
        if page is not None:
            condition = table.c.run_id.in_(page.subquery().select())
        else:
            condition = table.c.run_id.in_(ids)
        query = select(*columns).where(condition)
        if keys is not None:
            query = query.where(table.c.key.in_(sorted(keys)))
        result = c.execute(query).all()  # one fetch: far less per-row work
        if scope == "metrics" and steps is not None:
            for run_id, key, value, nan, step, at in result:
                out.setdefault(run_id, {})[key] = math.nan if nan else value
                steps.setdefault(run_id, {})[key] = (step, at)
        elif scope == "metrics":
            for run_id, key, value, nan in result:
                out.setdefault(run_id, {})[key] = math.nan if nan else value
        else:
            for run_id, key, value in result:
                out.setdefault(run_id, {})[key] = value
        return out


__all__ = [
    "DEFAULT_EXPERIMENT",
    "ExperimentNotFoundError",
    "ExperimentRecord",
    "MetricPoint",
    "SearchPage",
    "Tracked",
    "TrackedRun",
    "TrackingError",
    "TrackingRepository",
    "write_tracked",
]

"""The prediction log: written in batches by servers, labeled later, read by monitors."""

from __future__ import annotations

import builtins
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, func, insert, select, update

from headrace.store.schema import predictions

if TYPE_CHECKING:
    from headrace.store.engine import MetadataStore

_INSERT = insert(predictions)


@dataclass(frozen=True, kw_only=True)
class PredictionRecord:
    id: str
    request_id: str
    model: str
    version: int
    role: str
    row: int
    key: str | None
    inputs: dict[str, Any]
    output: Any
    latency_ms: float
    created_at: float
    label: Any
    labeled_at: float | None
    score: float | None = None

    @classmethod
    def from_row(cls, row: Any) -> PredictionRecord:
        m = dict(row._mapping)
        m["inputs"] = json.loads(m["inputs"])
        m["output"] = json.loads(m["output"])
        m["label"] = None if m["label"] is None else json.loads(m["label"])
        return cls(**m)


class PredictionRepository:
    def __init__(self, store: MetadataStore) -> None:
        self._store = store
        self._compiled: dict[str, Any] = {}

    def write(self, rows: Sequence[dict[str, Any]]) -> None:
        """Insert logged predictions (columns of ``predictions``; JSON already encoded).

        The statement is compiled once per database and the rows go to the driver's
        ``executemany`` as they are: a server logs thousands of rows a second, and
        SQLAlchemy's per-row parameter processing would cost more than the insert."""
        if not rows:
            return
        with self._store.write() as c:
            compiled = self._compiled.get(c.dialect.name)
            if compiled is None:
                compiled = _INSERT.compile(dialect=c.dialect)
                self._compiled[c.dialect.name] = compiled
            order = compiled.positiontup
            if order is not None:  # a positional paramstyle (SQLite's ?)
                c.exec_driver_sql(str(compiled), [tuple(row[k] for k in order) for row in rows])
            else:  # a named one (psycopg's %(name)s)
                c.exec_driver_sql(str(compiled), list(rows))

    def present(self, ids: Sequence[str]) -> set[str]:
        """Which of ``ids`` are logged already."""
        found: set[str] = set()
        unique = sorted(set(ids))
        with self._store.read() as c:
            for start in range(0, len(unique), 500):  # bounded IN lists
                chunk = unique[start : start + 500]
                found.update(
                    c.execute(select(predictions.c.id).where(predictions.c.id.in_(chunk))).scalars()
                )
        return found

    def count(self, model: str | None = None, *, role: str | None = None) -> int:
        query = select(func.count()).select_from(predictions)
        if model is not None:
            query = query.where(predictions.c.model == model)
        if role is not None:
            query = query.where(predictions.c.role == role)
        with self._store.read() as c:
            return int(c.execute(query).scalar() or 0)

    def list(
        self,
        model: str,
        *,
        request_id: str | None = None,
        since: float | None = None,
        limit: int = 1000,
        latest: bool = False,
    ) -> builtins.list[PredictionRecord]:
        """Logged rows of ``model``, oldest first; with ``latest``, the newest ``limit``
        rows, newest first."""
        query = select(predictions).where(predictions.c.model == model)
        if request_id is not None:
            query = query.where(predictions.c.request_id == request_id)
        if since is not None:
            query = query.where(predictions.c.created_at >= since)
        order = (predictions.c.created_at, predictions.c.row)
        query = query.order_by(*(c.desc() for c in order) if latest else order).limit(limit)
        with self._store.read() as c:
            return [PredictionRecord.from_row(r) for r in c.execute(query)]

    def since(
        self,
        model: str,
        *,
        after: float | None = None,
        until: float | None = None,
        roles: Sequence[str] = ("served", "canary"),
    ) -> builtins.list[tuple[Any, ...]]:
        """Logged rows of ``model`` created after ``after`` (and at or before ``until``),
        oldest first: ``(created_at, version, inputs, output, score, label)`` with the
        JSON columns still encoded (monitors decode them in bulk)."""
        c_ = predictions.c
        query = select(c_.created_at, c_.version, c_.inputs, c_.output, c_.score, c_.label).where(
            c_.model == model, c_.role.in_(list(roles))
        )
        if after is not None:
            query = query.where(c_.created_at > after)
        if until is not None:
            query = query.where(c_.created_at <= until)
        query = query.order_by(c_.created_at, c_.id)
        with self._store.read() as c:
            return [tuple(r) for r in c.execute(query)]

    def label(
        self,
        model: str,
        labels: Sequence[tuple[str, Any]],
        *,
        by: str = "request_id",
    ) -> int:
        """Attach ground truth: (request id or key, label) pairs; returns rows labeled.
        A request of several rows takes one label per row with ``request_id:row``."""
        if by not in ("request_id", "key"):
            raise ValueError(f"label by 'request_id' or 'key', not {by!r}")
        from headrace.core.deadletters import LABELS
        from headrace.store.deadletters import IsolatingWriter
        from headrace.store.errors import StoreUnreachableError
        from headrace.store.failures import refusal

        now = time.time()
        done: list[int] = []

        def write(batch: builtins.list[tuple[str, Any]]) -> None:
            with self._store.write() as c:
                count = sum(self._label(c, model, ident, value, by, now) for ident, value in batch)
            done.append(count)  # only once committed

        def payload(pair: tuple[str, Any]) -> dict[str, Any]:
            return {"model": model, "by": by, "id": pair[0], "label": pair[1]}

        # A label the database refuses (a NUL byte, a value JSON cannot hold) is kept as a
        # dead letter; the others are attached.
        outcome = IsolatingWriter(self._store, LABELS, write, payload).write(list(labels))
        if outcome.error is not None:
            raise StoreUnreachableError(
                f"the metadata store could not be reached ({refusal(outcome.error)}); "
                f"{len(outcome.unwritten):,} labels of {model!r} are not attached: attach "
                "them again once it answers (attaching a label twice is harmless)"
            ) from outcome.error
        return sum(done)

    @staticmethod
    def _label(c: Any, model: str, ident: str, value: Any, by: str, now: float) -> int:
        encoded = json.dumps(value)
        request, _, row = ident.rpartition(":")
        if by == "key":
            where = and_(predictions.c.model == model, predictions.c.key == ident)
        elif request and row.isdigit():
            where = and_(
                predictions.c.model == model,
                predictions.c.request_id == request,
                predictions.c.row == int(row),
            )
        else:
            where = and_(predictions.c.model == model, predictions.c.request_id == ident)
        result = c.execute(update(predictions).where(where).values(label=encoded, labeled_at=now))
        return int(result.rowcount or 0)

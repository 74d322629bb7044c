"""Monitor results: one row per evaluated window, its results, alerts, and the reference
profiles monitors compare against (so the training data is read once)."""

from __future__ import annotations

import builtins
import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, delete, func, insert, select

from headrace.store.schema import (
    monitor_alerts,
    monitor_references,
    monitor_results,
    monitor_windows,
)

if TYPE_CHECKING:
    from headrace.store.engine import MetadataStore


@dataclass(frozen=True)
class WindowRecord:
    id: str
    monitor: str
    model: str | None
    version: int | None
    asset_version: str | None
    start: float
    end: float
    rows: int
    labeled: int
    status: str
    drift_share: float | None
    evaluated_at: float
    reference: str | None


@dataclass(frozen=True)
class ResultRecord:
    window_id: str
    kind: str
    name: str
    method: str | None
    value: float | None
    p_value: float | None
    threshold: float | None
    baseline: float | None
    breached: bool
    estimated: bool


@dataclass(frozen=True)
class AlertRecord:
    id: str
    monitor: str
    key: str
    window_id: str
    message: str
    payload: dict[str, Any]
    created_at: float
    suppressed: bool
    outcomes: list[dict[str, Any]]


class MonitorRepository:
    def __init__(self, store: MetadataStore) -> None:
        self._store = store

    # -- windows and results ----------------------------------------------------------

    def save_window(self, window: WindowRecord, results: builtins.list[ResultRecord]) -> None:
        """Store a window and its results together (evaluating it again replaces both)."""
        with self._store.write() as c:
            c.execute(delete(monitor_results).where(monitor_results.c.window_id == window.id))
            c.execute(delete(monitor_windows).where(monitor_windows.c.id == window.id))
            c.execute(insert(monitor_windows), [window.__dict__])
            if results:
                c.execute(insert(monitor_results), [r.__dict__ for r in results])

    def last_end(self, monitor: str) -> float | None:
        query = select(func.max(monitor_windows.c.end)).where(monitor_windows.c.monitor == monitor)
        with self._store.read() as c:
            value = c.execute(query).scalar()
        return None if value is None else float(value)

    def evaluated_versions(self, monitor: str) -> set[str]:
        query = select(monitor_windows.c.asset_version).where(
            monitor_windows.c.monitor == monitor, monitor_windows.c.asset_version.is_not(None)
        )
        with self._store.read() as c:
            return {str(v) for (v,) in c.execute(query)}

    def windows(self, monitor: str, *, limit: int | None = None) -> builtins.list[WindowRecord]:
        """The monitor's windows, oldest first (the last ``limit`` when given)."""
        query = (
            select(monitor_windows)
            .where(monitor_windows.c.monitor == monitor)
            .order_by(monitor_windows.c.end.desc())
        )
        if limit is not None:
            query = query.limit(limit)
        with self._store.read() as c:
            rows = [WindowRecord(**dict(r._mapping)) for r in c.execute(query)]
        return rows[::-1]

    def results(self, window_ids: builtins.list[str]) -> builtins.list[ResultRecord]:
        if not window_ids:
            return []
        query = select(monitor_results).where(monitor_results.c.window_id.in_(window_ids))
        with self._store.read() as c:
            return [ResultRecord(**dict(r._mapping)) for r in c.execute(query)]

    def monitors(self) -> dict[str, tuple[int, float | None]]:
        """Every monitor with stored windows: (windows, last end)."""
        query = select(
            monitor_windows.c.monitor, func.count(), func.max(monitor_windows.c.end)
        ).group_by(monitor_windows.c.monitor)
        with self._store.read() as c:
            return {m: (int(n), last) for m, n, last in c.execute(query)}

    # -- reference profiles -----------------------------------------------------------

    def reference(self, monitor: str, key: str) -> dict[str, Any] | None:
        query = select(monitor_references.c.profile).where(
            and_(monitor_references.c.monitor == monitor, monitor_references.c.reference == key)
        )
        with self._store.read() as c:
            value = c.execute(query).scalar()
        return None if value is None else dict(json.loads(value))

    def save_reference(self, monitor: str, key: str, profile: dict[str, Any]) -> None:
        with self._store.write() as c:
            c.execute(
                delete(monitor_references).where(
                    and_(
                        monitor_references.c.monitor == monitor,
                        monitor_references.c.reference == key,
                    )
                )
            )
            c.execute(
                insert(monitor_references),
                [
                    {
                        "monitor": monitor,
                        "reference": key,
                        "profile": json.dumps(profile),
                        "created_at": time.time(),
                    }
                ],
            )

    # -- alerts -----------------------------------------------------------------------

    def last_alert(self, monitor: str, key: str) -> float | None:
        """When an alert with ``key`` was last sent (suppressed ones do not count)."""
        query = select(func.max(monitor_alerts.c.created_at)).where(
            monitor_alerts.c.monitor == monitor,
            monitor_alerts.c.key == key,
            monitor_alerts.c.suppressed.is_(False),
        )
        with self._store.read() as c:
            value = c.execute(query).scalar()
        return None if value is None else float(value)

    def add_alert(self, alert: AlertRecord, *, once: bool = False) -> bool:
        """Store an alert; with ``once``, only if no alert has its id yet (an id derived
        from what it is about). Whether it was stored."""
        row = dict(alert.__dict__)
        row["payload"] = json.dumps(alert.payload, default=str)
        row["outcomes"] = json.dumps(alert.outcomes, default=str)
        with self._store.write_one() as c:
            if not once:
                c.execute(insert(monitor_alerts), [row])
                return True
            from headrace.store.upsert import insert_ignore

            made = c.execute(
                insert_ignore(c.dialect.name, monitor_alerts).returning(monitor_alerts.c.id), row
            ).first()
            return made is not None

    def alerts(self, monitor: str | None = None, *, limit: int = 50) -> builtins.list[AlertRecord]:
        query = select(monitor_alerts).order_by(monitor_alerts.c.created_at.desc()).limit(limit)
        if monitor is not None:
            query = query.where(monitor_alerts.c.monitor == monitor)
        with self._store.read() as c:
            out = []
            for r in c.execute(query):
                m = dict(r._mapping)
                m["payload"] = json.loads(m["payload"])
                m["outcomes"] = json.loads(m["outcomes"])
                out.append(AlertRecord(**m))
        return out

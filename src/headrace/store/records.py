"""Plain records the repositories return."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, kw_only=True)
class RunRecord:
    id: str
    status: str
    selection: str
    params: dict[str, Any]
    partitions: list[str] | None
    branch: str
    trigger: str
    executor: str
    max_concurrency: int
    force: bool
    host: str | None
    pid: int | None
    plan: list[list[Any]]
    created_at: float
    started_at: float | None = None
    ended_at: float | None = None
    error: str | None = None
    #: when its process last said it was alive (pipeline runs)
    heartbeat_at: float | None = None

    @classmethod
    def from_row(cls, row: Any) -> RunRecord:
        m = row._mapping
        return cls(
            id=m["id"],
            status=m["status"],
            selection=m["selection"],
            params=json.loads(m["params"] or "{}"),
            partitions=None if m["partitions"] is None else json.loads(m["partitions"]),
            branch=m["branch"],
            trigger=m["trigger"],
            executor=m["executor"],
            max_concurrency=m["max_concurrency"],
            force=bool(m["force"]),
            host=m["host"],
            pid=m["pid"],
            plan=json.loads(m["plan"]),
            created_at=m["created_at"],
            started_at=m["started_at"],
            ended_at=m["ended_at"],
            error=m["error"],
            heartbeat_at=m.get("heartbeat_at"),
        )

    @property
    def duration_s(self) -> float | None:
        if self.started_at is None or self.ended_at is None:
            return None
        return self.ended_at - self.started_at


@dataclass(frozen=True, kw_only=True)
class StepRecord:
    run_id: str
    key: str
    asset: str
    partition: str | None
    position: int
    status: str
    attempts: int = 0
    started_at: float | None = None
    ended_at: float | None = None
    duration_s: float | None = None
    version_id: str | None = None
    cache_key: str | None = None
    reason: str | None = None
    error: str | None = None
    traceback: str | None = None

    @classmethod
    def from_row(cls, row: Any) -> StepRecord:
        return cls(**dict(row._mapping))


@dataclass(frozen=True, kw_only=True)
class VersionRecord:
    """One immutable materialization of an asset (or of one of its partitions)."""

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
    run_id: str | None
    step_key: str | None
    code_version: str | None
    params: dict[str, Any]
    cache_key: str | None
    created_at: float
    inputs: dict[str, list[str]] = field(default_factory=dict)
    stats: dict[str, Any] | None = None
    primary_key: tuple[str, ...] = ()

    @classmethod
    def from_row(cls, row: Any) -> VersionRecord:
        m = row._mapping
        return cls(
            id=m["id"],
            asset=m["asset"],
            partition=m["partition"] or None,
            kind=m["kind"],
            format=m["format"],
            flavor=m["flavor"],
            blob=m["blob"],
            size=m["size"],
            row_count=m["row_count"],
            schema=None if m["schema"] is None else json.loads(m["schema"]),
            run_id=m["run_id"],
            step_key=m["step_key"],
            code_version=m["code_version"],
            params=json.loads(m["params"] or "{}"),
            cache_key=m["cache_key"],
            created_at=m["created_at"],
            stats=json.loads(m["stats"]) if m.get("stats") else None,
            primary_key=tuple(json.loads(m["primary_key"])) if m.get("primary_key") else (),
        )


@dataclass(frozen=True, kw_only=True)
class LogRecord:
    step_key: str
    attempt: int
    stream: str
    created_at: float
    text: str

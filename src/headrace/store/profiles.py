"""Column profiles kept with the versions they describe, and the history of check
results with their control limits (for control charts)."""

from __future__ import annotations

import builtins
import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import func, select

from headrace.store.schema import asset_versions, check_results, profiles
from headrace.store.upsert import upsert_statement

if TYPE_CHECKING:
    from headrace.store.engine import MetadataStore


class _Version(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def asset(self) -> str: ...
    @property
    def partition(self) -> str | None: ...


class _Profile(Protocol):
    @property
    def rows(self) -> int: ...
    @property
    def seconds(self) -> float: ...

    def to_dict(self) -> dict[str, Any]: ...


@dataclass(frozen=True, kw_only=True)
class ProfileRecord:
    """A stored profile: ``profile`` is its JSON form (``TableProfile.from_dict`` reads it)."""

    version_id: str
    asset: str
    partition: str | None
    rows: int
    profile: dict[str, Any]
    seconds: float
    created_at: float

    @classmethod
    def from_row(cls, row: Any) -> ProfileRecord:
        m = row._mapping
        return cls(
            version_id=m["version_id"],
            asset=m["asset"],
            partition=m["partition"] or None,
            rows=int(m["rows"]),
            profile=json.loads(m["profile"]),
            seconds=float(m["seconds"]),
            created_at=float(m["created_at"]),
        )


@dataclass(frozen=True, kw_only=True)
class CheckPoint:
    """One check's latest result on one version: a point of its control chart.

    ``lower`` and ``upper`` are the limits the value was judged against, when recorded.
    """

    version_id: str
    partition: str | None
    name: str
    kind: str
    severity: str
    passed: bool
    observed: Any
    threshold: str
    failing_rows: int | None
    lower: float | None
    upper: float | None
    checked_at: float
    version_created_at: float


class ProfileRepository:
    def __init__(self, store: MetadataStore) -> None:
        self._store = store

    def save(self, version: _Version, profile: _Profile, *, at: float | None = None) -> None:
        """Store ``profile`` as the profile of ``version``, replacing an earlier one."""
        row = {
            "version_id": version.id,
            "asset": version.asset,
            "partition": version.partition or "",
            "rows": int(profile.rows),
            "profile": json.dumps(profile.to_dict(), default=str),
            "seconds": float(profile.seconds),
            "created_at": time.time() if at is None else at,
        }
        statement = upsert_statement(self._store.dialect, profiles, ["version_id"], list(row))
        with self._store.write() as c:
            c.execute(statement, row)

    def get(self, version_id: str) -> ProfileRecord | None:
        """The stored profile of a version, or None when it was never profiled."""
        with self._store.read() as c:
            row = c.execute(select(profiles).where(profiles.c.version_id == version_id)).first()
        return None if row is None else ProfileRecord.from_row(row)

    def history(self, asset: str, *, limit: int = 100) -> builtins.list[ProfileRecord]:
        """The latest ``limit`` profiles of an asset's versions, oldest first."""
        query = (
            select(profiles)
            .where(profiles.c.asset == asset)
            .order_by(profiles.c.created_at.desc(), profiles.c.version_id.desc())
            .limit(limit)
        )
        with self._store.read() as c:
            rows = c.execute(query).all()
        return [ProfileRecord.from_row(r) for r in reversed(rows)]

    def check_history(self, asset: str, *, limit: int = 200) -> builtins.list[CheckPoint]:
        """Each check's result per version of ``asset`` (the latest when a version was
        checked again), for the ``limit`` newest versions per check, oldest version first.
        """
        cr = check_results
        latest = (
            select(
                cr,
                asset_versions.c.created_at.label("version_created_at"),
                func.row_number()
                .over(
                    partition_by=(cr.c.version_id, cr.c.check_name),
                    order_by=(cr.c.created_at.desc(), cr.c.id.desc()),
                )
                .label("recency"),
            )
            .join(asset_versions, asset_versions.c.id == cr.c.version_id)
            .where(cr.c.asset == asset)
            .subquery()
        )
        ranked = (
            select(
                latest,
                func.row_number()
                .over(
                    partition_by=latest.c.check_name,
                    order_by=(latest.c.version_created_at.desc(), latest.c.version_id.desc()),
                )
                .label("position"),
            )
            .where(latest.c.recency == 1)
            .subquery()
        )
        query = (
            select(ranked)
            .where(ranked.c.position <= limit)
            .order_by(ranked.c.version_created_at, ranked.c.version_id, ranked.c.check_name)
        )
        with self._store.read() as c:
            rows = c.execute(query).all()
        return [_point(r) for r in rows]


def _point(row: Any) -> CheckPoint:
    m = row._mapping
    return CheckPoint(
        version_id=m["version_id"],
        partition=m["partition"] or None,
        name=m["check_name"],
        kind=m["kind"],
        severity=m["severity"],
        passed=bool(m["passed"]),
        observed=json.loads(m["observed"]) if m["observed"] else None,
        threshold=m["threshold"],
        failing_rows=m["failing_rows"],
        lower=m["lower"],
        upper=m["upper"],
        checked_at=float(m["created_at"]),
        version_created_at=float(m["version_created_at"]),
    )

"""Check results per version, and the quarantine of versions that failed them."""

from __future__ import annotations

import builtins
import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, and_, insert, select, update

from headrace.store.errors import StoreError, VersionNotFoundError
from headrace.store.schema import check_results, quarantine

if TYPE_CHECKING:
    from headrace.store.engine import MetadataStore
    from headrace.store.runs import NewVersion, StepBatch

_INSERT_RESULTS = insert(check_results)


def record_checks(
    c: Connection, run_id: str | None, versions: Sequence[tuple[NewVersion, str, float]]
) -> None:
    rows = [
        {
            "version_id": version.id,
            "asset": version.asset,
            "partition": version.partition or "",
            "run_id": run_id,
            "check_name": r["name"],
            "kind": r["kind"],
            "columns": json.dumps(list(r["columns"])),
            "severity": r["severity"],
            "passed": bool(r["passed"]),
            "observed": json.dumps(r["observed"], default=str),
            "threshold": r["threshold"],
            "failing_rows": r["failing_rows"],
            "failing_fraction": r["failing_fraction"],
            "sample": json.dumps(r["sample"], default=str) if r["sample"] else None,
            "message": r["message"],
            "created_at": at,
            "lower": r.get("lower"),
            "upper": r.get("upper"),
        }
        for version, _, at in versions
        for r in version.check_results
    ]
    if rows:
        c.execute(_INSERT_RESULTS, rows)


def hold(c: Connection, batch: StepBatch, version: NewVersion, at: float) -> None:
    """Put a version in quarantine (inside the batch's transaction)."""
    c.execute(
        insert(quarantine).values(
            version_id=version.id,
            branch=batch.branch,
            asset=version.asset,
            partition=version.partition or "",
            run_id=batch.run_id,
            reason=version.quarantine_reason or "",
            status="held",
            created_at=at,
        )
    )


@dataclass(frozen=True, kw_only=True)
class CheckRecord:
    version_id: str
    asset: str
    partition: str | None
    run_id: str | None
    name: str
    kind: str
    columns: tuple[str, ...]
    severity: str
    passed: bool
    observed: Any
    threshold: str
    failing_rows: int | None
    failing_fraction: float | None
    sample: list[dict[str, Any]]
    message: str | None
    created_at: float
    lower: float | None = None
    upper: float | None = None

    @classmethod
    def from_row(cls, row: Any) -> CheckRecord:
        m = row._mapping
        return cls(
            version_id=m["version_id"],
            asset=m["asset"],
            partition=m["partition"] or None,
            run_id=m["run_id"],
            name=m["check_name"],
            kind=m["kind"],
            columns=tuple(json.loads(m["columns"])),
            severity=m["severity"],
            passed=bool(m["passed"]),
            observed=json.loads(m["observed"]) if m["observed"] else None,
            threshold=m["threshold"],
            failing_rows=m["failing_rows"],
            failing_fraction=m["failing_fraction"],
            sample=json.loads(m["sample"]) if m["sample"] else [],
            message=m["message"],
            created_at=m["created_at"],
            lower=m["lower"],
            upper=m["upper"],
        )


@dataclass(frozen=True, kw_only=True)
class QuarantineRecord:
    version_id: str
    branch: str
    asset: str
    partition: str | None
    run_id: str | None
    reason: str
    status: str
    created_at: float
    decided_at: float | None
    decided_by: str | None


@dataclass(frozen=True, kw_only=True)
class CheckStanding:
    """What the checks said of one version: how many ran, which error-severity ones
    failed, and whether a person released it from quarantine (who, when)."""

    checks: int
    failed_errors: tuple[str, ...]
    released_by: str | None = None
    released_at: float | None = None

    @property
    def released(self) -> bool:
        return self.released_at is not None


class QualityRepository:
    def __init__(self, store: MetadataStore) -> None:
        self._store = store

    def record(self, version: Any, results: Sequence[dict[str, Any]], *, at: float) -> None:
        """Store the results of checks re-run on an existing version."""
        from types import SimpleNamespace

        holder = SimpleNamespace(
            id=version.id, asset=version.asset, partition=version.partition, check_results=results
        )
        with self._store.write() as c:
            record_checks(c, None, [(holder, "", at)])  # type: ignore[list-item]

    def results(self, version_id: str) -> builtins.list[CheckRecord]:
        with self._store.read() as c:
            rows = c.execute(
                select(check_results)
                .where(check_results.c.version_id == version_id)
                .order_by(check_results.c.id)
            ).all()
        return [CheckRecord.from_row(r) for r in rows]

    def history(
        self, asset: str, check: str | None = None, *, limit: int = 100
    ) -> builtins.list[CheckRecord]:
        """Results of an asset's checks over its versions, oldest first."""
        query = select(check_results).where(check_results.c.asset == asset)
        if check is not None:
            query = query.where(check_results.c.check_name == check)
        query = query.order_by(check_results.c.created_at.desc(), check_results.c.id.desc())
        with self._store.read() as c:
            rows = c.execute(query.limit(limit)).all()
        return [CheckRecord.from_row(r) for r in reversed(rows)]

    def metric_history(
        self,
        asset: str,
        names: Iterable[str],
        *,
        before: float | None = None,
        exclude: str | None = None,
        limit: int = 100,
    ) -> dict[str, builtins.list[float]]:
        """Check name → its numeric observed values on ``asset``'s versions, oldest first:
        the latest result per version, at most ``limit`` each, leaving out versions held
        or discarded in quarantine (bad data does not widen control limits)."""
        wanted = builtins.list(names)
        out: dict[str, builtins.list[float]] = {name: [] for name in wanted}
        if not wanted:
            return out
        bad = select(quarantine.c.version_id).where(quarantine.c.status != "released")
        query = select(
            check_results.c.check_name, check_results.c.version_id, check_results.c.observed
        ).where(
            and_(
                check_results.c.asset == asset,
                check_results.c.check_name.in_(wanted),
                check_results.c.version_id.not_in(bad),
            )
        )
        if before is not None:
            query = query.where(check_results.c.created_at < before)
        if exclude is not None:
            query = query.where(check_results.c.version_id != exclude)
        query = query.order_by(check_results.c.created_at.desc(), check_results.c.id.desc())
        seen: set[tuple[str, str]] = set()
        with self._store.read() as c:
            for name, version_id, observed in c.execute(query.limit(limit * len(wanted) * 4)):
                values = out[name]
                if (name, version_id) in seen or len(values) >= limit:
                    continue
                seen.add((name, version_id))
                value = json.loads(observed) if observed else None
                if isinstance(value, int | float) and not isinstance(value, bool):
                    values.append(float(value))
        return {name: values[::-1] for name, values in out.items()}

    def failed_errors(self, version_ids: Iterable[str]) -> dict[str, builtins.list[str]]:
        """Version id → names of its failed error-severity checks (released ones apart)."""
        ids = list(version_ids)
        out: dict[str, builtins.list[str]] = {}
        if not ids:
            return out
        with self._store.read() as c:
            released = {
                r[0]
                for r in c.execute(
                    select(quarantine.c.version_id).where(
                        and_(quarantine.c.version_id.in_(ids), quarantine.c.status == "released")
                    )
                )
            }
            rows = c.execute(
                select(check_results.c.version_id, check_results.c.check_name).where(
                    and_(
                        check_results.c.version_id.in_(ids),
                        check_results.c.severity == "error",
                        check_results.c.passed.is_(False),
                    )
                )
            ).all()
        for version_id, name in rows:
            if version_id not in released:
                out.setdefault(version_id, []).append(name)
        return out

    def standings(self, version_ids: Iterable[str]) -> dict[str, CheckStanding]:
        """Version id → its :class:`CheckStanding` (a version no check ran on has
        ``checks == 0``)."""
        ids = list(dict.fromkeys(version_ids))
        counts: dict[str, int] = {}
        failed: dict[str, list[str]] = {}
        released: dict[str, tuple[str | None, float]] = {}
        with self._store.read() as c:
            for i in range(0, len(ids), 5000):
                chunk = ids[i : i + 5000]
                for version_id, name, severity, passed in c.execute(
                    select(
                        check_results.c.version_id,
                        check_results.c.check_name,
                        check_results.c.severity,
                        check_results.c.passed,
                    ).where(check_results.c.version_id.in_(chunk))
                ):
                    counts[version_id] = counts.get(version_id, 0) + 1
                    if severity == "error" and not passed:
                        failed.setdefault(version_id, []).append(name)
                for version_id, by, at in c.execute(
                    select(
                        quarantine.c.version_id, quarantine.c.decided_by, quarantine.c.decided_at
                    ).where(
                        and_(quarantine.c.version_id.in_(chunk), quarantine.c.status == "released")
                    )
                ):
                    released[version_id] = (by, at)
        return {
            v: CheckStanding(
                checks=counts.get(v, 0),
                failed_errors=tuple(dict.fromkeys(failed.get(v, []))),
                released_by=released[v][0] if v in released else None,
                released_at=released[v][1] if v in released else None,
            )
            for v in ids
        }

    def quarantined(
        self, *, branch: str | None = None, status: str | None = "held", limit: int = 100
    ) -> builtins.list[QuarantineRecord]:
        query = select(quarantine).order_by(quarantine.c.created_at.desc())
        if branch is not None:
            query = query.where(quarantine.c.branch == branch)
        if status is not None:
            query = query.where(quarantine.c.status == status)
        with self._store.read() as c:
            rows = c.execute(query.limit(limit)).all()
        return [_quarantine_record(r) for r in rows]

    def get_quarantined(self, version_id: str) -> QuarantineRecord:
        with self._store.read() as c:
            row = c.execute(select(quarantine).where(quarantine.c.version_id == version_id)).first()
        if row is None:
            raise VersionNotFoundError(f"version {version_id!r} is not in quarantine")
        return _quarantine_record(row)

    def decide(self, version_id: str, status: str, *, actor: str | None) -> QuarantineRecord:
        """Mark a held version released or discarded (the caller moves heads if any)."""
        with self._store.write() as c:
            decide_in(c, version_id, status, actor=actor)
        return self.get_quarantined(version_id)


def decide_in(c: Connection, version_id: str, status: str, *, actor: str | None) -> None:
    """Record a decision on a held version, inside the caller's transaction."""
    if status not in ("released", "discarded"):
        raise StoreError(f"a quarantine decision is 'released' or 'discarded', not {status!r}")
    row = c.execute(
        select(quarantine.c.status).where(quarantine.c.version_id == version_id)
    ).first()
    if row is None:
        raise VersionNotFoundError(f"version {version_id!r} is not in quarantine")
    if row[0] != "held":
        raise StoreError(f"version {version_id} was already {row[0]}")
    c.execute(
        update(quarantine)
        .where(quarantine.c.version_id == version_id)
        .values(status=status, decided_at=time.time(), decided_by=actor)
    )


def _quarantine_record(row: Any) -> QuarantineRecord:
    values = dict(row._mapping)
    values["partition"] = values["partition"] or None
    return QuarantineRecord(**values)

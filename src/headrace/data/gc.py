"""Garbage collection: delete blobs no retained version needs.

Retained: every version a branch points at; the last ``keep_last`` versions each branch
head has held; versions younger than ``keep_days``; versions written by runs still
running; whatever a registered pin needs (model versions, later). Blob files younger
than ``grace_seconds`` are never touched, so a run writing right now loses nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import select

from headrace.runtime.workspace import Workspace
from headrace.store.schema import (
    asset_versions,
    branch_events,
    branch_heads,
    model_versions,
    run_artifacts,
    runs,
)

#: Areas register functions returning version ids that must keep their data.
GC_PINS: list[Callable[[Workspace], set[str]]] = []


@dataclass(frozen=True, kw_only=True)
class GcReport:
    retained_versions: int
    deleted_blobs: list[str] = field(default_factory=list)
    freed_bytes: int = 0
    kept_blobs: int = 0
    dry_run: bool = False


def retained_versions(ws: Workspace, *, keep_last: int, keep_days: float | None) -> set[str]:
    keep: set[str] = set()
    with ws.store.read() as c:
        keep.update(r[0] for r in c.execute(select(branch_heads.c.version_id)).all())
        history: dict[tuple[str, str, str], int] = {}
        rows = c.execute(
            select(
                branch_events.c.branch,
                branch_events.c.asset,
                branch_events.c.partition,
                branch_events.c.new_version_id,
            )
            .where(branch_events.c.new_version_id.is_not(None))
            .order_by(branch_events.c.id.desc())
        ).all()
        for branch, asset, partition, version in rows:
            key = (branch, asset, partition)
            if history.get(key, 0) < keep_last:
                history[key] = history.get(key, 0) + 1
                keep.add(version)
        if keep_days is not None:
            cutoff = time.time() - keep_days * 86400
            keep.update(
                r[0]
                for r in c.execute(
                    select(asset_versions.c.id).where(asset_versions.c.created_at >= cutoff)
                ).all()
            )
        running = [r[0] for r in c.execute(select(runs.c.id).where(runs.c.status == "running"))]
        if running:
            keep.update(
                r[0]
                for r in c.execute(
                    select(asset_versions.c.id).where(asset_versions.c.run_id.in_(running))
                ).all()
            )
    for pin in GC_PINS:
        keep.update(pin(ws))
    return keep


def collect(
    ws: Workspace,
    *,
    keep_last: int = 5,
    keep_days: float | None = None,
    grace_seconds: float = 3600.0,
    dry_run: bool = False,
) -> GcReport:
    """Delete (or, with ``dry_run``, list) the blobs that no retained version uses."""
    if keep_last < 1:
        from headrace.data.errors import DataError

        raise DataError("keep_last must be at least 1: a branch's current version is kept")
    keep = retained_versions(ws, keep_last=keep_last, keep_days=keep_days)
    with ws.store.read() as c:
        rows = c.execute(select(asset_versions.c.id, asset_versions.c.blob)).all()
        # tracked runs' artifacts and registered model versions are kept for as long as
        # their rows are: gc collects data versions only
        others = [
            *c.execute(select(run_artifacts.c.blob)).scalars(),
            *c.execute(select(model_versions.c.blob)).scalars(),
        ]
    needed = {blob for version, blob in rows if version in keep} | set(others)
    blobs = ws.blobs
    deleted: list[str] = []
    freed = 0
    kept = 0
    horizon = time.time() - grace_seconds
    for digest, size, modified in blobs.iter_blobs():
        if digest in needed or modified > horizon:
            kept += 1
            continue
        deleted.append(digest)
        freed += size
        if not dry_run:
            blobs.delete(digest)
    if not dry_run:
        blobs.clean_temporary(older_than=horizon)
    return GcReport(
        retained_versions=len(keep),
        deleted_blobs=deleted,
        freed_bytes=freed,
        kept_blobs=kept,
        dry_run=dry_run,
    )

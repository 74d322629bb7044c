"""Versions of assets: listing, reading as of a time, and importing existing files."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from headrace.core.ids import new_id
from headrace.data.errors import DataError
from headrace.io.frames import FLAVORS, from_arrow
from headrace.io.serializers import column_stats_from_metadata
from headrace.runtime.reading import read_version as read_version
from headrace.runtime.workspace import Workspace
from headrace.store.branches import move_heads
from headrace.store.errors import BranchNotFoundError, VersionNotFoundError
from headrace.store.records import VersionRecord
from headrace.store.runs import NewVersion, version_row
from headrace.store.schema import asset_versions


def parse_time(value: str | float | dt.datetime) -> float:
    """UNIX seconds from a timestamp, an ISO 8601 string (local time if naive) or a date."""
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, dt.datetime):
        return value.timestamp()
    try:
        parsed = dt.datetime.fromisoformat(str(value))
    except ValueError as exc:
        raise DataError(
            f"as_of {value!r} is not a time like 2026-01-05T10:00 or 2026-01-05"
        ) from exc
    return parsed.timestamp()


def heads_as_of(
    ws: Workspace, asset: str, *, branch: str, as_of: str | float | dt.datetime
) -> list[VersionRecord]:
    """The versions of ``asset`` (one per partition) that ``branch`` pointed at then."""
    at = parse_time(as_of)
    found = ws.store.branches.heads_as_of(branch, at, [asset])
    if not found:
        stamp = dt.datetime.fromtimestamp(at).isoformat(timespec="seconds")
        raise VersionNotFoundError(
            f"asset {asset!r} had no version on branch {branch!r} as of {stamp}", asset=asset
        )
    return sorted(
        (ws.store.versions.get(v) for v in found.values()), key=lambda r: r.partition or ""
    )


@dataclass(frozen=True, kw_only=True)
class ImportResult:
    version: VersionRecord
    created: bool  # False: the branch already had exactly this data
    seconds: float


def import_table(
    ws: Workspace,
    asset: str,
    path: Path | str,
    *,
    partition: str | None = None,
    branch: str = "main",
    primary_key: tuple[str, ...] = (),
) -> ImportResult:
    """Record an existing Parquet file as a new version of ``asset`` on ``branch``.

    The file is hashed (BLAKE3, multithreaded) and copied into the object store once;
    importing the same bytes again stores nothing and makes no new version.
    """
    started = time.perf_counter()
    source = Path(path)
    if not source.is_file():
        raise DataError(f"cannot import {source}: no such file")
    known = getattr(ws.blobs, "known_digest", lambda _p: None)(source)
    if known is not None and ws.store.branches.exists(branch):
        head = ws.store.versions.heads(branch, [asset]).get((asset, partition))
        if (
            head is not None
            and head.blob == known
            and set(primary_key) <= set(head.primary_key or primary_key)
        ):
            # Unchanged since it was last imported: a stat and a lookup, no read.
            return ImportResult(version=head, created=False, seconds=time.perf_counter() - started)
    import pyarrow.parquet as pq

    try:
        meta = pq.read_metadata(source)
        schema = meta.schema.to_arrow_schema()
    except Exception as exc:
        raise DataError(f"cannot import {source}: not a readable Parquet file ({exc})") from exc
    missing = [c for c in primary_key if c not in schema.names]
    if missing:
        raise DataError(f"cannot import {source}: primary key column {missing[0]!r} is missing")
    if not ws.store.branches.exists(branch):
        raise BranchNotFoundError(branch)
    digest = ws.blobs.put_file(source)
    heads = ws.store.versions.heads(branch, [asset])
    current = heads.get((asset, partition))
    if current is not None and current.blob == digest:
        return ImportResult(version=current, created=False, seconds=time.perf_counter() - started)
    version = NewVersion(
        id=new_id(),
        asset=asset,
        partition=partition,
        kind="table",
        format="parquet",
        flavor="arrow",
        blob=digest,
        size=source.stat().st_size,
        row_count=meta.num_rows,
        schema=[[f.name, str(f.type)] for f in schema],
        code_version="import",
        params={},
        cache_key="",
        replaces=None if current is None else current.id,
        stats=column_stats_from_metadata(meta),
        primary_key=primary_key,
    )
    now = time.time()
    from headrace.runtime.identity import actor

    with ws.store.write() as c:
        c.execute(asset_versions.insert(), version_row(version, "", f"import {source.name}", now))
        move_heads(
            c,
            ws.store.dialect,
            branch,
            [((asset, partition or ""), version.replaces, version.id, now)],
            kind="import",
            run_id=None,
            actor=actor(),
            message=f"import {source}",
        )
    record = version.record(run_id="", step_key=f"import {source.name}", created_at=now)
    return ImportResult(version=record, created=True, seconds=time.perf_counter() - started)


def read(
    ws: Workspace,
    asset: str,
    *,
    partition: str | None = None,
    branch: str = "main",
    version: str | None = None,
    as_of: str | float | dt.datetime | None = None,
    as_: str | None = None,
) -> Any:
    """An asset's value: a version by id, the branch's current one, or the one the branch
    pointed at ``as_of`` a time.

    A partitioned asset read without ``partition`` returns all its partitions: tables
    concatenated in partition order, other values as a dict keyed by partition.
    """
    if as_ is not None and as_ not in FLAVORS:
        raise DataError(f"as_ must be one of {', '.join(FLAVORS)}, got {as_!r}")
    if version is not None:
        if as_of is not None:
            raise DataError("give either version or as_of, not both")
        record = ws.store.versions.get(version)
        if record.asset != asset:
            raise VersionNotFoundError(
                f"version {version} belongs to asset {record.asset!r}, not {asset!r}", asset=asset
            )
        return read_version(ws, record, as_)
    if as_of is not None:
        records = heads_as_of(ws, asset, branch=branch, as_of=as_of)
    else:
        if not ws.store.branches.exists(branch):
            raise BranchNotFoundError(branch)
        heads = ws.store.versions.heads(branch, [asset])
        records = sorted(
            (v for (a, _), v in heads.items() if a == asset), key=lambda v: v.partition or ""
        )
    if partition is not None:
        records = [r for r in records if r.partition == partition]
    if not records:
        where = f" partition {partition!r}" if partition else ""
        raise VersionNotFoundError(
            f"asset {asset!r}{where} has no version on branch {branch!r}; materialize it first",
            asset=asset,
        )
    if len(records) == 1 and (partition is not None or records[0].partition is None):
        return read_version(ws, records[0], as_)
    if all(r.format == "parquet" for r in records):
        import pyarrow as pa

        table = pa.concat_tables(
            [read_version(ws, r, "arrow") for r in records], promote_options="default"
        )
        return from_arrow(table, as_ or records[0].flavor)
    return {r.partition: read_version(ws, r, as_) for r in records}

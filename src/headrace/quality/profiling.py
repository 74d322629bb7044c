"""Profiling an asset's stored versions, and writing a suite suggested from them.

A profile belongs to one version (versions are immutable, so it never goes stale) and
is stored with it. A partitioned asset is profiled partition by partition: each
partition's head is its own version, checked on its own, so each gets its own profile;
a suite suggested from them holds for every one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from headrace.quality.profile import ProfileError, TableProfile, profile, suggest_suite
from headrace.runtime.workspace import Workspace
from headrace.store.errors import VersionNotFoundError
from headrace.store.records import VersionRecord


@dataclass(frozen=True, kw_only=True)
class Profiled:
    version: VersionRecord
    profile: TableProfile


def _spec(ws: Workspace, asset: str) -> Any:
    spec = ws.graph.specs.get(asset)
    if spec is None:
        from headrace.core.errors import SelectionError
        from headrace.core.graph import suggest

        raise SelectionError(f"unknown asset {asset!r}" + suggest(asset, ws.graph.specs))
    return spec


def _order(spec: Any, record: VersionRecord) -> tuple[int, str]:
    key = record.partition or ""
    if spec.partitions is not None and key:
        with contextlib.suppress(Exception):  # a key the definition no longer has
            return (0, spec.partitions.sort_key(key))
    return (1, key)


def _table(record: VersionRecord) -> VersionRecord:
    if record.format != "parquet":
        label = record.asset + (f"[{record.partition}]" if record.partition else "")
        raise ProfileError(
            f"version {record.id[:16]} of {label} is stored as {record.format}, not a table; "
            "only tables can be profiled"
        )
    return record


def versions_of(
    ws: Workspace,
    asset: str,
    *,
    version: str | None = None,
    branch: str = "main",
    partition: str | None = None,
) -> list[VersionRecord]:
    """The versions to profile: one by id (or prefix), or the branch's head of each
    partition (of ``partition`` only when given), in partition order.

    Raises:
        SelectionError: the asset is not defined (with a suggestion).
        VersionNotFoundError: no such version, a version of another asset, or no head.
        ProfileError: a version is not a table.
    """
    spec = _spec(ws, asset)
    if version is not None:
        record = ws.store.versions.get(version)
        if record.asset != asset:
            raise VersionNotFoundError(
                f"version {version} belongs to asset {record.asset!r}, not {asset!r}", asset=asset
            )
        if partition is not None and (record.partition or "") != partition:
            raise VersionNotFoundError(
                f"version {version} is of partition {record.partition!r}, not {partition!r}",
                asset=asset,
            )
        return [_table(record)]
    heads = list(ws.store.versions.heads(branch, [asset]).values())
    if not heads:
        raise VersionNotFoundError(
            f"asset {asset!r} has no version on branch {branch!r}",
            asset=asset,
        )
    if partition is not None:
        chosen = [r for r in heads if (r.partition or "") == partition]
        if not chosen:
            from headrace.core.graph import suggest

            known = [r.partition or "" for r in sorted(heads, key=lambda r: _order(spec, r))]
            listed = ", ".join(known[:10]) + (" ..." if len(known) > 10 else "")
            raise VersionNotFoundError(
                f"asset {asset!r} has no partition {partition!r} on branch {branch!r}"
                + (suggest(partition, known) or f" (it has {listed})"),
                asset=asset,
            )
        heads = chosen
    return [_table(r) for r in sorted(heads, key=lambda r: _order(spec, r))]


def read_table(ws: Workspace, record: VersionRecord) -> Any:
    """A table version as a polars DataFrame (memory-mapped from a local blob store)."""
    from headrace.runtime.reading import read_version

    return read_version(ws, _table(record), "polars")


def profile_version(ws: Workspace, record: VersionRecord) -> TableProfile:
    """Profile a stored table version and keep the profile with it."""
    made = profile(read_table(ws, record))
    ws.store.profiles.save(record, made)
    return made


def stored_or_new(ws: Workspace, record: VersionRecord) -> TableProfile:
    """The stored profile of a version, made (and stored) now if it has none."""
    stored = ws.store.profiles.get(record.id)
    if stored is not None:
        return TableProfile.from_dict(stored.profile)
    return profile_version(ws, record)


def profile_asset(
    ws: Workspace,
    asset: str,
    *,
    version: str | None = None,
    branch: str = "main",
    partition: str | None = None,
) -> list[Profiled]:
    """Profile ``asset``'s head on ``branch`` (each partition's), or one version, and
    store each profile with its version."""
    records = versions_of(ws, asset, version=version, branch=branch, partition=partition)
    return [Profiled(version=r, profile=profile_version(ws, r)) for r in records]


def suite_path(ws: Workspace, asset: str, output: str | Path | None = None) -> Path:
    """Where a suggested suite goes: ``output`` (relative to the project's folder) or
    ``<asset>.checks.yaml`` there."""
    target = Path(output) if output is not None else Path(f"{asset}.checks.yaml")
    return target if target.is_absolute() else ws.settings.project_dir / target


def _taken(ws: Workspace, asset: str, path: Path) -> set[str]:
    """Check names the asset declares outside ``path`` (the file about to be replaced)."""
    from headrace.workspace.suites import load_suite_file

    names = {check.name for check in _spec(ws, asset).checks}
    if path.exists():
        with contextlib.suppress(Exception):  # not a suite file: nothing of it is loaded
            owner, checks = load_suite_file(path)
            if owner == asset:
                names -= {check.name for check in checks}
    return names


def write_suggestion(
    ws: Workspace,
    asset: str,
    profiled: list[Profiled],
    *,
    output: str | Path | None = None,
    force: bool = False,
    branch: str = "main",
) -> Path:
    """Write a suite suggested from ``profiled`` into the project's folder.

    Refuses to replace an existing file unless ``force``. Checks the asset already
    declares (in Python or another suite file) are left out, so the project still loads.
    """
    if not profiled:
        raise ProfileError("nothing was profiled, so there is nothing to suggest from")
    path = suite_path(ws, asset, output)
    if path.exists() and not force:
        raise ProfileError(f"{path} already exists; pass --force to overwrite it")
    if len(profiled) == 1:
        record = profiled[0].version
        label = asset + (f"[{record.partition}]" if record.partition else "")
        source = f"version {record.id[:16]} of {label}"
    else:
        source = f"the heads of {len(profiled)} partitions of {asset} on {branch}"
    text = suggest_suite(
        [p.profile for p in profiled], asset, source=source, taken=_taken(ws, asset, path)
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    if not force:
        try:
            with open(path, "x", encoding="utf-8") as handle:  # never replaces a file
                handle.write(text)
        except FileExistsError as exc:
            raise ProfileError(f"{path} already exists; pass --force to overwrite it") from exc
        return path
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path

"""Asset versions and the branch heads that point at them."""

from __future__ import annotations

import builtins
from collections.abc import Iterable
from typing import TYPE_CHECKING

from sqlalchemy import and_, bindparam, func, select, tuple_

from headrace.store.branches import KEYED_LIMIT
from headrace.store.errors import StoreError, VersionNotFoundError
from headrace.store.records import VersionRecord
from headrace.store.schema import asset_versions, branch_heads, version_inputs

if TYPE_CHECKING:
    from headrace.store.engine import MetadataStore

HeadKey = tuple[str, str | None]


#: Built once: every run reads the heads it touches with it.
_HEADS_AT = (
    select(asset_versions)
    .join(branch_heads, branch_heads.c.version_id == asset_versions.c.id)
    .where(branch_heads.c.branch == bindparam("b_branch"))
    .where(
        tuple_(branch_heads.c.asset, branch_heads.c.partition).in_(
            bindparam("b_keys", expanding=True)
        )
    )
)


class VersionRepository:
    def __init__(self, store: MetadataStore) -> None:
        self._store = store

    def heads(
        self,
        branch: str,
        assets: Iterable[str] | None = None,
        *,
        keys: Iterable[HeadKey] | None = None,
    ) -> dict[HeadKey, VersionRecord]:
        """The current version of each (asset, partition) on a branch; of some assets
        (every partition), or only at some (asset, partition) ``keys``."""
        if keys is not None:
            wanted_keys = {(a, p or "") for a, p in keys}
            if len(wanted_keys) > KEYED_LIMIT:
                found = self.heads(branch, {a for a, _ in wanted_keys})
                return {k: v for k, v in found.items() if (k[0], k[1] or "") in wanted_keys}
            if not wanted_keys:
                return {}
            with self._store.read() as c:
                keyed = c.execute(
                    _HEADS_AT, {"b_branch": branch, "b_keys": sorted(wanted_keys)}
                ).all()
            return {(r.asset, r.partition or None): VersionRecord.from_row(r) for r in keyed}
        query = (
            select(asset_versions)
            .join(branch_heads, branch_heads.c.version_id == asset_versions.c.id)
            .where(branch_heads.c.branch == branch)
        )
        names = None if assets is None else list(assets)
        if names is not None and len(names) <= 500:
            query = query.where(branch_heads.c.asset.in_(names))
        with self._store.read() as c:
            rows = c.execute(query).all()
        wanted = None if names is None else set(names)
        out: dict[HeadKey, VersionRecord] = {}
        for row in rows:
            record = VersionRecord.from_row(row)
            if wanted is None or record.asset in wanted:
                out[(record.asset, record.partition)] = record
        return out

    def newest_head(self, branch: str, asset: str) -> VersionRecord | None:
        """The most recently made version any partition of ``asset`` has as head."""
        with self._store.read() as c:
            row = c.execute(
                select(asset_versions)
                .join(branch_heads, branch_heads.c.version_id == asset_versions.c.id)
                .where(branch_heads.c.branch == branch, branch_heads.c.asset == asset)
                .order_by(asset_versions.c.created_at.desc(), asset_versions.c.id.desc())
                .limit(1)
            ).first()
        return None if row is None else VersionRecord.from_row(row)

    def get(self, version_id: str) -> VersionRecord:
        """A version by id or by a unique prefix of it (at least 6 characters)."""
        with self._store.read() as c:
            row = c.execute(select(asset_versions).where(asset_versions.c.id == version_id)).first()
            if row is None and len(version_id) >= 6:
                rows = c.execute(
                    select(asset_versions)
                    .where(func.substr(asset_versions.c.id, 1, len(version_id)) == version_id)
                    .limit(2)
                ).all()
                if len(rows) > 1:
                    raise StoreError(f"version id prefix {version_id!r} is ambiguous")
                row = rows[0] if rows else None
            if row is None:
                raise VersionNotFoundError(f"no asset version with id {version_id!r}")
            inputs = c.execute(
                select(version_inputs.c.parameter, version_inputs.c.input_version_id).where(
                    version_inputs.c.version_id == row._mapping["id"]
                )
            ).all()
        record = VersionRecord.from_row(row)
        grouped: dict[str, list[str]] = {}
        for parameter, input_id in inputs:
            grouped.setdefault(parameter, []).append(input_id)
        return VersionRecord(**{**record.__dict__, "inputs": grouped})

    def upstream(self, version_ids: Iterable[str]) -> builtins.list[VersionRecord]:
        """``version_ids`` and every version upstream of them (what made them, what made
        those, down to versions made from nothing: the landed files), each once, by asset,
        partition and id."""
        seen: set[str] = set()
        frontier = builtins.list(dict.fromkeys(version_ids))
        records: dict[str, VersionRecord] = {}
        with self._store.read() as c:
            while frontier:
                seen.update(frontier)
                found: builtins.list[str] = []
                for i in range(0, len(frontier), 5000):
                    chunk = frontier[i : i + 5000]
                    for row in c.execute(
                        select(asset_versions).where(asset_versions.c.id.in_(chunk))
                    ):
                        records[row.id] = VersionRecord.from_row(row)
                    found += [
                        r[0]
                        for r in c.execute(
                            select(version_inputs.c.input_version_id).where(
                                version_inputs.c.version_id.in_(chunk)
                            )
                        )
                    ]
                frontier = [v for v in dict.fromkeys(found) if v not in seen]
        return sorted(records.values(), key=lambda v: (v.asset, v.partition or "", v.id))

    def list(
        self, asset: str, *, partition: str | None = None, limit: int = 100
    ) -> builtins.list[VersionRecord]:
        query = select(asset_versions).where(asset_versions.c.asset == asset)
        if partition is not None:
            query = query.where(asset_versions.c.partition == partition)
        query = query.order_by(asset_versions.c.created_at.desc(), asset_versions.c.id.desc())
        with self._store.read() as c:
            rows = c.execute(query.limit(limit)).all()
        return [VersionRecord.from_row(r) for r in rows]

    def previous(self, version: VersionRecord) -> VersionRecord | None:
        """The version of the same asset made just before ``version``: of the same
        partition if there is one, else of any partition (what schema drift compares)."""
        base = select(asset_versions).where(
            and_(
                asset_versions.c.asset == version.asset,
                asset_versions.c.created_at < version.created_at,
                asset_versions.c.id != version.id,
            )
        )
        newest = (asset_versions.c.created_at.desc(), asset_versions.c.id.desc())
        with self._store.read() as c:
            row = c.execute(
                base.where(asset_versions.c.partition == (version.partition or ""))
                .order_by(*newest)
                .limit(1)
            ).first()
            if row is None:
                row = c.execute(base.order_by(*newest).limit(1)).first()
        return None if row is None else VersionRecord.from_row(row)

    def head(
        self, asset: str, *, branch: str = "main", partition: str | None = None
    ) -> VersionRecord:
        query = (
            select(asset_versions)
            .join(branch_heads, branch_heads.c.version_id == asset_versions.c.id)
            .where(
                and_(
                    branch_heads.c.branch == branch,
                    branch_heads.c.asset == asset,
                    branch_heads.c.partition == (partition or ""),
                )
            )
        )
        with self._store.read() as c:
            row = c.execute(query).first()
        if row is None:
            where = f" partition {partition!r}" if partition else ""
            raise VersionNotFoundError(
                f"asset {asset!r}{where} has no version on branch {branch!r}; materialize it first",
                asset=asset,
            )
        return VersionRecord.from_row(row)

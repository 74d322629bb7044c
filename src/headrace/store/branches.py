"""Branches: named maps asset → version. Creating one copies pointers, never data.

Every head move is compare-and-swap (``expected → new``) inside one transaction, so two
writers of the same heads never interleave: one wins, the other gets a
:class:`BranchConflictError` and nothing it did is applied.
"""

from __future__ import annotations

import builtins
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Connection,
    Table,
    and_,
    bindparam,
    delete,
    func,
    insert,
    literal,
    select,
    tuple_,
    update,
)

from headrace.store.errors import (
    BranchConflictError,
    BranchExistsError,
    BranchNotFoundError,
    MergeRefusedError,
    StoreError,
)
from headrace.store.schema import branch_bases, branch_events, branch_heads, branches

if TYPE_CHECKING:
    from headrace.store.engine import MetadataStore

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-/]{0,199}$")
HeadKey = tuple[str, str]  # (asset, partition or "")


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME.match(name) or ".." in name:
        raise StoreError(
            f"branch name {name!r} is invalid: use letters, digits, '.', '_', '-' and '/'"
        )
    return name


def label(key: HeadKey) -> str:
    asset, partition = key
    return f"{asset}[{partition}]" if partition else asset


@dataclass(frozen=True, kw_only=True)
class BranchRecord:
    name: str
    from_branch: str | None
    created_at: float
    created_by: str | None
    description: str | None
    heads: int = 0


@dataclass(frozen=True, kw_only=True)
class HeadMove:
    asset: str
    partition: str | None
    old_version_id: str | None
    new_version_id: str


@dataclass(frozen=True, kw_only=True)
class MergeResult:
    source: str
    target: str
    moves: list[HeadMove] = field(default_factory=list)
    unchanged: int = 0
    dry_run: bool = False


@dataclass(frozen=True, kw_only=True)
class EventRecord:
    id: int
    branch: str
    kind: str
    asset: str
    partition: str | None
    old_version_id: str | None
    new_version_id: str | None
    run_id: str | None
    actor: str | None
    message: str | None
    created_at: float


#: A merge gate returns, for the versions about to move, the problems that forbid it.
MergeGate = Callable[[Sequence[HeadMove]], list[str]]


def _pointers(c: Connection, table: Table, branch: str) -> dict[HeadKey, str]:
    """A branch's (asset, partition) → version map from ``branch_heads`` or ``branch_bases``."""
    rows = c.execute(
        select(table.c.asset, table.c.partition, table.c.version_id).where(table.c.branch == branch)
    ).all()
    return {(a, p): v for a, p, v in rows}


_CAS = (
    update(branch_heads)
    .where(
        and_(
            branch_heads.c.branch == bindparam("b_branch"),
            branch_heads.c.asset == bindparam("b_asset"),
            branch_heads.c.partition == bindparam("b_partition"),
            branch_heads.c.version_id == bindparam("b_old"),
        )
    )
    .values(
        version_id=bindparam("version_id"),
        run_id=bindparam("run_id"),
        updated_at=bindparam("updated_at"),
    )
)


def heads_of(c: Connection, branch: str, assets: Iterable[str]) -> dict[HeadKey, str]:
    """The heads of ``branch`` for some assets (chunked to stay under bind limits)."""
    names = sorted(set(assets))
    out: dict[HeadKey, str] = {}
    for i in range(0, len(names), 5000):
        rows = c.execute(
            select(branch_heads.c.asset, branch_heads.c.partition, branch_heads.c.version_id)
            .where(branch_heads.c.branch == branch)
            .where(branch_heads.c.asset.in_(names[i : i + 5000]))
        ).all()
        out.update({(a, p): v for a, p, v in rows})
    return out


#: Above this many (asset, partition) keys, reading whole assets is cheaper.
KEYED_LIMIT = 400


def heads_at(c: Connection, branch: str, keys: Iterable[HeadKey]) -> dict[HeadKey, str]:
    """The heads of ``branch`` at some (asset, partition) keys only (partition "" for an
    unpartitioned asset): one partition of an asset with thousands stays one row."""
    wanted = set(keys)
    if len(wanted) > KEYED_LIMIT:
        found = heads_of(c, branch, {a for a, _ in wanted})
        return {k: v for k, v in found.items() if k in wanted}
    if not wanted:
        return {}
    rows = c.execute(_HEADS_AT, {"b_branch": branch, "b_keys": sorted(wanted)}).all()
    return {(a, p): v for a, p, v in rows}


#: Built once: it runs twice in every run.
_HEADS_AT = (
    select(branch_heads.c.asset, branch_heads.c.partition, branch_heads.c.version_id)
    .where(branch_heads.c.branch == bindparam("b_branch"))
    .where(
        tuple_(branch_heads.c.asset, branch_heads.c.partition).in_(
            bindparam("b_keys", expanding=True)
        )
    )
)


def move_heads(
    c: Connection,
    dialect: str,
    branch: str,
    moves: Sequence[tuple[HeadKey, str | None, str, float]],
    *,
    kind: str,
    run_id: str | None,
    actor: str | None,
    message: str | None,
) -> None:
    """Compare-and-swap each head ``expected → new``; raise if any was moved meanwhile.

    ``moves`` are (key, expected version or None for a new head, new version, time).
    """
    if not moves:
        return
    from headrace.store.upsert import insert_ignore

    fresh = [m for m in moves if m[1] is None]
    known = [m for m in moves if m[1] is not None]
    lost: list[str] = []
    if fresh:
        rows = [
            {
                "branch": branch,
                "asset": a,
                "partition": p,
                "version_id": new,
                "run_id": run_id,
                "updated_at": at,
            }
            for (a, p), _, new, at in fresh
        ]
        if len(rows) == 1:  # the usual case: the statement itself says if it landed
            made = c.execute(
                insert_ignore(dialect, branch_heads).returning(branch_heads.c.asset), rows[0]
            ).first()
            if made is None:
                lost.append(label(fresh[0][0]))
        else:
            c.execute(insert_ignore(dialect, branch_heads), rows)
    if known:
        rows = [
            {
                "b_branch": branch,
                "b_asset": a,
                "b_partition": p,
                "b_old": old,
                "version_id": new,
                "run_id": run_id,
                "updated_at": at,
            }
            for (a, p), old, new, at in known
        ]
        if len(rows) == 1:
            if c.execute(_CAS, rows[0]).rowcount != 1:
                lost.append(label(known[0][0]))
        else:
            c.execute(_CAS, rows)
    if len(fresh) > 1 or len(known) > 1:
        # Verify rather than trust rowcounts (drivers differ for executemany).
        final: dict[HeadKey, str] = {}
        for key, _, new, _ in moves:
            final[key] = new
        now = heads_at(c, branch, final)
        lost = [label(k) for k, new in final.items() if now.get(k) != new]
    if lost:
        raise BranchConflictError(
            f"branch {branch!r} was changed by another writer meanwhile: "
            f"{', '.join(sorted(lost)[:10])}" + (" ..." if len(lost) > 10 else ""),
            branch=branch,
            assets=sorted(lost),
        )
    c.execute(
        insert(branch_events),
        [
            {
                "branch": branch,
                "kind": kind,
                "asset": a,
                "partition": p,
                "old_version_id": old,
                "new_version_id": new,
                "run_id": run_id,
                "actor": actor,
                "message": message,
                "created_at": at,
            }
            for (a, p), old, new, at in moves
        ],
    )


class BranchRepository:
    def __init__(self, store: MetadataStore) -> None:
        self._store = store

    def _require(self, c: Connection, name: str) -> Any:
        row = c.execute(select(branches).where(branches.c.name == name)).first()
        if row is None:
            raise BranchNotFoundError(name)
        return row

    def get(self, name: str) -> BranchRecord:
        with self._store.read() as c:
            row = self._require(c, name)
            count = c.execute(
                select(func.count()).select_from(branch_heads).where(branch_heads.c.branch == name)
            ).scalar_one()
        return BranchRecord(**dict(row._mapping), heads=int(count))

    def exists(self, name: str) -> bool:
        with self._store.read() as c:
            return (
                c.execute(select(branches.c.name).where(branches.c.name == name)).first()
                is not None
            )

    def list(self) -> builtins.list[BranchRecord]:
        with self._store.read() as c:
            rows = c.execute(select(branches).order_by(branches.c.created_at)).all()
            counts: dict[str, int] = dict(
                c.execute(
                    select(branch_heads.c.branch, func.count()).group_by(branch_heads.c.branch)
                ).all()
            )
        return [BranchRecord(**dict(r._mapping), heads=int(counts.get(r.name, 0))) for r in rows]

    def create(
        self,
        name: str,
        *,
        from_branch: str = "main",
        actor: str | None = None,
        description: str | None = None,
    ) -> BranchRecord:
        """A new branch pointing at the same versions as ``from_branch``: no data copied."""
        check_name(name)
        now = time.time()
        with self._store.write() as c:
            self._require(c, from_branch)
            if c.execute(select(branches.c.name).where(branches.c.name == name)).first():
                raise BranchExistsError(name)
            c.execute(
                insert(branches).values(
                    name=name,
                    from_branch=from_branch,
                    created_at=now,
                    created_by=actor,
                    description=description,
                )
            )
            source = (
                select(branch_heads.c.asset, branch_heads.c.partition, branch_heads.c.version_id)
                .where(branch_heads.c.branch == from_branch)
                .subquery()
            )
            c.execute(
                insert(branch_heads).from_select(
                    ["branch", "asset", "partition", "version_id", "run_id", "updated_at"],
                    select(
                        literal(name, branch_heads.c.branch.type),
                        branch_heads.c.asset,
                        branch_heads.c.partition,
                        branch_heads.c.version_id,
                        branch_heads.c.run_id,
                        literal(now, branch_heads.c.updated_at.type),
                    ).where(branch_heads.c.branch == from_branch),
                )
            )
            c.execute(
                insert(branch_bases).from_select(
                    ["branch", "asset", "partition", "version_id"],
                    select(
                        literal(name, branch_bases.c.branch.type),
                        source.c.asset,
                        source.c.partition,
                        source.c.version_id,
                    ),
                )
            )
            c.execute(
                insert(branch_events).values(
                    branch=name,
                    kind="create",
                    asset="",
                    partition="",
                    run_id=None,
                    actor=actor,
                    message=f"created from {from_branch}",
                    created_at=now,
                )
            )
            # The inherited heads enter the new branch's history (for reads "as of").
            c.execute(
                insert(branch_events).from_select(
                    [
                        "branch",
                        "kind",
                        "asset",
                        "partition",
                        "new_version_id",
                        "actor",
                        "created_at",
                    ],
                    select(
                        literal(name, branch_events.c.branch.type),
                        literal("fork", branch_events.c.kind.type),
                        source.c.asset,
                        source.c.partition,
                        source.c.version_id,
                        literal(actor, branch_events.c.actor.type),
                        literal(now, branch_events.c.created_at.type),
                    ),
                )
            )
        return self.get(name)

    def delete(self, name: str, *, actor: str | None = None) -> None:
        if name == "main":
            raise StoreError("branch 'main' cannot be deleted")
        now = time.time()
        with self._store.write() as c:
            self._require(c, name)
            for table in (branch_heads, branch_bases):
                c.execute(delete(table).where(table.c.branch == name))
            c.execute(delete(branches).where(branches.c.name == name))
            c.execute(
                insert(branch_events).values(
                    branch=name,
                    kind="delete",
                    asset="",
                    partition="",
                    actor=actor,
                    message="deleted",
                    created_at=now,
                )
            )

    def merge(
        self,
        source: str,
        into: str = "main",
        *,
        dry_run: bool = False,
        actor: str | None = None,
        gate: MergeGate | None = None,
    ) -> MergeResult:
        """Move ``into``'s heads to the versions that changed on ``source`` since the fork.

        Refused (nothing moves) when an asset changed on both branches since the fork, or
        when ``gate`` reports a problem with a version to be moved.
        """
        if source == into:
            raise StoreError(f"cannot merge branch {source!r} into itself")
        context = self._store.read() if dry_run else self._store.write()
        with context as c:
            plan = self._plan(c, source, into)
            problems = gate(plan.moves) if gate is not None and plan.moves else []
            if problems:
                raise MergeRefusedError(
                    f"cannot merge {source!r} into {into!r}: " + "; ".join(problems[:10]),
                    branch=into,
                    assets=[m.asset for m in plan.moves],
                )
            if dry_run:
                return plan
            self._apply(c, plan, actor=actor)
        return MergeResult(source=source, target=into, moves=plan.moves, unchanged=plan.unchanged)

    def merge_planned(self, c: Connection, plan: MergeResult, *, actor: str | None) -> None:
        """Carry out ``plan`` (a dry-run merge whose gates passed) inside the caller's
        write transaction ``c``, so the merge commits with whatever else ``c`` writes
        (a promotion's alias move). The gates already ran on ``plan``'s versions: when
        either branch moved since, the merge would move something else, so it is
        refused as a conflict and the caller's transaction rolls back."""
        now = self._plan(c, plan.source, plan.target)
        if now.moves != plan.moves:
            raise BranchConflictError(
                f"cannot merge {plan.source!r} into {plan.target!r}: a branch was changed "
                "by another writer after its merge was checked; run it again",
                branch=plan.target,
                assets=sorted({m.asset for m in (*plan.moves, *now.moves)}),
            )
        self._apply(c, now, actor=actor)

    def _plan(self, c: Connection, source: str, into: str) -> MergeResult:
        """The head moves merging ``source`` into ``into`` takes, as a dry-run result;
        a conflict (an asset changed on both sides since the fork) raises."""
        self._require(c, source)
        self._require(c, into)
        src, dst = _pointers(c, branch_heads, source), _pointers(c, branch_heads, into)
        base = _pointers(c, branch_bases, source)
        changed = {k: v for k, v in src.items() if base.get(k) != v}
        moves: list[HeadMove] = []
        conflicts: list[str] = []
        unchanged = 0
        for (asset, partition), version in sorted(changed.items()):
            current = dst.get((asset, partition))
            if current == version:
                unchanged += 1
            elif current != base.get((asset, partition)):
                conflicts.append(label((asset, partition)))
            else:
                moves.append(
                    HeadMove(
                        asset=asset,
                        partition=partition or None,
                        old_version_id=current,
                        new_version_id=version,
                    )
                )
        if conflicts:
            raise BranchConflictError(
                f"cannot merge {source!r} into {into!r}: changed on both branches since "
                f"{source!r} was created or last merged: {', '.join(conflicts[:10])}"
                + (" ..." if len(conflicts) > 10 else ""),
                branch=into,
                assets=conflicts,
            )
        return MergeResult(
            source=source, target=into, moves=moves, unchanged=unchanged, dry_run=True
        )

    def _apply(self, c: Connection, plan: MergeResult, *, actor: str | None) -> None:
        now = time.time()
        move_heads(
            c,
            self._store.dialect,
            plan.target,
            [
                ((m.asset, m.partition or ""), m.old_version_id, m.new_version_id, now)
                for m in plan.moves
            ],
            kind="merge",
            run_id=None,
            actor=actor,
            message=f"merge {plan.source}",
        )
        # Both sides now agree on everything the source changed: that is the new base.
        changed = _pointers(c, branch_heads, plan.source)
        base = _pointers(c, branch_bases, plan.source)
        self._rebase(c, plan.source, {k: v for k, v in changed.items() if base.get(k) != v})

    def _rebase(self, c: Connection, branch: str, heads: dict[HeadKey, str]) -> None:
        if not heads:
            return
        from headrace.store.upsert import upsert_statement

        c.execute(
            upsert_statement(
                self._store.dialect,
                branch_bases,
                ("branch", "asset", "partition"),
                ("branch", "asset", "partition", "version_id"),
            ),
            [
                {"branch": branch, "asset": a, "partition": p, "version_id": v}
                for (a, p), v in heads.items()
            ],
        )

    def log(
        self,
        *,
        branch: str | None = None,
        asset: str | None = None,
        limit: int = 50,
        offset: int = 0,
        forks: bool = False,
    ) -> builtins.list[EventRecord]:
        """The history, newest first; ``forks`` adds the heads a new branch inherited."""
        query = select(branch_events).order_by(branch_events.c.id.desc())
        if not forks:
            query = query.where(branch_events.c.kind != "fork")
        if branch is not None:
            query = query.where(branch_events.c.branch == branch)
        if asset is not None:
            query = query.where(branch_events.c.asset == asset)
        with self._store.read() as c:
            rows = c.execute(query.limit(limit).offset(offset)).all()
        out = []
        for row in rows:
            values = dict(row._mapping)
            values["partition"] = values["partition"] or None
            out.append(EventRecord(**values))
        return out

    def heads_as_of(
        self, branch: str, at: float, assets: Iterable[str] | None = None
    ) -> dict[tuple[str, str | None], str]:
        """Which version each (asset, partition) of ``branch`` pointed at, at time ``at``."""
        latest = (
            select(
                branch_events.c.asset,
                branch_events.c.partition,
                func.max(branch_events.c.id).label("last"),
            )
            .where(
                and_(
                    branch_events.c.branch == branch,
                    branch_events.c.created_at <= at,
                    branch_events.c.kind.in_(("materialize", "merge", "import", "fork", "release")),
                )
            )
            .group_by(branch_events.c.asset, branch_events.c.partition)
        )
        names = None if assets is None else list(assets)
        if names is not None:
            latest = latest.where(branch_events.c.asset.in_(names))
        sub = latest.subquery()
        query = select(
            branch_events.c.asset, branch_events.c.partition, branch_events.c.new_version_id
        ).join(sub, sub.c.last == branch_events.c.id)
        with self._store.read() as c:
            self._require(c, branch)
            rows = c.execute(query).all()
        return {(a, p or None): v for a, p, v in rows if v is not None}

"""The model registry in the metadata store: models, versions, aliases, and the audit
trail of every change (``model_events``), each change in one transaction."""

from __future__ import annotations

import builtins
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, and_, delete, func, insert, select, update

from headrace.store.errors import StoreError
from headrace.store.schema import model_aliases, model_events, model_versions, models

if TYPE_CHECKING:
    from headrace.store.engine import MetadataStore

STATUSES = ("candidate", "approved", "production", "retired")
#: The lifecycle: which status may follow which.
TRANSITIONS = {
    "candidate": ("approved", "retired"),
    "approved": ("production", "retired", "candidate"),
    "production": ("retired", "approved"),
    "retired": (),
}


#: The kinds of model events that move an alias (an override is a move past a policy).
MOVES = ("alias", "rollback", "override")


class RegistryError(StoreError):
    """A registry operation that cannot be done as asked (names the model and why)."""


class ModelNotFoundError(RegistryError):
    pass


@dataclass(frozen=True, kw_only=True)
class ModelVersionRecord:
    name: str
    version: int
    flavor: str
    blob: str
    size: int
    signature: dict[str, Any] | None
    model_class: str
    run_id: str | None
    asset_version_id: str | None
    data_versions: list[str]
    status: str
    description: str | None
    created_at: float
    created_by: str | None
    aliases: tuple[str, ...] = ()

    @classmethod
    def from_row(cls, row: Any, aliases: tuple[str, ...] = ()) -> ModelVersionRecord:
        m = dict(row._mapping)
        m["signature"] = json.loads(m["signature"]) if m["signature"] else None
        m["data_versions"] = json.loads(m["data_versions"] or "[]")
        return cls(**m, aliases=aliases)


@dataclass(frozen=True, kw_only=True)
class ModelEvent:
    name: str
    kind: str  # registered | alias | status | requested | approved | rejected
    alias: str | None
    version: int | None
    from_value: str | None
    to_value: str | None
    actor: str | None
    reason: str | None
    created_at: float


@dataclass(frozen=True, kw_only=True)
class NewModelVersion:
    name: str
    flavor: str
    blob: str
    size: int
    signature: dict[str, Any] | None
    model_class: str
    run_id: str | None
    asset_version_id: str | None
    data_versions: list[str]
    description: str | None = None


def _event(c: Connection, name: str, kind: str, actor: str | None, **values: Any) -> None:
    c.execute(
        insert(model_events).values(
            name=name, kind=kind, actor=actor, created_at=time.time(), **values
        )
    )


def register_in(c: Connection, new: NewModelVersion, actor: str | None) -> int:
    """Add a version (numbered 1, 2, ... per model) inside the caller's transaction."""
    if c.execute(select(models.c.name).where(models.c.name == new.name)).first() is None:
        c.execute(
            insert(models).values(
                name=new.name, description=None, created_at=time.time(), created_by=actor
            )
        )
    latest = c.execute(
        select(func.max(model_versions.c.version)).where(model_versions.c.name == new.name)
    ).scalar()
    number = int(latest or 0) + 1
    c.execute(
        insert(model_versions).values(
            name=new.name,
            version=number,
            flavor=new.flavor,
            blob=new.blob,
            size=new.size,
            signature=None if new.signature is None else json.dumps(new.signature),
            model_class=new.model_class,
            run_id=new.run_id,
            asset_version_id=new.asset_version_id,
            data_versions=json.dumps(new.data_versions),
            status="candidate",
            description=new.description,
            created_at=time.time(),
            created_by=actor,
        )
    )
    _event(c, new.name, "registered", actor, version=number, to_value="candidate")
    return number


class RegistryRepository:
    def __init__(self, store: MetadataStore) -> None:
        self._store = store

    def register(self, new: NewModelVersion, *, actor: str | None) -> ModelVersionRecord:
        with self._store.write() as c:
            number = register_in(c, new, actor)
        return self.version(new.name, number)

    def names(self) -> builtins.list[str]:
        with self._store.read() as c:
            return [r[0] for r in c.execute(select(models.c.name).order_by(models.c.name))]

    def _require(self, c: Connection, name: str) -> None:
        if c.execute(select(models.c.name).where(models.c.name == name)).first() is None:
            from headrace.core.graph import suggest

            known = [r[0] for r in c.execute(select(models.c.name))]
            raise ModelNotFoundError(f"no registered model named {name!r}{suggest(name, known)}")

    def _aliases(self, c: Connection, name: str) -> dict[int, builtins.list[str]]:
        out: dict[int, builtins.list[str]] = {}
        for alias, version in c.execute(
            select(model_aliases.c.alias, model_aliases.c.version)
            .where(model_aliases.c.name == name)
            .order_by(model_aliases.c.alias)
        ):
            out.setdefault(version, []).append(alias)
        return out

    def versions(self, name: str) -> builtins.list[ModelVersionRecord]:
        with self._store.read() as c:
            self._require(c, name)
            aliases = self._aliases(c, name)
            rows = c.execute(
                select(model_versions)
                .where(model_versions.c.name == name)
                .order_by(model_versions.c.version)
            ).all()
        return [ModelVersionRecord.from_row(r, tuple(aliases.get(r.version, ()))) for r in rows]

    def version(self, name: str, number: int) -> ModelVersionRecord:
        with self._store.read() as c:
            self._require(c, name)
            row = c.execute(
                select(model_versions).where(
                    and_(model_versions.c.name == name, model_versions.c.version == number)
                )
            ).first()
            if row is None:
                raise ModelNotFoundError(f"model {name!r} has no version {number}")
            aliases = self._aliases(c, name)
        return ModelVersionRecord.from_row(row, tuple(aliases.get(number, ())))

    def resolve(self, name: str, alias: str | None) -> ModelVersionRecord:
        """The version an alias points at (``latest``: the newest version)."""
        with self._store.read() as c:
            self._require(c, name)
            if alias is None or alias == "latest":
                number = c.execute(
                    select(func.max(model_versions.c.version)).where(model_versions.c.name == name)
                ).scalar()
                if number is None:
                    raise ModelNotFoundError(f"model {name!r} has no versions yet")
            else:
                number = c.execute(
                    select(model_aliases.c.version).where(
                        and_(model_aliases.c.name == name, model_aliases.c.alias == alias)
                    )
                ).scalar()
                if number is None:
                    known = sorted(a for v in self._aliases(c, name).values() for a in v)
                    raise ModelNotFoundError(
                        f"model {name!r} has no alias {alias!r}"
                        + (f"; its aliases: {', '.join(known)}" if known else "; it has no aliases")
                    )
        return self.version(name, int(number))

    def set_alias(
        self, name: str, alias: str, version: int, *, actor: str | None, reason: str | None
    ) -> int | None:
        """Point ``alias`` at ``version``; returns the version it pointed at before."""
        with self._store.write() as c:
            return self._move(c, name, alias, version, actor=actor, reason=reason)

    def remove_alias(self, name: str, alias: str, *, actor: str | None) -> int:
        """Remove ``alias``; returns the version it pointed at."""
        with self._store.write() as c:
            self._require(c, name)
            where = and_(model_aliases.c.name == name, model_aliases.c.alias == alias)
            before = c.execute(select(model_aliases.c.version).where(where)).scalar()
            if before is None:
                raise ModelNotFoundError(f"model {name!r} has no alias {alias!r}")
            c.execute(delete(model_aliases).where(where))
            _event(c, name, "alias", actor, alias=alias, from_value=str(before), to_value=None)
        return int(before)

    def _move(
        self,
        c: Connection,
        name: str,
        alias: str,
        version: int,
        *,
        actor: str | None,
        reason: str | None,
        kind: str = "alias",
    ) -> int | None:
        self._require(c, name)
        exists = c.execute(
            select(model_versions.c.status).where(
                and_(model_versions.c.name == name, model_versions.c.version == version)
            )
        ).first()
        if exists is None:
            raise ModelNotFoundError(f"model {name!r} has no version {version}")
        if exists[0] == "retired":
            raise RegistryError(f"{name} version {version} is retired; an alias cannot point at it")
        before = c.execute(
            select(model_aliases.c.version).where(
                and_(model_aliases.c.name == name, model_aliases.c.alias == alias)
            )
        ).scalar()
        now = time.time()
        if before is None:
            c.execute(
                insert(model_aliases).values(
                    name=name, alias=alias, version=version, updated_at=now
                )
            )
        else:
            c.execute(
                update(model_aliases)
                .where(and_(model_aliases.c.name == name, model_aliases.c.alias == alias))
                .values(version=version, updated_at=now)
            )
        _event(
            c,
            name,
            kind,
            actor,
            alias=alias,
            version=version,
            from_value=None if before is None else str(before),
            to_value=str(version),
            reason=reason,
        )
        return None if before is None else int(before)

    def rollback(
        self, name: str, alias: str, *, actor: str | None, reason: str | None
    ) -> tuple[int, int]:
        """Move ``alias`` back to the version it pointed at before its last move."""
        with self._store.write() as c:
            self._require(c, name)
            moves = c.execute(
                select(model_events.c.from_value, model_events.c.to_value)
                .where(
                    and_(
                        model_events.c.name == name,
                        model_events.c.alias == alias,
                        model_events.c.kind.in_(MOVES),
                    )
                )
                .order_by(model_events.c.id.desc())
                .limit(1)
            ).first()
            if moves is None:
                raise RegistryError(f"alias {alias!r} of model {name!r} has never been set")
            if moves[0] is None:
                raise RegistryError(
                    f"alias {alias!r} of model {name!r} has no earlier version to go back to"
                )
            current, previous = int(moves[1]), int(moves[0])
            self._move(c, name, alias, previous, actor=actor, reason=reason, kind="rollback")
        return current, previous

    def transition(
        self, name: str, version: int, status: str, *, actor: str | None, reason: str | None
    ) -> str:
        """Move a version along its lifecycle; returns the status it had."""
        if status not in STATUSES:
            raise RegistryError(f"unknown status {status!r}; expected one of {', '.join(STATUSES)}")
        with self._store.write() as c:
            self._require(c, name)
            return self._transition(c, name, version, status, actor=actor, reason=reason)

    def _transition(
        self,
        c: Connection,
        name: str,
        version: int,
        status: str,
        *,
        actor: str | None,
        reason: str | None,
    ) -> str:
        row = c.execute(
            select(model_versions.c.status).where(
                and_(model_versions.c.name == name, model_versions.c.version == version)
            )
        ).first()
        if row is None:
            raise ModelNotFoundError(f"model {name!r} has no version {version}")
        before = str(row[0])
        if status == before:
            return before
        if status not in TRANSITIONS[before]:
            allowed = ", ".join(TRANSITIONS[before]) or "nothing: it is final"
            raise RegistryError(
                f"{name} version {version} is {before}; it can become {allowed}, not {status}"
            )
        if status == "retired":
            held = [
                r[0]
                for r in c.execute(
                    select(model_aliases.c.alias).where(
                        and_(model_aliases.c.name == name, model_aliases.c.version == version)
                    )
                )
            ]
            if held:
                raise RegistryError(
                    f"{name} version {version} is still {', '.join(held)}; move those aliases first"
                )
        c.execute(
            update(model_versions)
            .where(and_(model_versions.c.name == name, model_versions.c.version == version))
            .values(status=status)
        )
        _event(
            c,
            name,
            "status",
            actor,
            version=version,
            from_value=before,
            to_value=status,
            reason=reason,
        )
        return before

    def promote(
        self,
        name: str,
        alias: str,
        version: int,
        *,
        actor: str | None,
        reason: str | None,
        lifecycle: bool = False,
        kind: str = "alias",
        also: Callable[[Connection], None] | None = None,
        first: Callable[[Connection], None] | None = None,
    ) -> int | None:
        """Point ``alias`` at ``version`` in ONE transaction with what follows from it:
        with ``lifecycle``, the version becomes ``production`` (through ``approved``) and
        the one it replaces goes back to ``approved``; ``first`` writes before the move
        (a retrain's merge into main) and ``also`` after it (an audit entry), in the
        same transaction. Returns the version the alias pointed at before."""
        with self._store.write() as c:
            if first is not None:
                first(c)
            previous = self._move(c, name, alias, version, actor=actor, reason=reason, kind=kind)
            if lifecycle:
                status = c.execute(
                    select(model_versions.c.status).where(
                        and_(model_versions.c.name == name, model_versions.c.version == version)
                    )
                ).scalar()
                if status == "candidate":
                    self._transition(c, name, version, "approved", actor=actor, reason=reason)
                if status in ("candidate", "approved"):
                    self._transition(c, name, version, "production", actor=actor, reason=reason)
                if previous is not None and previous != version:
                    row = c.execute(
                        select(model_versions.c.status).where(
                            and_(
                                model_versions.c.name == name, model_versions.c.version == previous
                            )
                        )
                    ).first()
                    if row is not None and row[0] == "production":
                        self._transition(
                            c,
                            name,
                            previous,
                            "approved",
                            actor=actor,
                            reason=f"superseded by version {version}",
                        )
            if also is not None:
                also(c)
        return previous

    def record(
        self,
        name: str,
        kind: str,
        *,
        actor: str | None,
        alias: str | None = None,
        version: int | None = None,
        reason: str | None = None,
    ) -> None:
        """Add an event to the audit trail (promotion requests and decisions)."""
        with self._store.write() as c:
            self.record_in(c, name, kind, actor=actor, alias=alias, version=version, reason=reason)

    def alias_in(self, c: Connection, name: str, alias: str) -> int | None:
        """The version ``alias`` points at, read inside the caller's transaction."""
        found = c.execute(
            select(model_aliases.c.version).where(
                and_(model_aliases.c.name == name, model_aliases.c.alias == alias)
            )
        ).scalar()
        return None if found is None else int(found)

    def record_in(
        self,
        c: Connection,
        name: str,
        kind: str,
        *,
        actor: str | None,
        alias: str | None = None,
        version: int | None = None,
        reason: str | None = None,
    ) -> None:
        """:meth:`record` inside the caller's transaction (an approval that commits
        with the alias move it allows)."""
        self._require(c, name)
        _event(c, name, kind, actor, alias=alias, version=version, reason=reason)

    def events(self, name: str, *, limit: int = 200) -> builtins.list[ModelEvent]:
        with self._store.read() as c:
            self._require(c, name)
            rows = c.execute(
                select(model_events)
                .where(model_events.c.name == name)
                .order_by(model_events.c.id.desc())
                .limit(limit)
            ).all()
        return [ModelEvent(**{k: v for k, v in r._mapping.items() if k != "id"}) for r in rows]

    def for_run(self, run_id: str) -> builtins.list[ModelVersionRecord]:
        with self._store.read() as c:
            rows = c.execute(select(model_versions).where(model_versions.c.run_id == run_id)).all()
        return [ModelVersionRecord.from_row(r) for r in rows]

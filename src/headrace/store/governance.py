"""Principals, API tokens, role grants and the tamper-evident audit log.

**Tokens** read ``hr_<id>_<secret>``: the id finds the row, and only the SHA-256 of the
secret is stored, compared in constant time. A token can expire and be revoked; a
disabled principal's tokens stop working.

**The audit log** is append-only. Entry ``n`` stores a seal of its own fields and of entry
``n-1``'s seal, so editing an entry breaks its seal and removing one breaks the next
entry's link; ``audit_head`` holds the last sequence number and seal, so removing the
newest entries shows too. With a keyring (:meth:`GovernanceRepository.use_keys`; a
workspace always gives one) the seal is an HMAC under a key the store never holds and the
entry records the key's id, so a writer of the store without the key cannot recompute
the chain; without one, entries get the unkeyed SHA-256 of old stores (``legacy``).
Appends are serialised (SQLite's write lock; a transaction-scoped advisory lock on
PostgreSQL), so the chain never forks. :meth:`GovernanceRepository.verify_chain` walks
the chain, checks the given checkpoints against it and reports the first break.
"""

from __future__ import annotations

import builtins
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, bindparam, delete, func, insert, select, text, update

from headrace.core.audit_chain import (
    GENESIS,
    ChainVerdict,
    ChainWalk,
    Checkpoint,
    Keyring,
    keyed_seal,
    legacy_hash,
)
from headrace.core.governance import (
    EVERYWHERE,
    check_principal_name,
    check_role,
    highest,
)
from headrace.errors import HeadraceError
from headrace.store.failures import storable
from headrace.store.schema import (
    api_tokens,
    audit_checkpoints,
    audit_head,
    audit_log,
    principals,
    role_grants,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from sqlalchemy import Connection

    from headrace.store.engine import MetadataStore

#: The unkeyed seal of old entries (kept under its old name: the chain of a store
#: without audit keys is still made of it).
entry_hash = legacy_hash
# Built once: an audited call appends an entry, and building statements costs more
# than running them.
_HEAD = select(audit_head.c.seq, audit_head.c.hash)
_APPEND = insert(audit_log)
_MOVE_HEAD = (
    update(audit_head)
    .where(audit_head.c.id == 1)
    .values(seq=bindparam("new_seq"), hash=bindparam("new_hash"))
)
_AUDIT_LOCK = 48_151_623  # the advisory lock of audit appends on PostgreSQL


class GovernanceError(HeadraceError):
    """A principal, token or grant request that cannot be done: says why."""


class InvalidToken(GovernanceError):
    """A token that is malformed, unknown, wrong, expired, revoked or disabled
    (``reason``: one of those words; ``token_id``: the id it named, if any)."""

    def __init__(self, message: str, *, reason: str, token_id: str | None = None) -> None:
        super().__init__(message)
        self.reason, self.token_id = reason, token_id


@dataclass(frozen=True)
class Principal:
    name: str
    kind: str
    created_at: float
    created_by: str | None
    disabled: bool
    grants: dict[str, str]  # namespace -> role

    def role(self, namespace: str = EVERYWHERE) -> str | None:
        """The strongest role that applies in ``namespace``."""
        return highest([r for ns, r in self.grants.items() if ns in (EVERYWHERE, namespace)])


@dataclass(frozen=True)
class TokenRecord:
    id: str
    principal: str
    description: str | None
    created_at: float
    expires_at: float | None
    revoked_at: float | None
    last_used_at: float | None


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    at: float
    actor: str
    action: str
    target: str | None
    outcome: str
    details: dict[str, Any]
    prev_hash: str
    hash: str
    key_id: str | None = None  # the key that sealed it; None: unkeyed (legacy)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class GovernanceRepository:
    def __init__(self, store: MetadataStore) -> None:
        self._store = store
        self._keyring: Callable[[bool], Keyring | None] = lambda sealing: None

    def use_keys(self, keyring: Callable[[bool], Keyring | None]) -> None:
        """Seal new entries with the current key of ``keyring(True)`` (called at each
        append, so a rotated key is picked up) and verify with all the keys of
        ``keyring(False)``."""
        self._keyring = keyring

    # -- principals and grants --------------------------------------------------------

    def create_principal(
        self,
        name: str,
        *,
        kind: str = "person",
        role: str | None = None,
        namespace: str = EVERYWHERE,
        actor: str | None = None,
    ) -> Principal:
        check_principal_name(name)
        if kind not in ("person", "service"):
            raise GovernanceError(f"a principal is a person or a service, not {kind!r}")
        if role is not None:
            check_role(role)
        now = time.time()
        with self._store.write() as c:
            if c.execute(select(principals.c.name).where(principals.c.name == name)).first():
                raise GovernanceError(f"principal {name!r} exists")
            c.execute(
                insert(principals).values(
                    name=name, kind=kind, created_at=now, created_by=actor, disabled=False
                )
            )
            if role is not None:
                self._grant(c, name, namespace, role, actor, now)
            self._append(c, actor or name, "principal.create", name, "ok", {"kind": kind})
        return self.principal(name)

    def create_first_admin(self, name: str) -> Principal:
        """The first admin (refused once any admin exists: no default password, no
        second way in)."""
        with self._store.read() as c:
            existing = c.execute(
                select(role_grants.c.principal).where(role_grants.c.role == "admin").limit(1)
            ).scalar()
        if existing is not None:
            raise GovernanceError(
                f"an admin exists ({existing}); admins grant roles to others, with their token"
            )
        return self.create_principal(name, role="admin", actor=name)

    def grant(self, name: str, role: str, *, namespace: str = EVERYWHERE, actor: str) -> None:
        check_role(role)
        with self._store.write() as c:
            self._require(c, name)
            self._grant(c, name, namespace, role, actor, time.time())
            self._append(c, actor, "role.grant", name, "ok", {"role": role, "namespace": namespace})

    def revoke_grant(self, name: str, *, namespace: str = EVERYWHERE, actor: str) -> None:
        with self._store.write() as c:
            self._require(c, name)
            done = c.execute(
                delete(role_grants).where(
                    and_(role_grants.c.principal == name, role_grants.c.namespace == namespace)
                )
            ).rowcount
            if not done:
                raise GovernanceError(f"{name} has no role in {namespace!r}")
            self._append(c, actor, "role.revoke", name, "ok", {"namespace": namespace})

    def set_disabled(self, name: str, disabled: bool, *, actor: str) -> None:
        with self._store.write() as c:
            self._require(c, name)
            c.execute(update(principals).where(principals.c.name == name).values(disabled=disabled))
            action = "principal.disable" if disabled else "principal.enable"
            self._append(c, actor, action, name, "ok", {})

    def principal(self, name: str) -> Principal:
        with self._store.read() as c:
            row = self._require(c, name)
            grants = {
                ns: role
                for ns, role in c.execute(
                    select(role_grants.c.namespace, role_grants.c.role).where(
                        role_grants.c.principal == name
                    )
                )
            }
        return Principal(
            name=row.name,
            kind=row.kind,
            created_at=row.created_at,
            created_by=row.created_by,
            disabled=bool(row.disabled),
            grants=grants,
        )

    def principals(self) -> builtins.list[Principal]:
        with self._store.read() as c:
            names = [n for (n,) in c.execute(select(principals.c.name).order_by(principals.c.name))]
        return [self.principal(n) for n in names]

    @staticmethod
    def _require(c: Connection, name: str) -> Any:
        row = c.execute(select(principals).where(principals.c.name == name)).first()
        if row is None:
            raise GovernanceError(f"no principal named {name!r}")
        return row

    @staticmethod
    def _grant(
        c: Connection, name: str, namespace: str, role: str, actor: str | None, now: float
    ) -> None:
        c.execute(
            delete(role_grants).where(
                and_(role_grants.c.principal == name, role_grants.c.namespace == namespace)
            )
        )
        c.execute(
            insert(role_grants).values(
                principal=name, namespace=namespace, role=role, granted_at=now, granted_by=actor
            )
        )

    # -- tokens -----------------------------------------------------------------------

    def issue_token(
        self,
        name: str,
        *,
        expires_in: float | None = None,
        description: str | None = None,
        actor: str | None = None,
    ) -> str:
        """A new token for ``name``, returned once (only its hash is kept)."""
        if expires_in is not None and expires_in <= 0:
            raise GovernanceError(f"a token must expire in the future (got {expires_in} s)")
        token_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
        now = time.time()
        with self._store.write() as c:
            self._require(c, name)
            c.execute(
                insert(api_tokens).values(
                    id=token_id,
                    principal=name,
                    secret_hash=_digest(secret),
                    description=description,
                    created_at=now,
                    expires_at=None if expires_in is None else now + expires_in,
                )
            )
            self._append(c, actor or name, "token.issue", name, "ok", {"token": token_id})
        return f"hr_{token_id}_{secret}"

    def authenticate(self, token: str, *, now: float | None = None) -> Principal:
        """The principal a token stands for, or InvalidToken saying why not."""
        now = time.time() if now is None else now
        parts = token.split("_", 2) if isinstance(token, str) else []
        if len(parts) != 3 or parts[0] != "hr" or not parts[1] or not parts[2]:
            raise InvalidToken(
                "not a headrace token (expected hr_<id>_<secret>)", reason="malformed"
            )
        with self._store.read() as c:
            row = c.execute(select(api_tokens).where(api_tokens.c.id == parts[1])).first()
        if row is None or not hmac.compare_digest(row.secret_hash, _digest(parts[2])):
            raise InvalidToken("unknown token", reason="unknown", token_id=parts[1][:32])
        if row.revoked_at is not None:
            raise InvalidToken(f"token {row.id} was revoked", reason="revoked", token_id=row.id)
        if row.expires_at is not None and row.expires_at <= now:
            raise InvalidToken(f"token {row.id} expired", reason="expired", token_id=row.id)
        principal = self.principal(row.principal)
        if principal.disabled:
            raise InvalidToken(
                f"principal {principal.name} is disabled", reason="disabled", token_id=row.id
            )
        with self._store.write() as c:
            c.execute(update(api_tokens).where(api_tokens.c.id == row.id).values(last_used_at=now))
        return principal

    def revoke_token(self, token_id: str, *, actor: str) -> None:
        with self._store.write() as c:
            done = c.execute(
                update(api_tokens)
                .where(and_(api_tokens.c.id == token_id, api_tokens.c.revoked_at.is_(None)))
                .values(revoked_at=time.time())
            ).rowcount
            if not done:
                raise GovernanceError(f"no live token {token_id!r}")
            self._append(c, actor, "token.revoke", token_id, "ok", {})

    def tokens(self, name: str | None = None) -> builtins.list[TokenRecord]:
        query = select(api_tokens).order_by(api_tokens.c.created_at)
        if name is not None:
            query = query.where(api_tokens.c.principal == name)
        with self._store.read() as c:
            return [
                TokenRecord(
                    id=r.id,
                    principal=r.principal,
                    description=r.description,
                    created_at=r.created_at,
                    expires_at=r.expires_at,
                    revoked_at=r.revoked_at,
                    last_used_at=r.last_used_at,
                )
                for r in c.execute(query)
            ]

    # -- the audit log ----------------------------------------------------------------

    def record(
        self,
        actor: str,
        action: str,
        target: str | None,
        outcome: str,
        details: dict[str, Any] | None = None,
    ) -> AuditEntry:
        """Append one entry (in its own transaction)."""
        with self._store.write() as c:
            return self._append(c, actor, action, target, outcome, details or {})

    def append(
        self,
        c: Connection,
        actor: str,
        action: str,
        target: str | None,
        outcome: str,
        details: dict[str, Any],
    ) -> AuditEntry:
        """Append one entry inside the caller's transaction, so an action and its audit
        entry are written together or not at all."""
        return self._append(c, actor, action, target, outcome, details)

    def _append(
        self,
        c: Connection,
        actor: str,
        action: str,
        target: str | None,
        outcome: str,
        details: dict[str, Any],
    ) -> AuditEntry:
        # Actors and targets come from clients (names, request paths): bounded so that a
        # long one or a NUL byte cannot make the entry, and the action, fail.
        actor, action, outcome = storable(actor, 200), storable(action, 100), storable(outcome, 32)
        target = None if target is None else storable(target)
        if c.dialect.name == "postgresql":
            c.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _AUDIT_LOCK})
        head = c.execute(_HEAD).first()
        seq, prev = (1, GENESIS) if head is None else (head.seq + 1, head.hash)
        at = time.time()
        encoded = json.dumps(details, sort_keys=True, default=str)
        keyring = self._keyring(True)
        if keyring is None:
            key_id = None
            digest = legacy_hash(seq, at, actor, action, target, outcome, encoded, prev)
        else:
            key = keyring.current
            key_id = key.id
            digest = keyed_seal(key, seq, at, actor, action, target, outcome, encoded, prev)
        c.execute(
            _APPEND,
            {
                "seq": seq,
                "at": at,
                "actor": actor,
                "action": action,
                "target": target,
                "outcome": outcome,
                "details": encoded,
                "prev_hash": prev,
                "hash": digest,
                "key_id": key_id,
            },
        )
        if head is None:
            c.execute(insert(audit_head).values(id=1, seq=seq, hash=digest))
        else:
            c.execute(_MOVE_HEAD, {"new_seq": seq, "new_hash": digest})
        return AuditEntry(seq, at, actor, action, target, outcome, details, prev, digest, key_id)

    def audit(self, *, limit: int = 100, after: int = 0) -> builtins.list[AuditEntry]:
        query = select(audit_log).where(audit_log.c.seq > after).order_by(audit_log.c.seq)
        with self._store.read() as c:
            rows = c.execute(query.limit(limit)).all()
        return [
            AuditEntry(
                r.seq,
                r.at,
                r.actor,
                r.action,
                r.target,
                r.outcome,
                json.loads(r.details),
                r.prev_hash,
                r.hash,
                r.key_id,
            )
            for r in rows
        ]

    def verify(self) -> tuple[int, str | None]:
        """(entries checked, the first break found or None), with this repository's
        keys and no checkpoints: see :meth:`verify_chain`."""
        verdict = self.verify_chain()
        return verdict.checked, verdict.problem

    def verify_chain(
        self, *, keyring: Keyring | None = None, checkpoints: Sequence[Checkpoint] = ()
    ) -> ChainVerdict:
        """Walk the chain with ``keyring`` (default: this repository's) and report the
        first break: a missing entry, a broken link, a seal that does not match, an
        entry sealed with a key not given, an unkeyed entry after keyed ones, a head
        that does not end the chain, or a checkpoint the chain does not match."""
        ring = self._keyring(False) if keyring is None else keyring
        wanted: dict[int, list[Checkpoint]] = {}
        for point in checkpoints:
            wanted.setdefault(point.seq, []).append(point)
        walk = ChainWalk(ring, wanted)
        with self._store.read() as c:
            head = c.execute(_HEAD).first()
            count = c.execute(select(func.count()).select_from(audit_log)).scalar() or 0
            for r in c.execute(select(audit_log).order_by(audit_log.c.seq)):
                problem = walk.step(r)
                if problem is not None:
                    return walk.verdict(problem)
        last = walk.expected - 1
        if head is None and count:
            return walk.verdict("the log's head record is missing")
        if head is not None and (head.seq != last or head.hash != walk.prev):
            return walk.verdict(
                f"the log ends at entry {last} but its head says {head.seq}: "
                "entries were removed from its end"
            )
        beyond = sorted((p for p in checkpoints if p.seq > last), key=lambda p: p.seq)
        for point in beyond:  # a forged one must not raise a false alarm
            problem = walk.unsigned(point)
            if problem is not None:
                return walk.verdict(problem)
        if beyond:
            point = beyond[-1]
            return walk.verdict(
                f"a checkpoint signed with key {point.key_id!r} vouches for {point.seq} "
                f"entries but the log ends at entry {last}: entries were removed from its end"
            )
        return walk.verdict(None)

    # -- checkpoints ------------------------------------------------------------------

    def head(self) -> tuple[int, str] | None:
        """(the last entry's number, its seal), None while the log is empty."""
        with self._store.read() as c:
            row = c.execute(_HEAD).first()
        return None if row is None else (row.seq, row.hash)

    def add_checkpoint(self, point: Checkpoint, blob: str) -> None:
        """Keep a checkpoint's record (its copy outside the store is blob ``blob``)."""
        with self._store.write() as c:
            c.execute(delete(audit_checkpoints).where(audit_checkpoints.c.seq == point.seq))
            c.execute(
                insert(audit_checkpoints).values(
                    seq=point.seq,
                    head=point.head,
                    key_id=point.key_id,
                    at=point.at,
                    signature=point.signature,
                    blob=blob,
                )
            )

    def checkpoints(self) -> builtins.list[tuple[Checkpoint, str]]:
        """Recorded checkpoints, oldest first, each with its blob's digest."""
        with self._store.read() as c:
            rows = c.execute(select(audit_checkpoints).order_by(audit_checkpoints.c.seq)).all()
        return [(Checkpoint(r.seq, r.head, r.key_id, r.at, r.signature), r.blob) for r in rows]

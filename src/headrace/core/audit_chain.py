"""The audit chain's seals: keyed MACs of entries, the legacy unkeyed hash, and signed
checkpoints of the chain's head. Pure: where keys and checkpoints are kept is the
workspace's and the store's business.

An entry's seal is HMAC-SHA256, under a key the metadata store never holds, of its fields,
the key's id and the seal of the entry before it. Whoever can write to the store but lacks
the key can still delete or edit rows, but cannot compute seals that verify. Entries
written before keys existed carry the plain SHA-256 of the same fields (``legacy``): they
prove nothing against a writer of the store, and verification says so.

A checkpoint is the count of entries and the last entry's seal, signed with the key, so
a copy kept outside the store (in the object store, or printed for a witness) shows when
the store's history was cut short or rewritten wholesale.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from typing import Any

from headrace.errors import HeadraceError

GENESIS = "0" * 64
KEY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")
MIN_SECRET = 32
CHECKPOINT_KIND = "headrace-audit-checkpoint"


class AuditKeyError(HeadraceError):
    """An audit key that is malformed, too short, duplicated or not given."""


class CheckpointFormatError(HeadraceError):
    """A checkpoint that is not one headrace wrote: says which field is wrong."""


@dataclass(frozen=True)
class AuditKey:
    id: str
    secret: bytes = b""

    def __repr__(self) -> str:  # never print the secret
        return f"AuditKey({self.id!r})"


@dataclass(frozen=True)
class Keyring:
    """Audit keys, oldest first: the last seals new entries, all verify old ones."""

    keys: tuple[AuditKey, ...]

    def __post_init__(self) -> None:
        if not self.keys:
            raise AuditKeyError("an audit keyring needs at least one key")
        ids = [k.id for k in self.keys]
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            raise AuditKeyError(
                f"audit key id {twice[0]!r} appears twice; give each key its own id"
            )

    @property
    def current(self) -> AuditKey:
        return self.keys[-1]

    def get(self, key_id: str) -> AuditKey | None:
        return next((k for k in self.keys if k.id == key_id), None)

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(k.id for k in self.keys)


def make_key(key_id: str, secret: str, *, where: str) -> AuditKey:
    """A key from its id and secret text, refused (naming ``where``) when either breaks
    the rules: an id of letters, digits, ``_ . -``; a secret of 32 characters or more."""
    if not KEY_ID.fullmatch(key_id):
        raise AuditKeyError(
            f"{where}: audit key id {key_id!r} is not valid; use 1 to 64 letters, digits, "
            "_ . - (starting with a letter or digit)"
        )
    if len(secret) < MIN_SECRET:
        raise AuditKeyError(
            f"{where}: audit key {key_id!r} has a {len(secret)}-character secret; use "
            f"{MIN_SECRET} or more (headrace audit rotate-key makes one)"
        )
    return AuditKey(key_id, secret.encode())


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def _fields(
    seq: int,
    at: float,
    actor: str,
    action: str,
    target: str | None,
    outcome: str,
    details: str,
    prev_hash: str,
) -> list[Any]:
    return [seq, repr(at), actor, action, target, outcome, details, prev_hash]


def legacy_hash(
    seq: int,
    at: float,
    actor: str,
    action: str,
    target: str | None,
    outcome: str,
    details: str,
    prev_hash: str,
) -> str:
    """The unkeyed SHA-256 seal of entries written before audit keys (anyone can
    recompute it)."""
    fields = _fields(seq, at, actor, action, target, outcome, details, prev_hash)
    return hashlib.sha256(json.dumps(fields, separators=(",", ":")).encode()).hexdigest()


def keyed_seal(
    key: AuditKey,
    seq: int,
    at: float,
    actor: str,
    action: str,
    target: str | None,
    outcome: str,
    details: str,
    prev_hash: str,
) -> str:
    """HMAC-SHA256 under ``key`` of the entry's fields, the key's id and the previous
    seal (the id is sealed too, so an entry cannot be passed off under another key)."""
    fields = [*_fields(seq, at, actor, action, target, outcome, details, prev_hash), key.id]
    message = json.dumps(fields, separators=(",", ":")).encode()
    return hmac.new(key.secret, message, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Checkpoint:
    """``seq`` entries, the last sealed ``head``, signed at ``at`` with key ``key_id``."""

    seq: int
    head: str
    key_id: str
    at: float
    signature: str

    def line(self) -> str:
        """One line of JSON, to keep in the object store or hand to a witness."""
        return json.dumps(
            {
                "kind": CHECKPOINT_KIND,
                "seq": self.seq,
                "head": self.head,
                "key": self.key_id,
                "at": self.at,
                "signature": self.signature,
            },
            separators=(",", ":"),
        )


def _signed(seq: int, head: str, key_id: str, at: float) -> bytes:
    return json.dumps([CHECKPOINT_KIND, seq, head, key_id, repr(at)]).encode()


def sign_checkpoint(key: AuditKey, seq: int, head: str, at: float) -> Checkpoint:
    signature = hmac.new(key.secret, _signed(seq, head, key.id, at), hashlib.sha256).hexdigest()
    return Checkpoint(seq, head, key.id, at, signature)


def checkpoint_signed_by(checkpoint: Checkpoint, key: AuditKey) -> bool:
    again = hmac.new(
        key.secret, _signed(checkpoint.seq, checkpoint.head, key.id, checkpoint.at), hashlib.sha256
    ).hexdigest()
    return hmac.compare_digest(again, checkpoint.signature)


def parse_checkpoint(text: str) -> Checkpoint:
    """The checkpoint a line of :meth:`Checkpoint.line` holds, or CheckpointFormatError
    naming the field at fault."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise CheckpointFormatError(f"an audit checkpoint is one line of JSON: {exc}") from exc
    if not isinstance(data, dict) or data.get("kind") != CHECKPOINT_KIND:
        raise CheckpointFormatError(
            f'an audit checkpoint is a JSON object with "kind": "{CHECKPOINT_KIND}" '
            "(the line headrace audit checkpoint prints)"
        )
    rules: list[tuple[str, type | tuple[type, ...], str]] = [
        ("seq", int, "a positive entry count"),
        ("head", str, "the last entry's 64-hex seal"),
        ("key", str, "the id of the key that signed it"),
        ("at", (int, float), "the time it was taken"),
        ("signature", str, "a 64-hex signature"),
    ]
    for field, kind, meaning in rules:
        value = data.get(field)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise CheckpointFormatError(f"audit checkpoint field {field!r} must be {meaning}")
    hexes = re.compile(r"[0-9a-f]{64}")
    if data["seq"] < 1:
        raise CheckpointFormatError("audit checkpoint field 'seq' must be a positive entry count")
    for field in ("head", "signature"):
        if not hexes.fullmatch(data[field]):
            raise CheckpointFormatError(f"audit checkpoint field {field!r} must be 64 hex digits")
    return Checkpoint(data["seq"], data["head"], data["key"], float(data["at"]), data["signature"])


@dataclass(frozen=True)
class ChainVerdict:
    """What :meth:`GovernanceRepository.verify_chain` found.

    ``checked`` entries were good before ``problem`` (None: none found); ``legacy`` of
    them are unkeyed (SHA-256 only: not proof against a writer of the store); ``keys``
    are the ids of the keys that sealed the rest; ``checkpoints`` were matched."""

    checked: int
    problem: str | None
    legacy: int = 0
    keys: tuple[str, ...] = ()
    checkpoints: int = 0


class ChainWalk:
    """One walk along the chain, entry by entry (rows with the audit log's columns),
    checking each against ``keyring`` and the checkpoints ``wanted`` at its number."""

    def __init__(self, keyring: Keyring | None, wanted: dict[int, list[Checkpoint]]):
        self.keyring, self.wanted = keyring, wanted
        self.prev, self.expected, self.checked, self.legacy, self.matched = GENESIS, 1, 0, 0, 0
        self.keys: list[str] = []

    def verdict(self, problem: str | None) -> ChainVerdict:
        return ChainVerdict(self.checked, problem, self.legacy, tuple(self.keys), self.matched)

    def step(self, r: Any) -> str | None:
        if r.seq != self.expected:
            return f"entry {self.expected} is missing (the next is {r.seq})"
        if r.prev_hash != self.prev:
            return f"entry {r.seq} does not follow entry {r.seq - 1}"
        fields = (r.seq, r.at, r.actor, r.action, r.target, r.outcome, r.details, r.prev_hash)
        if r.key_id is None:
            if self.keys:
                return (
                    f"entry {r.seq} is unkeyed but follows entries sealed with key "
                    f"{self.keys[-1]!r}: it was rewritten without the key"
                )
            if legacy_hash(*fields) != r.hash:
                return f"entry {r.seq} was changed after it was written"
        else:
            key = None if self.keyring is None else self.keyring.get(r.key_id)
            if key is None:
                return (
                    f"entry {r.seq} is sealed with audit key {r.key_id!r}, which was not "
                    "given: set HEADRACE_AUDIT_KEY or the key file that holds it"
                )
            if not hmac.compare_digest(keyed_seal(key, *fields), r.hash):
                return (
                    f"entry {r.seq} was changed after it was written (its seal under key "
                    f"{key.id!r} does not match)"
                )
            if key.id not in self.keys:
                self.keys.append(key.id)
        for point in self.wanted.get(r.seq, []):
            problem = self._match(point, r.hash)
            if problem is not None:
                return problem
        self.prev, self.expected, self.checked = r.hash, r.seq + 1, self.checked + 1
        self.legacy += r.key_id is None
        return None

    def unsigned(self, point: Checkpoint) -> str | None:
        """Why ``point`` is not a checkpoint signed with a given key (None: it is)."""
        key = None if self.keyring is None else self.keyring.get(point.key_id)
        if key is None:
            return (
                f"the checkpoint of entry {point.seq} is signed with audit key "
                f"{point.key_id!r}, which was not given"
            )
        if not checkpoint_signed_by(point, key):
            return f"the checkpoint of entry {point.seq} is not signed by key {key.id!r}: forged"
        return None

    def _match(self, point: Checkpoint, seal: str) -> str | None:
        problem = self.unsigned(point)
        if problem is not None:
            return problem
        if not hmac.compare_digest(point.head, seal):
            return (
                f"entry {point.seq} does not match the checkpoint signed with key "
                f"{point.key_id!r}: the history up to it was rewritten"
            )
        self.matched += 1
        return None

"""The audit trail beyond the metadata store: signed checkpoints kept in the object store
(and printed for a witness), verification against them, and key rotation.

A checkpoint's record in the store only says where its copy is; verification trusts the
copy in the object store (and any checkpoint a witness hands back), never the record.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from headrace.core.audit_chain import (
    AuditKeyError,
    ChainVerdict,
    Checkpoint,
    CheckpointFormatError,
    Keyring,
    parse_checkpoint,
    sign_checkpoint,
)
from headrace.errors import HeadraceError

if TYPE_CHECKING:
    from headrace.runtime.workspace import Workspace


class CheckpointRefusedError(HeadraceError):
    """A checkpoint that would vouch for nothing (an empty log) or for a broken chain."""


@dataclass(frozen=True)
class Rotation:
    old: str | None
    new: str
    file: str


def _keys(ws: Workspace, sealing: bool) -> Keyring | None:
    from headrace.workspace.audit_keys import KeySource

    return KeySource(ws.settings)(sealing)


def take_checkpoint(ws: Workspace) -> tuple[Checkpoint, str]:
    """Sign the chain's head with the current key, keep it in the object store and
    record where: (the checkpoint, its blob's digest). Refused for an empty log or a
    chain that does not verify (a checkpoint must not vouch for a rewrite)."""
    governance = ws.store.governance
    verdict = verify_trail(ws)
    if verdict.problem is not None:
        raise CheckpointRefusedError(
            f"the audit log does not verify, so it is not checkpointed: {verdict.problem}"
        )
    head = governance.head()
    if head is None:
        raise CheckpointRefusedError("the audit log is empty: there is nothing to checkpoint")
    keyring = _keys(ws, True)
    assert keyring is not None  # sealing makes the default key when none is set
    point = sign_checkpoint(keyring.current, head[0], head[1], time.time())
    digest = ws.blobs.put_bytes(point.line().encode())
    governance.add_checkpoint(point, digest)
    return point, digest


def verify_trail(
    ws: Workspace, *, keyring: Keyring | None = None, witnessed: Sequence[Checkpoint] = ()
) -> ChainVerdict:
    """Verify the chain with ``keyring`` (default: the workspace's keys) against every
    checkpoint kept in the object store and the ``witnessed`` ones."""
    from headrace.objects.blobs import BlobNotFoundError

    governance = ws.store.governance
    points = list(witnessed)
    for recorded, digest in governance.checkpoints():
        where = f"the checkpoint of entry {recorded.seq}"
        try:
            kept = parse_checkpoint(ws.blobs.get_bytes(digest).decode())
        except BlobNotFoundError:
            return ChainVerdict(
                0, f"{where}: its copy in the object store (blob {digest[:12]}) is missing"
            )
        except (CheckpointFormatError, UnicodeDecodeError) as exc:
            return ChainVerdict(0, f"{where}: its copy in the object store is unreadable: {exc}")
        if kept != recorded:
            return ChainVerdict(
                0, f"{where}: its record differs from its copy in the object store: edited"
            )
        points.append(kept)
    unique = list(dict.fromkeys(points))  # a witness may hold one the store keeps too
    return governance.verify_chain(keyring=keyring, checkpoints=unique)


def rotate_key(ws: Workspace) -> Rotation:
    """Add a new key to the key file and record the rotation, sealed with the new key;
    the chain goes on under it, and the old keys stay to verify older entries."""
    from headrace.runtime.identity import actor
    from headrace.workspace.audit_keys import KeySource

    verdict = verify_trail(ws)
    if verdict.problem is not None:
        raise AuditKeyError(
            f"the audit log does not verify, so its key is not rotated: {verdict.problem}"
        )
    old, key, path = KeySource(ws.settings).rotate()
    ws.store.governance.record(
        actor(), "audit.key.rotate", key.id, "ok", {"from": old, "to": key.id}
    )
    return Rotation(old, key.id, str(path))

"""The audit trail beyond the metadata store: signed checkpoints kept in the object store
(and printed for a witness), verification against them, and key rotation.

A checkpoint's record in the store only says where its copy is; verification trusts the
copy in the object store (and any checkpoint a witness hands back), never the record.
The newest checkpoint is also kept under a fixed name in the object store (the anchor),
so deleting the records and the newest entries from the database does not hide a cut:
the anchor still vouches for the whole log up to it. With ``[audit] checkpoint_log`` each
checkpoint's line is appended to that file too (a witness outside the workspace), and
verification reads it back.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
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
    from headrace.objects.blobs import FsspecBlobStore, LocalBlobStore
    from headrace.runtime.workspace import Workspace


#: The newest checkpoint's line, at the object store's root (beside its blobs).
ANCHOR = "audit-checkpoint.json"


class CheckpointRefusedError(HeadraceError):
    """A checkpoint that would vouch for nothing (an empty log) or for a broken chain."""


class CheckpointLogUnusableError(CheckpointRefusedError):
    """``[audit] checkpoint_log`` names a file that cannot be appended to or read: no
    checkpoint is taken (nor a key rotated) rather than one its witness never sees."""


@dataclass(frozen=True)
class Rotation:
    old: str | None
    new: str
    file: str
    checkpoint: Checkpoint


def _keys(ws: Workspace, sealing: bool) -> Keyring | None:
    from headrace.workspace.audit_keys import KeySource

    return KeySource(ws.settings)(sealing)


def take_checkpoint(ws: Workspace) -> tuple[Checkpoint, str]:
    """Sign the chain's head with the current key, keep it in the object store and
    record where: (the checkpoint, its blob's digest). Refused for an empty log or a
    chain that does not verify (a checkpoint must not vouch for a rewrite)."""
    governance = ws.store.governance
    _witness(ws, None)
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
    _anchor(ws, point)
    _witness(ws, point)
    return point, digest


def checkpoint_if_new(ws: Workspace) -> Checkpoint | None:
    """Take a checkpoint (as :func:`take_checkpoint`) if entries were appended since the
    newest one kept in the object store; None if there was nothing new to vouch for."""
    head = ws.store.governance.head()
    if head is None:
        return None
    newest = anchored(ws)
    if newest is not None and newest.seq >= head[0]:
        return None
    point, _ = take_checkpoint(ws)
    return point


def _meta(ws: Workspace) -> LocalBlobStore | FsspecBlobStore:
    # an encrypted store keeps its side files in the store it wraps: a checkpoint is no
    # secret, and one that needs the encryption key to read is no use to an auditor
    from headrace.objects.encrypted import EncryptedBlobStore

    blobs = ws.blobs
    return blobs.inner if isinstance(blobs, EncryptedBlobStore) else blobs


def anchored(ws: Workspace) -> Checkpoint | None:
    """The newest checkpoint kept under the object store's fixed name, or None."""
    raw = _meta(ws).read_meta(ANCHOR)
    if raw is None:
        return None
    try:
        return parse_checkpoint(raw.decode())
    except (CheckpointFormatError, UnicodeDecodeError) as exc:
        raise CheckpointFormatError(
            f"the object store's {ANCHOR} (the newest audit checkpoint) is unreadable: {exc}; "
            "restore it from a backup of the object store"
        ) from exc


def _anchor(ws: Workspace, point: Checkpoint) -> None:
    newest = anchored(ws)
    if newest is None or newest.seq <= point.seq:  # a slower writer never moves it back
        _meta(ws).write_meta(ANCHOR, point.line().encode(), replace=True)


def _witness_file(ws: Workspace) -> Path | None:
    name = ws.settings.audit_checkpoint_log
    if not name:
        return None
    path = Path(name).expanduser()
    return path if path.is_absolute() else ws.settings.root / path


def _witness(ws: Workspace, point: Checkpoint | None) -> None:
    """Append ``point``'s line to the checkpoint log; with None, only make sure it can
    be appended to (before anything is written, so a refusal leaves nothing behind)."""
    path = _witness_file(ws)
    if path is None:
        return
    try:
        with open(path, "a", encoding="utf-8") as handle:
            if point is not None:
                handle.write(point.line() + "\n")
    except OSError as exc:
        raise CheckpointLogUnusableError(
            f"audit checkpoint_log {path}: cannot append checkpoints to it "
            f"({exc.strerror or exc}); make the file writable or change [audit] checkpoint_log "
            "(HEADRACE_AUDIT_CHECKPOINT_LOG)"
        ) from exc


def _witnessed_lines(ws: Workspace) -> list[Checkpoint]:
    path = _witness_file(ws)
    if path is None or not path.exists():
        return []
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise CheckpointLogUnusableError(
            f"audit checkpoint_log {path}: cannot read it ({exc}); restore the file or "
            "change [audit] checkpoint_log (HEADRACE_AUDIT_CHECKPOINT_LOG)"
        ) from exc
    points = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                points.append(parse_checkpoint(line))
            except CheckpointFormatError as exc:
                raise CheckpointFormatError(f"{path} line {number}: {exc}") from exc
    return points


def verify_trail(
    ws: Workspace, *, keyring: Keyring | None = None, witnessed: Sequence[Checkpoint] = ()
) -> ChainVerdict:
    """Verify the chain with ``keyring`` (default: the workspace's keys) against every
    checkpoint kept in the object store and the ``witnessed`` ones."""
    from headrace.objects.blobs import BlobNotFoundError

    governance = ws.store.governance
    points = list(witnessed) + _witnessed_lines(ws)
    try:
        newest = anchored(ws)
    except CheckpointFormatError as exc:  # tampered with, or damaged: a break either way
        return ChainVerdict(0, str(exc))
    if newest is not None:
        points.append(newest)
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
    _witness(ws, None)  # the new key's checkpoint must not fail after the rotation
    old, key, path = KeySource(ws.settings).rotate()
    ws.store.governance.record(
        actor(), "audit.key.rotate", key.id, "ok", {"from": old, "to": key.id}
    )
    point, _ = take_checkpoint(ws)  # the new key's first checkpoint
    return Rotation(old, key.id, str(path), point)

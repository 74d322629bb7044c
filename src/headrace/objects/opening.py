"""Opening a workspace's object store: durability, storage options and encryption keys.

An object store with a ``keys.json`` at its root is encrypted and opens only with its
key: ``HEADRACE_ENCRYPTION_KEY``, else the file named by ``[objects] key_file``
(``HEADRACE_ENCRYPTION_KEY_FILE``). The configuration holds no secret, so it can be
handed to worker processes, which read the key from the same places.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from headrace.objects.blobs import FsspecBlobStore, LocalBlobStore, open_blob_store
from headrace.objects.encrypted import EncryptedBlobStore
from headrace.objects.errors import (
    EncryptionKeyInvalidError,
    EncryptionKeyMissingError,
    EncryptionNotEnabledError,
    KeyringError,
)
from headrace.objects.keyring import (
    KEYS_FILE,
    WrappedKey,
    check_user_key,
    new_wrapped_key,
    rewrap,
)

KEY_ENV = "HEADRACE_ENCRYPTION_KEY"
NEW_KEY_ENV = "HEADRACE_NEW_ENCRYPTION_KEY"

AnyBlobStore = LocalBlobStore | FsspecBlobStore | EncryptedBlobStore


@dataclass(frozen=True)
class ObjectStoreConfig:
    """How to open a workspace's object store (no secrets: keys are read on open)."""

    url: str
    durable: bool = True
    storage_options: Mapping[str, Any] = field(default_factory=dict)
    key_file: str | None = None
    #: The workspace's folder: a key file must live outside it.
    workspace: str | None = None

    def plain(self) -> LocalBlobStore | FsspecBlobStore:
        """The store as bytes on disk (sealed bytes when it is encrypted)."""
        return open_blob_store(
            self.url, durable=self.durable, storage_options=dict(self.storage_options)
        )


def read_key_file(path: str, workspace: str | None) -> str:
    where = Path(path).expanduser().resolve()
    if workspace is not None and where.is_relative_to(Path(workspace).resolve()):
        raise EncryptionKeyInvalidError(
            f"key_file {where} is inside the workspace {workspace}; keep the key outside it "
            "(e.g. ~/.config/headrace/key, mode 600) so it is never committed or copied with it"
        )
    try:
        key = where.read_text().strip()
    except OSError as exc:
        raise EncryptionKeyInvalidError(
            f"key_file {where} cannot be read ({exc.strerror}); point [objects] key_file or "
            "HEADRACE_ENCRYPTION_KEY_FILE at a readable file holding the key"
        ) from exc
    return check_user_key(key, f"key_file {where}")


def user_key(
    config: ObjectStoreConfig, *, env: str = KEY_ENV, key_file: str | None = None
) -> tuple[str, str] | None:
    """The user's key and where it came from, or None when none is set."""
    value = os.environ.get(env)
    if value:
        return check_user_key(value.strip(), env), env
    path = key_file if env != KEY_ENV else config.key_file
    if path:
        return read_key_file(path, config.workspace), f"key_file {path}"
    return None


def _wrapped(inner: LocalBlobStore | FsspecBlobStore) -> WrappedKey | None:
    raw = inner.read_meta(KEYS_FILE)
    return None if raw is None else WrappedKey.load(raw, f"{inner.url}/{KEYS_FILE}")


def open_objects(config: ObjectStoreConfig) -> AnyBlobStore:
    """The object store, decrypting when it is encrypted; clear errors about keys."""
    inner = config.plain()
    record = _wrapped(inner)
    key = user_key(config)
    if record is None:
        if key is not None:
            raise EncryptionNotEnabledError(
                f"{key[1]} is set but the object store {inner.url} is not encrypted; unset "
                "it, or run 'headrace keys init' (on an empty store) to encrypt this one"
            )
        return inner
    if key is None:
        raise EncryptionKeyMissingError(
            f"the object store {inner.url} is encrypted (key id {record.key_id}) and no key "
            f"was given; set {KEY_ENV} or [objects] key_file to its key"
        )
    return EncryptedBlobStore(inner, record.unwrap(*key), key_id=record.key_id)


def key_status(config: ObjectStoreConfig) -> WrappedKey | None:
    """The store's wrapped-key record (no key needed), or None when it is not encrypted."""
    return _wrapped(config.plain())


def enable_encryption(config: ObjectStoreConfig) -> WrappedKey:
    """Encrypt an empty object store from now on, under the user's key."""
    key = user_key(config)
    if key is None:
        raise EncryptionKeyMissingError(
            f"no key to encrypt with; set {KEY_ENV} (make one with 'headrace keys generate') "
            "or [objects] key_file"
        )
    inner = config.plain()
    existing = _wrapped(inner)
    if existing is not None:
        raise KeyringError(
            f"the object store {inner.url} is already encrypted (key id {existing.key_id}); "
            "use 'headrace keys rotate' to change its key"
        )
    blobs = sum(1 for _ in inner.iter_blobs())
    if blobs:
        raise KeyringError(
            f"the object store {inner.url} already holds {blobs} unencrypted blobs; encryption "
            "is turned on for an empty store only: start a new workspace and import into it"
        )
    record, _ = new_wrapped_key(key[0])
    try:
        inner.write_meta(KEYS_FILE, record.dump(), replace=False)
    except FileExistsError as exc:  # another process turned it on meanwhile
        raise KeyringError(
            f"the object store {inner.url} was encrypted by another process meanwhile; "
            "check 'headrace keys status'"
        ) from exc
    return record


def rotate_key(config: ObjectStoreConfig, *, new_key_file: str | None = None) -> WrappedKey:
    """Rewrap the data key under a new user key; the blobs are not re-encrypted."""
    inner = config.plain()
    record = _wrapped(inner)
    if record is None:
        raise KeyringError(
            f"the object store {inner.url} is not encrypted; there is no key to rotate "
            "('headrace keys init' encrypts an empty store)"
        )
    old = user_key(config)
    if old is None:
        raise EncryptionKeyMissingError(
            f"rotating needs the current key: set {KEY_ENV} or [objects] key_file to it"
        )
    new = user_key(config, env=NEW_KEY_ENV, key_file=new_key_file)
    if new is None:
        raise EncryptionKeyMissingError(
            f"rotating needs the new key: set {NEW_KEY_ENV} or pass --new-key-file"
        )
    if new[0] == old[0]:
        raise EncryptionKeyInvalidError(
            f"the new key ({new[1]}) is the current key ({old[1]}); give a different one"
        )
    rotated = rewrap(record, old[0], new[0], old[1])
    inner.write_meta(KEYS_FILE, rotated.dump(), replace=True)
    return rotated


@contextmanager
def local_files(blobs: AnyBlobStore, digests: Sequence[str]) -> Iterator[list[Path]]:
    """Files holding the blobs' plain bytes, for tools that read paths (DuckDB).

    A plain local store hands out its own files; an encrypted or remote one writes
    decrypted copies into a private temporary folder (mode 700), removed on exit.
    """
    if isinstance(blobs, LocalBlobStore):
        yield [blobs.path_of(d) for d in digests]
        return
    with tempfile.TemporaryDirectory(prefix="headrace-blobs-") as folder:
        paths = []
        for digest in digests:
            path = Path(folder) / digest
            if not path.exists():
                with blobs.open(digest) as source, open(path, "wb") as target:
                    shutil.copyfileobj(source, target, 1 << 20)
            paths.append(path)
        yield paths

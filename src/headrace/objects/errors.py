"""Errors of the object store: missing blobs live in ``blobs``; these are about keys."""

from __future__ import annotations

from headrace.errors import HeadraceError


class ObjectStoreError(HeadraceError):
    """The object store cannot be opened or used as asked."""


class EncryptionKeyMissingError(ObjectStoreError):
    """The object store is encrypted and no key was given to open it."""


class EncryptionKeyMismatchError(ObjectStoreError):
    """The key given does not unwrap the object store's data key."""


class EncryptionKeyInvalidError(ObjectStoreError):
    """A key (or key file) that cannot be used: too short, unreadable, misplaced."""


class KeyringError(ObjectStoreError):
    """The object store's ``keys.json`` is missing, damaged or cannot change as asked."""


class EncryptionNotEnabledError(ObjectStoreError):
    """A key was given for an object store that is not encrypted."""


class BlobTamperedError(ObjectStoreError):
    """An encrypted blob failed authentication: changed on disk, truncated or swapped."""

    def __init__(self, digest: str, detail: str = "") -> None:
        super().__init__(
            f"blob {digest} failed authentication{f' ({detail})' if detail else ''}: it was "
            "changed, truncated or replaced in the object store; restore it from a copy"
        )
        self.digest = digest

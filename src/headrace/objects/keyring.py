"""The object store's data key, wrapped by the user's key, in ``keys.json``.

One random 256-bit data key per object store encrypts every blob. It is never stored in
plain text: ``keys.json`` (at the store's root, so it travels with the blobs) holds it
wrapped with AES-256-GCM under a key derived from the user's key by scrypt, with the
salt, the nonce and a key id. Rotating the user's key rewraps the data key; the blobs
stay as they are.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from headrace.errors import MissingExtraError
from headrace.objects.errors import (
    EncryptionKeyInvalidError,
    EncryptionKeyMismatchError,
    KeyringError,
)

KEYS_FILE = "keys.json"
FORMAT = 1
MIN_KEY_CHARS = 16
#: scrypt cost: ~50 ms and 16 MiB once per process that opens the store.
_SCRYPT = {"n": 1 << 14, "r": 8, "p": 1}


def aead(key: bytes) -> Any:
    """AES-256-GCM under ``key`` (``cryptography`` is the ``encryption`` extra)."""
    try:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    except ImportError as exc:
        raise MissingExtraError("cryptography", "encryption") from exc
    return AESGCM(key)


def generate_user_key() -> str:
    """A new random user key (256 bits, URL-safe text) for ``HEADRACE_ENCRYPTION_KEY``."""
    return secrets.token_urlsafe(32)


def check_user_key(key: str, origin: str) -> str:
    if len(key) < MIN_KEY_CHARS:
        raise EncryptionKeyInvalidError(
            f"the encryption key from {origin} has {len(key)} characters; use at least "
            f"{MIN_KEY_CHARS} (make one with 'headrace keys generate')"
        )
    return key


@dataclass(frozen=True)
class WrappedKey:
    """The content of ``keys.json``: everything but the keys themselves."""

    key_id: str
    salt: bytes
    nonce: bytes
    wrapped: bytes
    created: str
    rotated: str | None = None
    scrypt_n: int = _SCRYPT["n"]
    scrypt_r: int = _SCRYPT["r"]
    scrypt_p: int = _SCRYPT["p"]

    def dump(self) -> bytes:
        b64 = base64.b64encode
        document = {
            "format": FORMAT,
            "cipher": "AES-256-GCM, 1 MiB chunks",
            "addresses": "BLAKE3 keyed with a key derived from the data key",
            "key_id": self.key_id,
            "kdf": {
                "name": "scrypt",
                "n": self.scrypt_n,
                "r": self.scrypt_r,
                "p": self.scrypt_p,
                "salt": b64(self.salt).decode(),
            },
            "nonce": b64(self.nonce).decode(),
            "wrapped_data_key": b64(self.wrapped).decode(),
            "created": self.created,
            "rotated": self.rotated,
        }
        return json.dumps(document, indent=2).encode() + b"\n"

    @classmethod
    def load(cls, raw: bytes, where: str) -> WrappedKey:
        try:
            doc = json.loads(raw)
            if doc["format"] != FORMAT:
                raise KeyringError(
                    f"{where}: keys.json format {doc['format']!r} is not supported by this "
                    f"headrace (it reads format {FORMAT}); upgrade headrace"
                )
            kdf = doc["kdf"]
            b64 = base64.b64decode
            return cls(
                key_id=str(doc["key_id"]),
                salt=b64(kdf["salt"], validate=True),
                nonce=b64(doc["nonce"], validate=True),
                wrapped=b64(doc["wrapped_data_key"], validate=True),
                created=str(doc["created"]),
                rotated=doc.get("rotated"),
                scrypt_n=int(kdf["n"]),
                scrypt_r=int(kdf["r"]),
                scrypt_p=int(kdf["p"]),
            )
        except KeyringError:
            raise
        except (ValueError, KeyError, TypeError) as exc:
            raise KeyringError(
                f"{where}: keys.json is damaged ({type(exc).__name__}: {exc}); restore it "
                "from a backup: without it no blob can be read"
            ) from exc

    def _kek(self, user_key: str) -> bytes:
        import hashlib

        return hashlib.scrypt(
            user_key.encode(),
            salt=self.salt,
            n=self.scrypt_n,
            r=self.scrypt_r,
            p=self.scrypt_p,
            maxmem=256 << 20,
            dklen=32,
        )

    def unwrap(self, user_key: str, origin: str) -> bytes:
        """The data key; a clear error when ``user_key`` is not the one it was wrapped with."""
        from cryptography.exceptions import InvalidTag

        try:
            return bytes(aead(self._kek(user_key)).decrypt(self.nonce, self.wrapped, self._aad()))
        except InvalidTag:
            raise EncryptionKeyMismatchError(
                f"the encryption key from {origin} does not open this object store (its key "
                f"id is {self.key_id}); set the key the store was encrypted or last rotated with"
            ) from None

    def _aad(self) -> bytes:
        return f"headrace data key {self.key_id}".encode()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _wrap(data_key: bytes, user_key: str, *, created: str, rotated: str | None) -> WrappedKey:
    blank = WrappedKey(
        key_id=secrets.token_hex(8),
        salt=os.urandom(16),
        nonce=os.urandom(12),
        wrapped=b"",
        created=created,
        rotated=rotated,
    )
    wrapped = aead(blank._kek(user_key)).encrypt(blank.nonce, data_key, blank._aad())
    return replace(blank, wrapped=bytes(wrapped))


def new_wrapped_key(user_key: str) -> tuple[WrappedKey, bytes]:
    """A fresh random data key and its wrapping under ``user_key``."""
    data_key = os.urandom(32)
    return _wrap(data_key, user_key, created=_now(), rotated=None), data_key


def rewrap(record: WrappedKey, old_key: str, new_key: str, origin: str) -> WrappedKey:
    """The same data key wrapped under ``new_key`` (new salt, nonce and key id)."""
    data_key = record.unwrap(old_key, origin)
    return _wrap(data_key, new_key, created=record.created, rotated=_now())

"""Client-side encryption of an object store: AES-256-GCM per blob, keyed BLAKE3 addresses.

A blob's address is the BLAKE3 hash of its plain bytes keyed with a key derived from the
store's data key: equal contents still share one blob, but whoever lacks the key cannot
tell which blobs hold which (or equal) contents. A stored blob is a 16-byte header
(magic and a random 8-byte nonce prefix) and the plain bytes in 1 MiB chunks, each
sealed with AES-GCM under nonce ``prefix || chunk number``; each chunk's associated data
is the address, the chunk number and whether it is the last, so a changed, reordered,
truncated or swapped blob fails with :class:`BlobTamperedError`. Big files stream
through in chunks: memory stays at a few MiB whatever the size.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from blake3 import blake3

from headrace.objects.blobs import FsspecBlobStore, LocalBlobStore, _write_all
from headrace.objects.errors import BlobTamperedError, ObjectStoreError
from headrace.objects.keyring import aead

MAGIC = b"HRBLOB\x00\x01"
HEADER = len(MAGIC) + 8
CHUNK = 1 << 20
TAG = 16
_SEALED = CHUNK + TAG
_MMAP_FROM = 64 << 20
_ADDRESS_CONTEXT = "headrace 2026-12 object store blob addresses"
_CIPHER_CONTEXT = "headrace 2026-12 object store blob encryption"


def plain_size(stored: int) -> int:
    """Plain bytes in a stored blob of ``stored`` bytes (every chunk but the last is full)."""
    body = stored - HEADER
    chunks = max(1, -(-body // _SEALED))
    return body - chunks * TAG


class Sealer:
    """The store's derived keys: one addresses blobs, the other encrypts them."""

    def __init__(self, data_key: bytes) -> None:
        self.address_key = blake3(data_key, derive_key_context=_ADDRESS_CONTEXT).digest()
        self._aead = aead(blake3(data_key, derive_key_context=_CIPHER_CONTEXT).digest())

    def address(self, data: bytes | memoryview) -> str:
        return blake3(data, key=self.address_key).hexdigest()

    def address_file(self, path: Path | str) -> str:
        if os.path.getsize(path) >= _MMAP_FROM:
            hasher = blake3(key=self.address_key, max_threads=blake3.AUTO)
            return hasher.update_mmap(str(path)).hexdigest()
        hasher = blake3(key=self.address_key)
        with open(path, "rb") as handle:
            while chunk := handle.read(CHUNK):
                hasher.update(chunk)
        return hasher.hexdigest()

    @staticmethod
    def _aad(digest: str, index: int, final: bool) -> bytes:
        return bytes.fromhex(digest) + index.to_bytes(8, "big") + (b"\x01" if final else b"\x00")

    def seal(
        self, digest: str, chunks: Iterator[bytes | memoryview], count: int
    ) -> Iterator[bytes]:
        """The stored form of ``count`` plain chunks: the header, then each chunk sealed."""
        prefix = os.urandom(8)
        yield MAGIC + prefix
        for index, chunk in enumerate(chunks):
            nonce = prefix + index.to_bytes(4, "big")
            yield self._aead.encrypt(nonce, chunk, self._aad(digest, index, index == count - 1))

    def open_chunk(
        self, digest: str, prefix: bytes, index: int, final: bool, sealed: bytes
    ) -> bytes:
        from cryptography.exceptions import InvalidTag

        try:
            return bytes(
                self._aead.decrypt(
                    prefix + index.to_bytes(4, "big"), sealed, self._aad(digest, index, final)
                )
            )
        except InvalidTag:
            raise BlobTamperedError(digest, f"chunk {index}") from None

    def header(self, digest: str, head: bytes) -> bytes:
        """The nonce prefix from a stored blob's first bytes (checked)."""
        if len(head) < HEADER or head[: len(MAGIC)] != MAGIC:
            raise BlobTamperedError(digest, "not an encrypted blob")
        return head[len(MAGIC) : HEADER]

    def unseal(self, digest: str, stored: bytes) -> bytes:
        prefix = self.header(digest, stored)
        body = memoryview(stored)[HEADER:]
        count = max(1, -(-len(body) // _SEALED))
        parts = []
        for index in range(count):
            sealed = bytes(body[index * _SEALED : (index + 1) * _SEALED])
            parts.append(self.open_chunk(digest, prefix, index, index == count - 1, sealed))
        return b"".join(parts)


class _Decrypting(io.RawIOBase):
    """Reads a stored blob chunk by chunk and hands out its plain bytes."""

    def __init__(self, sealer: Sealer, digest: str, raw: IO[bytes], stored: int) -> None:
        super().__init__()
        self._sealer, self._digest, self._raw = sealer, digest, raw
        self._prefix = sealer.header(digest, raw.read(HEADER))
        self._count = max(1, -(-(stored - HEADER) // _SEALED))
        self._index = 0
        self._plain = b""
        self._offset = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self._offset >= len(self._plain):
            if self._index >= self._count:
                return 0
            sealed = self._raw.read(_SEALED)
            final = self._index == self._count - 1
            self._plain = self._sealer.open_chunk(
                self._digest, self._prefix, self._index, final, sealed
            )
            self._index += 1
            self._offset = 0
            if not self._plain:
                return 0
        n = min(len(view), len(self._plain) - self._offset)
        view[:n] = self._plain[self._offset : self._offset + n]
        self._offset += n
        return n

    def close(self) -> None:
        if not self.closed:
            self._raw.close()
        super().close()


class EncryptedBlobStore:
    """A blob store whose blobs are encrypted before they leave this process.

    Wraps a local or fsspec store: its folders, temporaries, durability and garbage
    collection work as before, on sealed bytes. The ``put``/``get`` API is the plain
    one, so callers need not know.
    """

    def __init__(
        self, inner: LocalBlobStore | FsspecBlobStore, data_key: bytes, *, key_id: str
    ) -> None:
        self.inner = inner
        self.url = inner.url
        self.key_id = key_id
        self.durable = inner.durable
        self._sealer = Sealer(data_key)

    def address(self, data: bytes | memoryview) -> str:
        """The address this store gives ``data`` (keyed BLAKE3)."""
        return self._sealer.address(data)

    def _store(self, digest: str, chunks: Iterator[bytes | memoryview], count: int) -> None:
        tmp = self.inner.temporary()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o444)
        try:
            try:
                for part in self._sealer.seal(digest, chunks, count):
                    _write_all(fd, part)
            finally:
                os.close(fd)
            self.inner.publish_file(tmp, digest)
        except BaseException:  # a full disk, a vanished file: leave no temporary behind
            tmp.unlink(missing_ok=True)
            raise

    def put_bytes(self, data: bytes) -> str:
        digest = self._sealer.address(data)
        if self.inner.exists(digest):
            return digest
        view = memoryview(data)
        count = max(1, -(-len(view) // CHUNK))
        self._store(digest, (view[i * CHUNK : (i + 1) * CHUNK] for i in range(count)), count)
        return digest

    def put_file(self, path: Path, *, move: bool = False) -> str:
        source = Path(path).resolve()
        info = source.stat()
        local = isinstance(self.inner, LocalBlobStore)
        cacheable = local and not move and source.is_file()
        if cacheable:
            assert isinstance(self.inner, LocalBlobStore)
            known = self.inner._known_digest(source, info)
            if known is not None and self.inner.exists(known):
                return known
        digest = self._sealer.address_file(source)
        if not self.inner.exists(digest):
            with open(source, "rb", buffering=0) as handle:
                size = os.fstat(handle.fileno()).st_size
                count = max(1, -(-size // CHUNK))
                self._store(digest, _read_chunks(handle, source, count), count)
        if cacheable:
            assert isinstance(self.inner, LocalBlobStore)
            self.inner._remember_file(source, info, digest)
        if move:
            Path(path).unlink(missing_ok=True)
        return digest

    def known_digest(self, path: Path | str) -> str | None:
        """The address of a file stored before and unchanged since (no read), or None."""
        if isinstance(self.inner, LocalBlobStore):
            return self.inner.known_digest(path)
        return None

    def get_bytes(self, digest: str) -> bytes:
        return self._sealer.unseal(digest, self.inner.get_bytes(digest))

    def open(self, digest: str) -> IO[bytes]:
        stored = self.inner.size(digest)
        raw = self.inner.open(digest)
        try:
            return io.BufferedReader(_Decrypting(self._sealer, digest, raw, stored), CHUNK)
        except BaseException:
            raw.close()
            raise

    def exists(self, digest: str) -> bool:
        return self.inner.exists(digest)

    def size(self, digest: str) -> int:
        return plain_size(self.inner.size(digest))

    def iter_blobs(self) -> Iterator[tuple[str, int, float]]:
        """Every blob as (address, stored size, modification time)."""
        return self.inner.iter_blobs()

    def delete(self, digest: str) -> None:
        self.inner.delete(digest)

    def clean_temporary(self, *, older_than: float) -> int:
        return self.inner.clean_temporary(older_than=older_than)

    def prepare(self) -> None:
        self.inner.prepare()

    def close(self) -> None:
        self.inner.close()


def _read_chunks(handle: IO[bytes], source: Path, count: int) -> Iterator[bytes]:
    for index in range(count):
        chunk = handle.read(CHUNK)
        if len(chunk) < CHUNK and index < count - 1:
            raise ObjectStoreError(f"{source} shrank while it was being stored")
        yield chunk
    if handle.read(1):
        raise ObjectStoreError(f"{source} grew while it was being stored")

"""Client-side encryption of an object store: AES-256-GCM per blob, keyed BLAKE3 addresses.

A blob's address is the BLAKE3 hash of its plain bytes keyed with a key derived from the
store's data key: equal contents still share one blob, but whoever lacks the key cannot
tell which blobs hold which (or equal) contents.

A stored blob is a 16-byte header (magic and a random 8-byte nonce prefix), the plain
bytes in 1 MiB chunks each sealed with AES-GCM under nonce ``prefix || chunk number``
(associated data: the chunk number and whether it is the last), and a 16-byte trailer:
an AES-GCM tag over the blob's address and chunk count. A changed, reordered or
truncated chunk fails its own tag; a blob moved to another address fails the trailer;
either way :class:`BlobTamperedError` names the blob. As the address is checked last,
a big file is hashed, encrypted and written in one pass; memory stays at a few MiB.
"""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from blake3 import blake3

from headrace.objects.blobs import FsspecBlobStore, LocalBlobStore
from headrace.objects.disk import Sink
from headrace.objects.errors import BlobTamperedError, ObjectStoreError
from headrace.objects.keyring import aead

MAGIC = b"HRBLOB\x00\x02"
HEADER = len(MAGIC) + 8
CHUNK = 1 << 20
TAG = 16
TRAILER = TAG
_SEALED = CHUNK + TAG
_TRAILER_INDEX = b"\xff\xff\xff\xff"
_MMAP_FROM = 64 << 20
_ADDRESS_CONTEXT = "headrace 2026-12 object store blob addresses"
_CIPHER_CONTEXT = "headrace 2026-12 object store blob encryption"


def chunk_count(plain: int) -> int:
    return max(1, -(-plain // CHUNK))


def stored_size(plain: int) -> int:
    return HEADER + plain + TAG * chunk_count(plain) + TRAILER


def plain_size(stored: int) -> int:
    """Plain bytes in a stored blob of ``stored`` bytes (every chunk but the last is full)."""
    body = stored - HEADER - TRAILER
    return body - TAG * max(1, -(-body // _SEALED))


def _count(stored: int) -> int:
    return max(1, -(-(stored - HEADER - TRAILER) // _SEALED))


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
    def _aad(index: int, final: bool) -> bytes:
        return index.to_bytes(8, "big") + (b"\x01" if final else b"\x00")

    @staticmethod
    def _bind(digest: str, count: int) -> bytes:
        return b"headrace blob " + bytes.fromhex(digest) + count.to_bytes(8, "big")

    def header_for(self, prefix: bytes) -> bytes:
        return MAGIC + prefix

    def seal_chunk(
        self, prefix: bytes, index: int, final: bool, chunk: bytes | memoryview
    ) -> bytes:
        nonce = prefix + index.to_bytes(4, "big")
        return bytes(self._aead.encrypt(nonce, chunk, self._aad(index, final)))

    def seal_chunk_into(
        self, prefix: bytes, index: int, final: bool, chunk: bytes | memoryview, out: Any
    ) -> bool:
        """Seal straight into ``out`` (``len(chunk) + TAG`` bytes); False if unsupported."""
        encrypt_into = getattr(self._aead, "encrypt_into", None)  # cryptography >= 45
        if encrypt_into is None:
            return False
        encrypt_into(prefix + index.to_bytes(4, "big"), chunk, self._aad(index, final), out)
        return True

    def trailer(self, prefix: bytes, digest: str, count: int) -> bytes:
        """The tag binding a blob's chunks to its address (checked before any read)."""
        return bytes(self._aead.encrypt(prefix + _TRAILER_INDEX, b"", self._bind(digest, count)))

    def check_trailer(self, digest: str, prefix: bytes, count: int, trailer: bytes) -> None:
        from cryptography.exceptions import InvalidTag

        try:
            self._aead.decrypt(prefix + _TRAILER_INDEX, trailer, self._bind(digest, count))
        except InvalidTag:
            raise BlobTamperedError(digest, "its address or length does not match") from None

    def open_chunk(
        self, digest: str, prefix: bytes, index: int, final: bool, sealed: bytes
    ) -> bytes:
        from cryptography.exceptions import InvalidTag

        try:
            return bytes(
                self._aead.decrypt(
                    prefix + index.to_bytes(4, "big"), sealed, self._aad(index, final)
                )
            )
        except InvalidTag:
            raise BlobTamperedError(digest, f"chunk {index}") from None

    def header(self, digest: str, head: bytes, stored: int) -> bytes:
        """The nonce prefix from a stored blob's first bytes (checked)."""
        if stored < HEADER + TAG + TRAILER or head[: len(MAGIC)] != MAGIC or len(head) < HEADER:
            raise BlobTamperedError(digest, "not an encrypted blob")
        return head[len(MAGIC) : HEADER]

    def unseal(self, digest: str, stored: bytes) -> bytes:
        prefix = self.header(digest, stored, len(stored))
        count = _count(len(stored))
        self.check_trailer(digest, prefix, count, stored[-TRAILER:])
        body = memoryview(stored)[HEADER:-TRAILER]
        parts = []
        for index in range(count):
            sealed = bytes(body[index * _SEALED : (index + 1) * _SEALED])
            parts.append(self.open_chunk(digest, prefix, index, index == count - 1, sealed))
        return b"".join(parts)


class _Decrypting(io.RawIOBase):
    """Reads a stored blob chunk by chunk and hands out its plain bytes (address first)."""

    def __init__(self, sealer: Sealer, digest: str, raw: IO[bytes], stored: int) -> None:
        super().__init__()
        self._sealer, self._digest, self._raw = sealer, digest, raw
        self._prefix = sealer.header(digest, raw.read(HEADER), stored)
        self._count = _count(stored)
        raw.seek(stored - TRAILER)
        sealer.check_trailer(digest, self._prefix, self._count, raw.read(TRAILER))
        raw.seek(HEADER)
        self._left = stored - HEADER - TRAILER  # sealed chunk bytes still to read
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
            final = self._index == self._count - 1
            sealed = self._raw.read(min(_SEALED, self._left))
            self._left -= len(sealed)
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

    def _seal_into(
        self,
        tmp: Path,
        chunks: Iterator[bytes | memoryview],
        count: int,
        *,
        direct: bool,
        digest: str | None = None,
        hasher: Any = None,
        hashing: threading.Thread | None = None,
    ) -> str:
        """Write the sealed form of ``chunks`` to ``tmp``; the address comes from ``digest``,
        or from ``hasher`` fed here (or by the ``hashing`` thread) as the chunks go by."""
        prefix = os.urandom(8)
        sink = Sink(tmp, direct=direct)
        try:
            sink.write(self._sealer.header_for(prefix))
            scratch = bytearray(_SEALED)
            for index, chunk in enumerate(chunks):
                if hasher is not None and hashing is None:
                    hasher.update(chunk)
                final, size = index == count - 1, len(chunk) + TAG
                # Sealed in place (in the next disk block, else a scratch buffer): no
                # new megabyte objects to allocate and fault in for every chunk.
                out = sink.reserve(size)
                if out is not None:
                    with out:  # released at once: the block is handed to the writer
                        sealed = self._sealer.seal_chunk_into(prefix, index, final, chunk, out)
                    if sealed:
                        sink.commit(size)
                        continue
                with memoryview(scratch) as view:
                    if self._sealer.seal_chunk_into(prefix, index, final, chunk, view[:size]):
                        sink.write(view[:size])
                    else:
                        sink.write(self._sealer.seal_chunk(prefix, index, final, chunk))
            if hashing is not None:
                hashing.join()
            address = digest if digest is not None else str(hasher.hexdigest())
            sink.write(self._sealer.trailer(prefix, address, count))
        finally:
            sink.close()
        return address

    def _publish(self, tmp: Path, digest: str) -> None:
        if self.inner.exists(digest):  # equal bytes stored meanwhile, or before
            tmp.unlink(missing_ok=True)
        else:
            self.inner.publish_file(tmp, digest)

    def put_bytes(self, data: bytes) -> str:
        digest = self._sealer.address(data)
        if self.inner.exists(digest):
            return digest
        view = memoryview(data)
        count = chunk_count(len(view))
        tmp = self.inner.temporary()
        try:
            chunks = (view[i * CHUNK : (i + 1) * CHUNK] for i in range(count))
            self._seal_into(tmp, chunks, count, direct=False, digest=digest)
            self._publish(tmp, digest)
        except BaseException:  # a full disk: leave no temporary behind
            tmp.unlink(missing_ok=True)
            raise
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
        # One pass: the file is encrypted and written while it is hashed (by threads over
        # a memory map when big), and the address is bound in by the trailer at the end.
        size = info.st_size
        count = chunk_count(size)
        big = size >= _MMAP_FROM
        hasher = blake3(key=self._sealer.address_key, max_threads=blake3.AUTO if big else 1)
        hashing = None
        failed: list[BaseException] = []
        if big:

            def hash_all() -> None:
                try:
                    hasher.update_mmap(str(source))
                except BaseException as exc:  # reported in this thread, below
                    failed.append(exc)

            hashing = threading.Thread(target=hash_all, name="headrace-hash", daemon=True)
            hashing.start()
        tmp = self.inner.temporary()
        try:
            with open(source, "rb", buffering=0) as handle:
                digest = self._seal_into(
                    tmp,
                    _read_chunks(handle, source, count),
                    count,
                    direct=big and local and self.durable,
                    hasher=hasher,
                    hashing=hashing,
                )
            if failed:
                raise failed[0]
            self._publish(tmp, digest)
        except BaseException:
            if hashing is not None:
                hashing.join()
            tmp.unlink(missing_ok=True)
            raise
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


def _read_chunks(handle: Any, source: Path, count: int) -> Iterator[memoryview]:
    """The file's chunks, read into one reused buffer (each valid until the next)."""
    buffer = bytearray(CHUNK)
    with memoryview(buffer) as view:
        for index in range(count):
            n = 0
            while n < CHUNK and (got := handle.readinto(view[n:])):
                n += got
            if n < CHUNK and index < count - 1:
                raise ObjectStoreError(f"{source} shrank while it was being stored")
            yield view[:n]
        if handle.read(1):
            raise ObjectStoreError(f"{source} grew while it was being stored")

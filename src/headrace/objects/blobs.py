"""Content-addressed blobs: the key of a blob is the BLAKE3 hash of its bytes.

Writes are atomic and put-if-absent: bytes go to a temporary file first and are then
linked into place, so a reader never sees a half-written blob and an existing blob is
never overwritten.

Local stores are durable by default: a blob's bytes are synced (``fsync``) before it is
linked into place and its folder is synced after, so once a put returns, a power cut
cannot leave a version pointing at a missing or truncated blob. ``durable=False``
(``[objects] durable = false``) trades that away for speed.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import sqlite3
import stat
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Protocol, runtime_checkable

from blake3 import blake3

from headrace.errors import HeadraceError
from headrace.objects.disk import (
    WRITEBACK_SEGMENT,
    copy_direct,
    fsync_dir,
    fsync_file,
    start_writeback,
    write_all,
)

_DIGEST = re.compile(r"[0-9a-f]{64}")
_CHUNK = 1 << 20


class BlobNotFoundError(HeadraceError):
    """No blob with this digest exists in the store."""

    def __init__(self, digest: str) -> None:
        super().__init__(f"blob {digest} is not in the object store")
        self.digest = digest


class InvalidDigestError(HeadraceError):
    """A string that is not a 64-character lowercase hex BLAKE3 digest."""


def check_digest(digest: str) -> str:
    if not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
        raise InvalidDigestError(f"{digest!r} is not a BLAKE3 hex digest")
    return digest


def hash_bytes(data: bytes | memoryview) -> str:
    return blake3(data).hexdigest()


def hash_file(path: Path | str) -> str:
    """BLAKE3 of a file, memory-mapped and multithreaded for large files."""
    size = os.path.getsize(path)
    if size >= 64 * _CHUNK:
        return blake3(max_threads=blake3.AUTO).update_mmap(str(path)).hexdigest()
    hasher = blake3()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            hasher.update(chunk)
    return hasher.hexdigest()


_RECENT_ITEM = 1 << 20
_RECENT_TOTAL = 64 << 20


class _Copier(threading.Thread):
    """Copies a file in the kernel (``copy_file_range``, else ``shutil.copyfile``).

    With ``durable`` the copy is synced in this thread too, so the sync overlaps the
    hashing that runs beside it.
    """

    def __init__(self, source: Path, target: Path, *, durable: bool = False) -> None:
        super().__init__(name="headrace-copy", daemon=True)
        self.source, self.target = source, target
        self.durable = durable
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            if self.durable and copy_direct(self.source, self.target):
                return
            if hasattr(os, "copy_file_range"):
                with open(self.source, "rb") as src, open(self.target, "xb") as dst:
                    remaining = os.fstat(src.fileno()).st_size
                    done = 0
                    # Durable copies go in segments whose write-back starts at once, so
                    # the disk works while the copy and the hashing go on, and the final
                    # fsync finds little left to write.
                    step = WRITEBACK_SEGMENT if self.durable else remaining
                    while remaining > 0:
                        wanted = min(remaining, step)
                        copied = os.copy_file_range(src.fileno(), dst.fileno(), wanted)
                        if copied == 0:
                            break
                        if self.durable:
                            start_writeback(dst.fileno(), done, copied)
                        done += copied
                        remaining -= copied
                    if remaining > 0:  # the file shrank while copying, or no support
                        raise OSError(f"copy of {self.source} stopped early")
                    if self.durable:
                        os.fsync(dst.fileno())
            else:
                self._copy_plain()
        except OSError as exc:
            if self.target.exists() and exc.errno in (errno.EXDEV, errno.ENOSYS, errno.EINVAL):
                try:
                    self.target.unlink()
                    self._copy_plain()
                    return
                except BaseException as again:
                    self.error = again
                    return
            self.error = exc
        except BaseException as exc:
            self.error = exc

    def _copy_plain(self) -> None:
        shutil.copyfile(self.source, self.target)
        if self.durable:
            fsync_file(self.target)


def _link_into_place(tmp: Path, target: Path) -> None:
    """Publish ``tmp`` at ``target`` unless a blob is already there; drop ``tmp``.

    ``os.link`` fails when the target exists, so a blob is never overwritten. File
    systems without hard links fall back to a rename guarded by an existence check
    (a racing writer can only replace a blob with identical bytes).
    """
    try:
        os.link(tmp, target)
    except FileExistsError:
        pass
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
            os.unlink(tmp)
            raise
        if not target.exists():
            os.replace(tmp, target)
            return
    os.unlink(tmp)


class BlobStore(Protocol):
    """The narrow interface every blob store implements."""

    url: str

    def put_bytes(self, data: bytes) -> str:
        """Store ``data`` unless present; return its digest."""
        ...

    def put_file(self, path: Path, *, move: bool = False) -> str:
        """Store a file's bytes unless present; ``move`` lets the store consume it."""
        ...

    def get_bytes(self, digest: str) -> bytes: ...

    def open(self, digest: str) -> IO[bytes]: ...

    def exists(self, digest: str) -> bool: ...

    def size(self, digest: str) -> int: ...


@runtime_checkable
class LocalPaths(Protocol):
    """Optional capability: blobs are plain files that can be memory-mapped."""

    def path_of(self, digest: str) -> Path: ...


class LocalBlobStore:
    """Blobs as read-only files under ``root/ab/cdef...``; temporaries in ``root/.tmp``.

    Args:
        root: the store's folder.
        durable: sync each blob and its folder before a put returns (the default);
            False keeps writes in the page cache, faster but lost or truncated by a
            power cut.
    """

    def __init__(self, root: Path | str, *, durable: bool = True) -> None:
        self.root = Path(root)
        self.url = str(self.root)
        self.durable = durable
        self._tmp = self.root / ".tmp"
        self._made: set[str] = set()
        self._recent: OrderedDict[str, bytes] = OrderedDict()
        self._recent_bytes = 0
        self._recent_lock = threading.Lock()
        self._hash_db: sqlite3.Connection | None = None
        # Beside the store, not in it: the store holds blobs and temporaries only.
        self._hash_path = self.root.parent / f"{self.root.name}.hashes.db"

    def path_of(self, digest: str) -> Path:
        check_digest(digest)
        return self.root / digest[:2] / digest[2:]

    def _tmp_path(self) -> Path:
        if "tmp" not in self._made:
            self._tmp.mkdir(parents=True, exist_ok=True)
            self._made.add("tmp")
        return self._tmp / f"{uuid.uuid4().hex}.part"

    def prepare(self) -> None:
        """Create the store's folders (done on first write otherwise)."""
        self._prepare()
        self._tmp.mkdir(parents=True, exist_ok=True)

    def _prepare(self) -> None:
        # All 256 shard folders at once: cheaper than a check before every write.
        if "shards" in self._made:
            return
        if not (self.root / "ff").is_dir():
            fresh = not self.root.is_dir()
            for i in range(256):
                (self.root / f"{i:02x}").mkdir(parents=True, exist_ok=True)
            if self.durable:
                # The new shard folders are entries of the root, and a new root is an
                # entry of its parent: both must reach the disk before any blob does.
                # (A shard folder itself is synced when a blob is linked into it.)
                fsync_dir(self.root)
                if fresh:
                    fsync_dir(self.root.parent)
        self._made.add("shards")

    def _publish(self, tmp: Path, digest: str) -> None:
        """Link a complete temporary (already synced when durable) into place."""
        self._prepare()
        os.chmod(tmp, 0o444)
        target = self.path_of(digest)
        _link_into_place(tmp, target)
        if self.durable:
            fsync_dir(target.parent)

    def _remember(self, digest: str, data: bytes) -> None:
        """Keep small, recently written blobs for reads by the next steps of a run."""
        if len(data) > _RECENT_ITEM:
            return
        with self._recent_lock:
            if digest in self._recent:
                return
            self._recent[digest] = bytes(data)
            self._recent_bytes += len(data)
            while self._recent_bytes > _RECENT_TOTAL:
                _, dropped = self._recent.popitem(last=False)
                self._recent_bytes -= len(dropped)

    def put_bytes(self, data: bytes) -> str:
        digest = hash_bytes(data)
        target = self.path_of(digest)
        if target.exists():
            return digest
        self._prepare()
        tmp = self._tmp_path()
        # Created read-only (mode applies to later opens; this descriptor may write).
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
        try:
            try:
                write_all(fd, data)
                if self.durable:
                    os.fsync(fd)
            finally:
                os.close(fd)
        except BaseException:  # e.g. a full disk: leave no temporary behind
            os.unlink(tmp)
            raise
        _link_into_place(tmp, target)
        if self.durable:
            fsync_dir(target.parent)
        self._remember(digest, data)
        return digest

    def source(self, digest: str) -> bytes | str:
        """Bytes of a recently written blob, else the path of its file (for mmap)."""
        cached = self._recent.get(digest)
        if cached is not None:
            return cached
        path = self.path_of(digest)
        if not path.exists():
            raise BlobNotFoundError(digest)
        return str(path)

    def known_digest(self, path: Path | str) -> str | None:
        """The digest of a file hashed before and unchanged since (no read), or None."""
        source = Path(path).resolve()
        try:
            info = source.stat()
        except OSError:
            return None
        known = self._known_digest(source, info) if stat.S_ISREG(info.st_mode) else None
        return known if known is not None and self.path_of(known).exists() else None

    def _known_digest(self, path: Path, info: os.stat_result) -> str | None:
        """The digest recorded for a file still identical on disk (stat unchanged)."""
        row = (
            self._hashes()
            .execute(
                "SELECT digest FROM hashes WHERE path = ? AND size = ? AND mtime_ns = ? "
                "AND ctime_ns = ? AND inode = ?",
                (str(path), info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino),
            )
            .fetchone()
        )
        return None if row is None else str(row[0])

    def _remember_file(self, path: Path, info: os.stat_result, digest: str) -> None:
        with self._hashes() as db:
            db.execute(
                "INSERT OR REPLACE INTO hashes VALUES (?, ?, ?, ?, ?, ?)",
                (str(path), info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino, digest),
            )

    def _hashes(self) -> sqlite3.Connection:
        # Which files were hashed to what, like git's index: re-committing an unchanged
        # file costs a stat, not a read. Any write changes ctime, so a hit is safe.
        if self._hash_db is None:
            self._hash_path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self._hash_path, timeout=30, check_same_thread=False)
            # Only a cache: losing its last writes costs a re-hash, never wrong data.
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = OFF")
            db.execute(
                "CREATE TABLE IF NOT EXISTS hashes (path TEXT PRIMARY KEY, size INTEGER, "
                "mtime_ns INTEGER, ctime_ns INTEGER, inode INTEGER, digest TEXT)"
            )
            self._hash_db = db
        return self._hash_db

    def close(self) -> None:
        if self._hash_db is not None:
            self._hash_db.close()
            self._hash_db = None

    def put_file(self, path: Path, *, move: bool = False) -> str:
        source = Path(path).resolve()
        info = source.stat()
        cacheable = not move and stat.S_ISREG(info.st_mode)
        known = self._known_digest(source, info) if cacheable else None
        if known is not None and self.path_of(known).exists():
            return known
        if move:
            return self._put_moved(source, Path(path))
        # Copy into a temporary while hashing: the kernel copies as BLAKE3 reads.
        tmp = self._tmp_path()
        copier = _Copier(source, tmp, durable=self.durable)
        copier.start()
        try:
            digest = hash_file(source)
        finally:
            copier.join()
        if copier.error is not None:
            tmp.unlink(missing_ok=True)
            raise copier.error
        if self.path_of(digest).exists():
            tmp.unlink(missing_ok=True)
        else:
            self._publish(tmp, digest)
        if cacheable:
            self._remember_file(source, info, digest)
        return digest

    def _put_moved(self, source: Path, path: Path) -> str:
        digest = hash_file(source)
        if self.path_of(digest).exists():
            path.unlink(missing_ok=True)
            return digest
        tmp = self._tmp_path()
        try:
            try:
                os.replace(path, tmp)
            except OSError:  # another file system: copy instead
                shutil.copyfile(path, tmp)
                path.unlink(missing_ok=True)
            if self.durable:  # a moved file may still have unwritten pages
                fsync_file(tmp)
        except BaseException:  # e.g. a full disk: leave no temporary behind
            tmp.unlink(missing_ok=True)
            raise
        self._publish(tmp, digest)
        return digest

    # -- for wrappers that compute addresses themselves (the encrypted store) --------

    def temporary(self) -> Path:
        """A fresh path in the store's temporary folder, to write a blob's bytes into."""
        return self._tmp_path()

    def publish_file(self, tmp: Path, digest: str) -> None:
        """Put the complete file ``tmp`` under ``digest`` unless present; consume ``tmp``.

        The caller vouches that ``digest`` addresses these bytes.
        """
        if self.path_of(digest).exists():
            tmp.unlink(missing_ok=True)
            return
        if self.durable:
            fsync_file(tmp)
        self._publish(tmp, digest)

    def read_meta(self, name: str) -> bytes | None:
        """A small side file at the store's root (``keys.json``), or None."""
        try:
            return (self.root / name).read_bytes()
        except FileNotFoundError:
            return None
        except NotADirectoryError as exc:
            from headrace.objects.errors import ObjectStoreError

            raise ObjectStoreError(
                f"the object store {self.root} is not a folder; move that file away, or "
                "point [store] objects_url (HEADRACE_OBJECTS_URL) at a folder"
            ) from exc

    def write_meta(self, name: str, data: bytes, *, replace: bool) -> None:
        """Write a side file atomically; without ``replace``, FileExistsError if present."""
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self._tmp_path()
        with open(tmp, "xb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())  # always: losing a key file loses every blob
        try:
            if replace:
                os.replace(tmp, self.root / name)
            else:
                os.link(tmp, self.root / name)
        finally:
            tmp.unlink(missing_ok=True)
        fsync_dir(self.root)

    def get_bytes(self, digest: str) -> bytes:
        try:
            return self.path_of(digest).read_bytes()
        except FileNotFoundError:
            raise BlobNotFoundError(digest) from None

    def open(self, digest: str) -> IO[bytes]:
        try:
            return open(self.path_of(digest), "rb")
        except FileNotFoundError:
            raise BlobNotFoundError(digest) from None

    def exists(self, digest: str) -> bool:
        return self.path_of(digest).exists()

    def iter_blobs(self) -> Iterator[tuple[str, int, float]]:
        """Every blob as (digest, size, modification time)."""
        if not self.root.is_dir():
            return
        for shard in sorted(os.scandir(self.root), key=lambda e: e.name):
            if len(shard.name) != 2 or not shard.is_dir():
                continue
            for entry in os.scandir(shard.path):
                digest = shard.name + entry.name
                if _DIGEST.fullmatch(digest):
                    info = entry.stat()
                    yield digest, info.st_size, info.st_mtime

    def delete(self, digest: str) -> None:
        with self._recent_lock:
            dropped = self._recent.pop(digest, None)
            if dropped is not None:
                self._recent_bytes -= len(dropped)
        self.path_of(digest).unlink(missing_ok=True)

    def clean_temporary(self, *, older_than: float) -> int:
        """Remove temporary files of writers that died (older than ``older_than``)."""
        removed = 0
        if self._tmp.is_dir():
            for entry in os.scandir(self._tmp):
                if entry.stat().st_mtime < older_than:
                    Path(entry.path).unlink(missing_ok=True)
                    removed += 1
        return removed

    def size(self, digest: str) -> int:
        try:
            return self.path_of(digest).stat().st_size
        except FileNotFoundError:
            raise BlobNotFoundError(digest) from None


class FsspecBlobStore:
    """Blobs on any fsspec file system (``s3://``, ``gs://``, ``memory://``, ...).

    Objects are written under a temporary key and moved into place only if absent; on
    object stores a single PUT is already atomic.
    """

    def __init__(self, url: str, *, durable: bool = True, **options: Any) -> None:
        import fsspec  # lazy: only remote stores need it

        # Object stores acknowledge a PUT once it is stored: nothing to sync here.
        self.durable = durable
        self.url = url.rstrip("/")
        self.fs, self._base = fsspec.core.url_to_fs(self.url, **options)
        self._base = self._base.rstrip("/")

    def _key(self, digest: str) -> str:
        check_digest(digest)
        return f"{self._base}/{digest[:2]}/{digest[2:]}"

    def _write(self, digest: str, data: bytes) -> None:
        key = self._key(digest)
        if self.fs.exists(key):
            return
        tmp = f"{self._base}/.tmp/{uuid.uuid4().hex}.part"
        self.fs.makedirs(f"{self._base}/.tmp", exist_ok=True)
        self.fs.makedirs(f"{self._base}/{digest[:2]}", exist_ok=True)
        self.fs.pipe_file(tmp, data)
        if self.fs.exists(key):
            self.fs.rm_file(tmp)
            return
        self.fs.mv(tmp, key)

    def put_bytes(self, data: bytes) -> str:
        digest = hash_bytes(data)
        self._write(digest, data)
        return digest

    def temporary(self) -> Path:
        """A fresh local file to write a blob's bytes into before it is uploaded."""
        import tempfile

        handle, name = tempfile.mkstemp(prefix="headrace-blob-", suffix=".part")
        os.close(handle)
        return Path(name)

    def publish_file(self, tmp: Path, digest: str) -> None:
        """Upload the local file ``tmp`` under ``digest`` unless present; consume ``tmp``."""
        try:
            key = self._key(digest)
            if self.fs.exists(key):
                return
            part = f"{self._base}/.tmp/{uuid.uuid4().hex}.part"
            self.fs.makedirs(f"{self._base}/.tmp", exist_ok=True)
            self.fs.makedirs(f"{self._base}/{digest[:2]}", exist_ok=True)
            self.fs.put_file(str(tmp), part)
            if self.fs.exists(key):
                self.fs.rm_file(part)
            else:
                self.fs.mv(part, key)
        finally:
            tmp.unlink(missing_ok=True)

    def read_meta(self, name: str) -> bytes | None:
        try:
            return bytes(self.fs.cat_file(f"{self._base}/{name}"))
        except FileNotFoundError:
            return None

    def write_meta(self, name: str, data: bytes, *, replace: bool) -> None:
        path = f"{self._base}/{name}"
        if not replace and self.fs.exists(path):
            raise FileExistsError(path)
        self.fs.makedirs(self._base, exist_ok=True)
        self.fs.pipe_file(path, data)

    def put_file(self, path: Path, *, move: bool = False) -> str:
        data = Path(path).read_bytes()
        digest = self.put_bytes(data)
        if move:
            Path(path).unlink(missing_ok=True)
        return digest

    def get_bytes(self, digest: str) -> bytes:
        try:
            return bytes(self.fs.cat_file(self._key(digest)))
        except FileNotFoundError:
            raise BlobNotFoundError(digest) from None

    def open(self, digest: str) -> IO[bytes]:
        try:
            handle: IO[bytes] = self.fs.open(self._key(digest), "rb")
        except FileNotFoundError:
            raise BlobNotFoundError(digest) from None
        return handle

    def exists(self, digest: str) -> bool:
        return bool(self.fs.exists(self._key(digest)))

    def prepare(self) -> None:
        """Object stores need no folders created up front."""
        return None

    def close(self) -> None:
        return None

    def iter_blobs(self) -> Iterator[tuple[str, int, float]]:
        for path, info in sorted(self.fs.find(self._base, detail=True).items()):
            parts = path.rstrip("/").split("/")
            digest = "".join(parts[-2:])
            if len(parts) >= 2 and _DIGEST.fullmatch(digest):
                modified = info.get("mtime") or info.get("LastModified") or info.get("created")
                stamp = modified.timestamp() if hasattr(modified, "timestamp") else modified
                yield digest, int(info.get("size") or 0), float(stamp or 0.0)

    def delete(self, digest: str) -> None:
        key = self._key(digest)
        if self.fs.exists(key):
            self.fs.rm_file(key)

    def clean_temporary(self, *, older_than: float) -> int:
        removed = 0
        for path, info in self.fs.find(f"{self._base}/.tmp", detail=True).items():
            modified = info.get("mtime") or info.get("created")
            stamp = modified.timestamp() if hasattr(modified, "timestamp") else modified
            if float(stamp or 0.0) < older_than:
                self.fs.rm_file(path)
                removed += 1
        return removed

    def size(self, digest: str) -> int:
        try:
            return int(self.fs.size(self._key(digest)))
        except FileNotFoundError:
            raise BlobNotFoundError(digest) from None


def open_blob_store(
    url: str, *, durable: bool = True, storage_options: dict[str, Any] | None = None
) -> LocalBlobStore | FsspecBlobStore:
    """A local folder path (or ``file://``) gives a local store; other URLs use fsspec.

    ``storage_options`` go to the fsspec file system as they are (credentials, a
    provider's server-side encryption settings, ...).
    """
    if "://" not in url or url.startswith("file://"):
        return LocalBlobStore(url.removeprefix("file://"), durable=durable)
    return FsspecBlobStore(url, durable=durable, **(storage_options or {}))

"""The content-addressed blob store: one suite over a local folder and fsspec stores."""

from __future__ import annotations

import errno
import multiprocessing
import os
import random
import shutil
import signal
import stat
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from blake3 import blake3

from headrace.errors import HeadraceError
from headrace.objects import (
    BlobNotFoundError,
    FsspecBlobStore,
    LocalBlobStore,
    hash_bytes,
    hash_file,
    open_blob_store,
)
from headrace.objects.blobs import InvalidDigestError, LocalPaths

Store = LocalBlobStore | FsspecBlobStore

EMPTY = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"  # BLAKE3("")
ABC = "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85"  # BLAKE3("abc")
MIB = 1 << 20


def payload(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


def make_store(kind: str, where: Path) -> Store:
    if kind == "local":
        return LocalBlobStore(where / "objects")
    if kind == "fsspec-file":
        return FsspecBlobStore(f"file://{where / 'objects'}")
    return FsspecBlobStore(f"memory://headrace-test-{uuid.uuid4().hex}")


@pytest.fixture(params=["local", "fsspec-memory", "fsspec-file"])
def blobs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    store = make_store(request.param, tmp_path)
    yield store
    memory = isinstance(store, FsspecBlobStore) and store.url.startswith("memory://")
    if memory and store.fs.exists(store._base):  # type: ignore[union-attr]
        store.fs.rm(store._base, recursive=True)  # type: ignore[union-attr]


def listing(store: Store) -> tuple[dict[str, bytes], list[str]]:
    """The store's blobs (digest -> bytes, read raw) and its leftover temporary files."""
    if isinstance(store, LocalBlobStore):
        root = store.root
        paths = [p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()]
        read = lambda rel: (root / rel).read_bytes()  # noqa: E731
    else:
        base = store._base
        paths = [p[len(base) + 1 :] for p in store.fs.find(base)]
        read = lambda rel: bytes(store.fs.cat_file(f"{base}/{rel}"))  # noqa: E731
    temps = sorted(p for p in paths if p.startswith(".tmp/"))
    found = {p.replace("/", ""): read(p) for p in paths if not p.startswith(".tmp/")}
    return found, temps


def place_raw(store: Store, digest: str, data: bytes) -> None:
    """Put bytes at a digest's location behind the store's back."""
    if isinstance(store, LocalBlobStore):
        path = store.path_of(digest)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    else:
        key = store._key(digest)
        store.fs.makedirs(key.rsplit("/", 1)[0], exist_ok=True)
        store.fs.pipe_file(key, data)


# --- hashing -------------------------------------------------------------------------


def test_hash_bytes_matches_the_blake3_test_vectors() -> None:
    assert hash_bytes(b"") == EMPTY
    assert hash_bytes(b"abc") == ABC
    assert hash_bytes(memoryview(b"abc")) == ABC


@pytest.mark.parametrize("size", [0, 1, MIB - 1, MIB, MIB + 1, 3 * MIB + 5])
def test_hash_file_matches_hash_bytes(tmp_path: Path, size: int) -> None:
    data = payload(size, size)
    path = tmp_path / "f"
    path.write_bytes(data)
    assert hash_file(path) == hash_bytes(data) == blake3(data).hexdigest()
    assert hash_file(str(path)) == hash_bytes(data)


def test_hash_file_of_a_file_over_64_mib_matches_hash_bytes(tmp_path: Path) -> None:
    data = os.urandom(64 * MIB + 4097)  # the memory-mapped, multithreaded path
    path = tmp_path / "big"
    path.write_bytes(data)
    expected = blake3(data).hexdigest()
    assert hash_file(path) == expected
    assert hash_bytes(data) == expected

    store = LocalBlobStore(tmp_path / "objects")
    assert store.put_file(path) == expected
    assert store.size(expected) == len(data)
    assert hash_file(store.path_of(expected)) == expected


def test_hash_file_of_a_missing_file_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        hash_file(tmp_path / "nope")


# --- the shared behaviour of every store ---------------------------------------------


@pytest.mark.parametrize(
    "data", [b"", b"x", b"hello blobs", bytes(range(256)) * 3, payload(1, 2 * MIB + 3)]
)
def test_put_and_get_round_trip_under_the_blake3_digest(blobs: Store, data: bytes) -> None:
    digest = blobs.put_bytes(data)
    assert digest == blake3(data).hexdigest()
    assert blobs.exists(digest)
    assert blobs.get_bytes(digest) == data
    assert blobs.size(digest) == len(data)
    with blobs.open(digest) as handle:
        assert handle.read() == data
    assert listing(blobs) == ({digest: data}, [])


def test_the_same_content_is_stored_once(blobs: Store) -> None:
    first = blobs.put_bytes(b"same")
    second = blobs.put_bytes(b"same")
    other = blobs.put_bytes(b"other")
    assert first == second != other
    assert listing(blobs) == ({first: b"same", other: b"other"}, [])


def test_a_put_never_rewrites_a_present_blob_even_a_damaged_one(blobs: Store) -> None:
    """Put-if-absent: whatever sits at a digest stays untouched.

    Rewriting a present blob would race with its readers; finding damage is a job for a
    verifier reading the whole blob, not for every put.
    """
    data = b"the real content"
    digest = hash_bytes(data)
    place_raw(blobs, digest, b"damaged")

    assert blobs.put_bytes(data) == digest
    assert blobs.get_bytes(digest) == b"damaged"
    assert listing(blobs) == ({digest: b"damaged"}, [])


def test_put_file_copies_and_keeps_the_source(blobs: Store, tmp_path: Path) -> None:
    source = tmp_path / "src.bin"
    source.write_bytes(b"file content")
    digest = blobs.put_file(source)
    assert digest == hash_bytes(b"file content")
    assert source.read_bytes() == b"file content"
    assert blobs.get_bytes(digest) == b"file content"


def test_put_file_with_move_consumes_the_source(blobs: Store, tmp_path: Path) -> None:
    source = tmp_path / "src.bin"
    source.write_bytes(b"moved content")
    digest = blobs.put_file(source, move=True)
    assert not source.exists()
    assert blobs.get_bytes(digest) == b"moved content"
    assert listing(blobs) == ({digest: b"moved content"}, [])


def test_put_file_with_move_of_present_content_drops_the_source_only(
    blobs: Store, tmp_path: Path
) -> None:
    digest = blobs.put_bytes(b"present")
    source = tmp_path / "dup.bin"
    source.write_bytes(b"present")
    assert blobs.put_file(source, move=True) == digest
    assert not source.exists()
    assert listing(blobs) == ({digest: b"present"}, [])


def test_put_file_of_a_missing_or_unreadable_path_stores_nothing(
    blobs: Store, tmp_path: Path
) -> None:
    with pytest.raises(FileNotFoundError):
        blobs.put_file(tmp_path / "missing.bin")
    with pytest.raises(IsADirectoryError):
        blobs.put_file(tmp_path)
    assert tmp_path.is_dir()
    assert listing(blobs)[0] == {}


def test_a_missing_blob_raises_blob_not_found(blobs: Store) -> None:
    digest = hash_bytes(b"never stored")
    assert not blobs.exists(digest)
    for read in (blobs.get_bytes, blobs.open, blobs.size):
        with pytest.raises(BlobNotFoundError) as caught:
            read(digest)
        assert caught.value.digest == digest
        assert digest in str(caught.value)
        assert isinstance(caught.value, HeadraceError)


BAD_DIGESTS = [
    "../../etc/passwd",
    "../" + "a" * 61,
    "/" + "a" * 63,
    "a" * 63,
    "a" * 65,
    "A" * 64,
    ABC.upper(),
    "g" * 64,
    "",
    " " + "a" * 63,
    "a" * 64 + "\n",
    "a" * 32 + "/" + "a" * 31,
    None,
    b"a" * 64,
    int("1" * 64, 16),
]


@pytest.mark.parametrize("digest", BAD_DIGESTS, ids=repr)
def test_anything_but_a_lowercase_hex_digest_is_refused(blobs: Store, digest: Any) -> None:
    blobs.put_bytes(b"abc")
    for call in (blobs.get_bytes, blobs.open, blobs.exists, blobs.size):
        with pytest.raises(InvalidDigestError) as caught:
            call(digest)
        assert not isinstance(caught.value, BlobNotFoundError)
        assert isinstance(caught.value, HeadraceError)
    if isinstance(blobs, LocalBlobStore):
        with pytest.raises(InvalidDigestError):
            blobs.path_of(digest)


def _put_from_thread(store: Store, barrier: threading.Barrier, items: list[bytes]) -> list[str]:
    barrier.wait(timeout=30)
    return [store.put_bytes(data) for data in items]


def test_threads_putting_the_same_and_different_content_at_once(blobs: Store) -> None:
    shared = [payload(100 + i, 64 * 1024 + i) for i in range(6)]
    threads_n = 12
    barrier = threading.Barrier(threads_n)
    results: list[list[str]] = [[] for _ in range(threads_n)]

    def work(n: int) -> None:
        own = [payload(1000 + n, 1000 + n)]
        results[n] = _put_from_thread(blobs, barrier, [*shared, *own])

    threads = [threading.Thread(target=work, args=(n,)) for n in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    expected = {hash_bytes(d): d for d in shared}
    expected |= {
        hash_bytes(payload(1000 + n, 1000 + n)): payload(1000 + n, 1000 + n)
        for n in range(threads_n)
    }
    assert all(len(r) == len(shared) + 1 for r in results)
    assert {d for r in results for d in r} == set(expected)
    assert listing(blobs) == (expected, [])


# --- local folder specifics ----------------------------------------------------------


def test_local_blobs_are_read_only_files_under_a_two_character_folder(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "objects")
    digest = store.put_bytes(b"abc")
    path = tmp_path / "objects" / digest[:2] / digest[2:]
    assert store.path_of(digest) == path
    assert path.read_bytes() == b"abc"
    assert stat.S_IMODE(path.stat().st_mode) & 0o222 == 0
    assert isinstance(store, LocalPaths)
    assert not isinstance(FsspecBlobStore("memory://x"), LocalPaths)


def test_source_gives_recent_small_blobs_as_bytes_and_others_as_paths(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "objects")
    small = store.put_bytes(b"small")
    big_data = payload(9, 2 * MIB)
    big = store.put_bytes(big_data)
    assert store.source(small) == b"small"
    assert store.source(big) == str(store.path_of(big))
    assert Path(store.source(big)).read_bytes() == big_data  # type: ignore[arg-type]
    reopened = LocalBlobStore(tmp_path / "objects")
    assert reopened.source(small) == str(reopened.path_of(small))
    with pytest.raises(InvalidDigestError):
        store.source("../../etc/passwd")


def test_a_present_local_blob_keeps_its_inode_and_mtime(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "objects")
    digest = store.put_bytes(b"keep me")
    path = store.path_of(digest)
    os.utime(path, (1_000_000, 1_000_000))
    old = path.stat()
    source = tmp_path / "again"
    source.write_bytes(b"keep me")
    store.put_bytes(b"keep me")
    store.put_file(source)
    store.put_file(source, move=True)
    new = path.stat()
    assert (new.st_ino, new.st_mtime, new.st_nlink) == (old.st_ino, old.st_mtime, 1)


@pytest.mark.parametrize("how", ["put_bytes", "put_file", "put_file_move"])
def test_a_blob_published_by_a_racing_writer_is_not_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """The early presence check can miss a blob another writer is publishing right then.

    Publishing itself must still refuse to replace it (link, not rename).
    """
    store = LocalBlobStore(tmp_path / "objects")
    data = b"raced content"
    digest = hash_bytes(data)
    place_raw(store, digest, b"published by the other writer")
    target = store.path_of(digest)
    before = target.stat()
    real_exists = Path.exists
    monkeypatch.setattr(Path, "exists", lambda p: False if p == target else real_exists(p))

    source = tmp_path / "src.bin"
    source.write_bytes(data)
    if how == "put_bytes":
        assert store.put_bytes(data) == digest
    else:
        assert store.put_file(source, move=how == "put_file_move") == digest
    monkeypatch.undo()

    after = target.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert listing(store) == ({digest: b"published by the other writer"}, [])
    assert source.exists() == (how != "put_file_move")


def test_a_local_move_links_the_file_itself_without_copying(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "objects")
    source = tmp_path / "result.parquet"
    source.write_bytes(b"big result")
    inode = source.stat().st_ino
    digest = store.put_file(source, move=True)
    assert store.path_of(digest).stat().st_ino == inode
    assert stat.S_IMODE(store.path_of(digest).stat().st_mode) & 0o222 == 0


def test_a_move_across_file_systems_falls_back_to_a_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def cross_device(_src: Any, _dst: Any) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "replace", cross_device)
    store = LocalBlobStore(tmp_path / "objects")
    source = tmp_path / "elsewhere.bin"
    source.write_bytes(b"from another disk")
    digest = store.put_file(source, move=True)
    assert not source.exists()
    assert store.get_bytes(digest) == b"from another disk"
    assert listing(store) == ({digest: b"from another disk"}, [])


def _put_from_process(barrier: Any, results: Any, kind: str, where: str, worker: int) -> None:
    store = make_store(kind, Path(where))
    items = [payload(i, 32 * 1024 + i) for i in range(12)]  # the same in every process
    items += [payload(10_000 + worker * 100 + i, 4096 + i) for i in range(12)]  # its own
    random.Random(worker).shuffle(items)
    barrier.wait(timeout=60)
    results.put(sorted(store.put_bytes(data) for data in items))


@pytest.mark.integration
@pytest.mark.parametrize("kind", ["local", "fsspec-file"])
def test_processes_putting_at_once_leave_exactly_the_right_blobs(
    kind: str, tmp_path: Path, run_processes: Any
) -> None:
    workers = 4
    results = run_processes(_put_from_process, [(kind, str(tmp_path), w) for w in range(workers)])

    expected = {hash_bytes(payload(i, 32 * 1024 + i)): payload(i, 32 * 1024 + i) for i in range(12)}
    for w in range(workers):
        for i in range(12):
            data = payload(10_000 + w * 100 + i, 4096 + i)
            expected[hash_bytes(data)] = data
    assert len(expected) == 12 + workers * 12
    assert {d for r in results for d in r} == set(expected)
    assert listing(make_store(kind, tmp_path)) == (expected, [])


def test_a_failed_local_write_leaves_neither_blob_nor_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalBlobStore(tmp_path / "objects")
    store.put_bytes(b"earlier")  # the folders exist: only the write itself fails

    def disk_full(write: Write, data: Any, _path: str) -> int:
        _write_half(write, data)
        raise OSError(errno.ENOSPC, "No space left on device")

    def patch(target: Any, name: str, value: Any) -> None:
        monkeypatch.setattr(target, name, value, raising=False)

    _intercept_writes(str(store.root / ".tmp"), disk_full, patch)
    data = payload(3, 3 * MIB)
    with pytest.raises(OSError, match="No space left"):
        store.put_bytes(data)
    monkeypatch.undo()
    assert not store.exists(hash_bytes(data))
    assert listing(store) == ({hash_bytes(b"earlier"): b"earlier"}, [])


@pytest.mark.parametrize("move", [False, True])
def test_a_failed_local_copy_leaves_neither_blob_nor_temporary_and_keeps_the_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, move: bool
) -> None:
    store = LocalBlobStore(tmp_path / "objects")
    source = tmp_path / "src.bin"
    source.write_bytes(b"to be copied")

    def copy_until_full(src: Any, dst: Any, **_kwargs: Any) -> None:
        Path(dst).write_bytes(Path(src).read_bytes()[:4])
        raise OSError(errno.ENOSPC, "No space left on device")

    def cross_device(_src: Any, _dst: Any) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    def copy_range_until_full(src_fd: int, dst_fd: int, count: int, *_args: Any) -> int:
        os.write(dst_fd, os.pread(src_fd, 4, 0))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(shutil, "copyfile", copy_until_full)
    monkeypatch.setattr(os, "copy_file_range", copy_range_until_full, raising=False)
    monkeypatch.setattr(os, "replace", cross_device)
    with pytest.raises(OSError, match="No space left"):
        store.put_file(source, move=move)
    monkeypatch.undo()
    assert source.read_bytes() == b"to be copied"
    assert listing(store) == ({}, [])


@pytest.mark.parametrize("how", ["put_bytes", "put_file"])
def test_bytes_are_written_only_into_temporaries_never_at_a_digest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """A blob appears whole (by a link) or not at all: its bytes go to a temporary."""
    store = LocalBlobStore(tmp_path / "objects")
    written: list[str] = []

    def record(write: Write, data: Any, path: str) -> int:
        written.append(path)
        return write(data)

    def patch(target: Any, name: str, value: Any) -> None:
        monkeypatch.setattr(target, name, value, raising=False)

    _intercept_writes(str(store.root), record, patch)
    real_copyfile = shutil.copyfile

    def recording_copyfile(src: Any, dst: Any, **kwargs: Any) -> Any:
        written.append(str(dst))
        return real_copyfile(src, dst, **kwargs)

    real_copy_range = getattr(os, "copy_file_range", None)

    def recording_copy_range(src_fd: int, dst_fd: int, count: int, *args: Any) -> int:
        written.append(os.readlink(f"/proc/self/fd/{dst_fd}"))
        assert real_copy_range is not None
        return int(real_copy_range(src_fd, dst_fd, count, *args))

    monkeypatch.setattr(shutil, "copyfile", recording_copyfile)
    if real_copy_range is not None:
        monkeypatch.setattr(os, "copy_file_range", recording_copy_range)
    data = payload(11, 3 * MIB)
    source = tmp_path / "src.bin"
    source.write_bytes(data)
    digest = store.put_bytes(data) if how == "put_bytes" else store.put_file(source)
    monkeypatch.undo()

    assert store.get_bytes(digest) == data
    assert written, "no write was seen: the interception missed the store's writes"
    assert all(Path(p).parent == store.root / ".tmp" for p in written), written


# --- killed writers ------------------------------------------------------------------

KILL_SIZE = 32 * MIB
KILL_SEED = 7


Write = Callable[[Any], int]


def _intercept_writes(
    folder: str, action: Callable[[Write, Any, str], int], patch: Callable[[Any, str, Any], None]
) -> None:
    """Route every write into ``folder`` through ``action(write, data, path)``.

    Both ways a store may write a file are caught: ``os.write`` on a descriptor and a
    file object from ``open`` in the blobs module.
    """
    import builtins

    import headrace.objects.blobs as module

    real_write = os.write

    def fd_write(fd: int, data: Any) -> int:
        path = os.readlink(f"/proc/self/fd/{fd}")
        if path.startswith(folder):
            return action(lambda chunk: real_write(fd, chunk), data, path)
        return real_write(fd, data)

    class File:
        def __init__(self, handle: Any, path: str) -> None:
            self._handle = handle
            self._path = path

        def __enter__(self) -> Any:
            return self

        def __exit__(self, *_exc: object) -> None:
            self._handle.close()

        def write(self, data: Any) -> int:
            def flushed(chunk: Any) -> int:
                n = int(self._handle.write(chunk))
                self._handle.flush()
                return n

            return action(flushed, data, self._path)

        def __getattr__(self, name: str) -> Any:
            return getattr(self._handle, name)

    def intercepting_open(path: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        handle = builtins.open(path, mode, *args, **kwargs)  # noqa: SIM115
        if str(path).startswith(folder) and "w" in mode:
            return File(handle, str(path))
        return handle

    patch(os, "write", fd_write)
    patch(module, "open", intercepting_open)


def _write_half(write: Write, data: Any) -> int:
    view = memoryview(data)
    half = len(view) // 2
    done = 0
    while done < half:
        done += write(view[done:half])
    return done


def _write_half_then_hang(report: Any, root: str) -> None:
    def stall(write: Write, data: Any, _path: str) -> int:
        report.put(("half", _write_half(write, data)))
        time.sleep(600)
        raise AssertionError("not killed")

    try:
        _intercept_writes(str(Path(root) / ".tmp"), stall, setattr)
        LocalBlobStore(root).put_bytes(payload(KILL_SEED, KILL_SIZE))
        report.put(("finished", 0))
    except BaseException as exc:
        report.put(("error", repr(exc)))
        raise


@pytest.mark.integration
def test_a_writer_killed_mid_write_leaves_no_blob_at_the_digest(tmp_path: Path) -> None:
    root = tmp_path / "objects"
    context = multiprocessing.get_context("spawn")
    report = context.Queue()
    process = context.Process(target=_write_half_then_hang, args=(report, str(root)))
    process.start()
    try:
        what = report.get(timeout=60)
        assert what[0] == "half", f"the writer was not stalled half way: {what}"
        os.kill(process.pid, signal.SIGKILL)  # type: ignore[arg-type]
        process.join(timeout=30)
    finally:
        if process.is_alive():
            process.kill()
            process.join()
    assert process.exitcode == -signal.SIGKILL

    data = payload(KILL_SEED, KILL_SIZE)
    digest = hash_bytes(data)
    store = LocalBlobStore(root)
    assert not store.exists(digest)
    assert not store.path_of(digest).exists()
    with pytest.raises(BlobNotFoundError):
        store.get_bytes(digest)
    blobs_found, temps = listing(store)
    assert blobs_found == {}
    assert len(temps) == 1  # the half-written temporary, never visible as a blob
    assert (root / temps[0]).stat().st_size == KILL_SIZE // 2

    assert store.put_bytes(data) == digest  # a later writer stores it whole
    assert store.get_bytes(digest) == data


def _put_until_killed(report: Any, kind: str, where: str) -> None:
    store = make_store(kind, Path(where))
    for i in range(10_000):
        store.put_bytes(payload(i, 2 * MIB + i))
        report.put(i)


@pytest.mark.integration
@pytest.mark.parametrize("kind", ["local", "fsspec-file"])
def test_whenever_a_writer_is_killed_every_visible_blob_is_whole(kind: str, tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    report = context.Queue()
    process = context.Process(target=_put_until_killed, args=(report, kind, str(tmp_path)))
    process.start()
    try:
        stored = [report.get(timeout=60) for _ in range(3)]
        time.sleep(random.uniform(0.0, 0.05))  # land the kill at an arbitrary moment
        os.kill(process.pid, signal.SIGKILL)  # type: ignore[arg-type]
        process.join(timeout=30)
    finally:
        if process.is_alive():
            process.kill()
            process.join()

    found, temps = listing(make_store(kind, tmp_path))
    assert len(found) >= len(stored)
    for digest, data in found.items():
        assert hash_bytes(data) == digest
    assert len(temps) <= 1


# --- opening stores by URL -----------------------------------------------------------


def test_open_blob_store_picks_the_store_by_url(tmp_path: Path) -> None:
    plain = open_blob_store(str(tmp_path / "a"))
    assert isinstance(plain, LocalBlobStore) and plain.root == tmp_path / "a"
    file_url = open_blob_store(f"file://{tmp_path / 'b'}")
    assert isinstance(file_url, LocalBlobStore) and file_url.root == tmp_path / "b"
    name = f"memory://headrace-test-{uuid.uuid4().hex}"
    remote = open_blob_store(name)
    try:
        assert isinstance(remote, FsspecBlobStore)
        digest = remote.put_bytes(b"abc")
        assert digest == ABC
        assert open_blob_store(name).get_bytes(digest) == b"abc"
    finally:
        remote.fs.rm(remote._base, recursive=True)

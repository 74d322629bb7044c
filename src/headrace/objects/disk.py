"""Getting bytes onto the disk: syncing files and folders, and direct writes of big files."""

from __future__ import annotations

import errno
import functools
import mmap
import os
import queue
import sys
import threading
from pathlib import Path
from typing import Any


def write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view[: 1 << 30])
        view = view[written:]


def fsync_dir(path: Path | str) -> None:
    """Make a folder's entries (files linked in, folders made) durable."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_file(path: Path | str) -> None:
    """Make a closed file's bytes durable (Linux syncs the inode, whichever descriptor)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


WRITEBACK_SEGMENT = 32 << 20


@functools.cache
def sync_file_range() -> Any:
    """Linux's ``sync_file_range`` through libc, or None elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        function = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    function.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)
    function.restype = ctypes.c_int
    return function


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Start writing these pages to disk without waiting (a hint: fsync still follows)."""
    function = sync_file_range()
    if function is not None:
        function(fd, offset, length, 2)  # SYNC_FILE_RANGE_WRITE


DIRECT_FROM = 64 << 20


def copy_direct(source: Path, target: Path) -> bool:
    """Copy a big file to disk with ``O_DIRECT`` and sync it; False where unsupported.

    A durable copy must reach the disk anyway: writing it directly skips filling the
    page cache only to flush it again, and runs at the disk's speed beside the hashing
    (one thread reads the next block while another writes the last).
    """
    if not getattr(os, "O_DIRECT", 0) or os.path.getsize(source) < DIRECT_FROM:
        return False
    sink = Sink(target, direct=True)
    if not sink.direct:
        sink.close()
        target.unlink(missing_ok=True)
        return False
    try:
        with open(source, "rb", buffering=0) as src:
            while sink.fill_from(src):
                pass
    except BaseException:
        sink.close()
        raise
    sink.close(sync=True)
    return True


DIRECT_BUFFER = 8 << 20


class Sink:
    """Writes a blob to its temporary file.

    Big durable blobs go straight to disk (``O_DIRECT``, page-aligned 8 MiB blocks
    written by a thread, so the disk works while the next block is encrypted): they
    must reach the disk anyway, and this skips filling the page cache only to flush it
    again. The unaligned tail is written through the page cache (synced on publish).
    """

    def __init__(self, path: Path, *, direct: bool) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
        self._direct = getattr(os, "O_DIRECT", 0) if direct else 0
        self._buffer: mmap.mmap | None = None
        self._filled = 0
        if self._direct:
            try:
                self._fd = os.open(path, flags | self._direct, 0o444)
            except OSError as exc:
                if exc.errno != errno.EINVAL:  # EINVAL: no O_DIRECT on this file system
                    raise
                path.unlink(missing_ok=True)
                self._direct = 0
            else:
                self._start_writer()
                return
        self._fd = os.open(path, flags, 0o444)

    def _start_writer(self) -> None:
        self._free: queue.SimpleQueue[mmap.mmap] = queue.SimpleQueue()
        self._all = [mmap.mmap(-1, DIRECT_BUFFER) for _ in range(3)]  # page-aligned
        for buffer in self._all[1:]:
            self._free.put(buffer)
        self._buffer = self._all[0]
        self._full: queue.Queue[mmap.mmap | None] = queue.Queue(maxsize=2)
        self._failed: list[BaseException] = []
        self._writer = threading.Thread(target=self._drain, name="headrace-write", daemon=True)
        self._writer.start()

    def _drain(self) -> None:
        while (buffer := self._full.get()) is not None:
            try:
                if not self._failed:
                    self._write_block(buffer, DIRECT_BUFFER)
            except BaseException as exc:  # raised again in the writing thread
                self._failed.append(exc)
            finally:
                self._free.put(buffer)

    def _write_block(self, buffer: mmap.mmap, length: int) -> None:
        with memoryview(buffer) as block:
            try:
                write_all(self._fd, block[:length])
            except OSError as exc:
                if exc.errno != errno.EINVAL:
                    raise
                self._buffered()  # the file system opened O_DIRECT but refuses it
                write_all(self._fd, block[:length])

    def _buffered(self) -> None:
        import fcntl

        flags = fcntl.fcntl(self._fd, fcntl.F_GETFL)
        fcntl.fcntl(self._fd, fcntl.F_SETFL, flags & ~self._direct)

    @property
    def direct(self) -> bool:
        return self._buffer is not None

    def fill_from(self, source: Any) -> int:
        """Read from ``source`` (a raw file) straight into the next block; 0 at its end."""
        assert self._buffer is not None
        with memoryview(self._buffer) as view:
            n: int = source.readinto(view[self._filled :]) or 0
        self._filled += n
        if self._filled == DIRECT_BUFFER:
            self._hand_off()
        return n

    def _hand_off(self) -> None:
        assert self._buffer is not None
        if self._failed:
            raise self._failed[0]
        self._full.put(self._buffer)
        self._buffer = self._free.get()
        self._filled = 0

    def reserve(self, size: int) -> memoryview | None:
        """The next ``size`` bytes of the current block to write into, or None when
        they do not fit (or the sink writes through the page cache); then ``commit``."""
        if self._buffer is None or self._filled + size > DIRECT_BUFFER:
            return None
        return memoryview(self._buffer)[self._filled : self._filled + size]

    def commit(self, size: int) -> None:
        self._filled += size
        if self._filled == DIRECT_BUFFER:
            self._hand_off()

    def write(self, data: bytes | memoryview) -> None:
        if self._buffer is None:
            write_all(self._fd, data)
            return
        view = memoryview(data)
        while view:
            n = min(len(view), DIRECT_BUFFER - self._filled)
            self._buffer[self._filled : self._filled + n] = view[:n]
            self._filled += n
            view = view[n:]
            if self._filled == DIRECT_BUFFER:
                self._hand_off()

    def close(self, *, sync: bool = False) -> None:
        """Write what is left; with ``sync``, fsync the file before closing it."""
        try:
            if self._buffer is not None:
                self._full.put(None)
                self._writer.join()
                if self._failed:
                    raise self._failed[0]
                if self._filled:
                    self._buffered()  # an unaligned tail cannot be written directly
                    self._write_block(self._buffer, self._filled)
            if sync:
                os.fsync(self._fd)
        finally:
            os.close(self._fd)
            if self._buffer is not None:
                for buffer in self._all:
                    buffer.close()

"""Helpers shared by the headrace and DVC sides of the versioning bench (stdlib only).

- :func:`timed`: one subprocess, its wall time (start-up included) and CPU time (user +
  system, from ``RUSAGE_CHILDREN`` deltas).
- :func:`prepare_cache`: put the input in a known page-cache state before a measurement:
  ``cold`` writes back dirty pages and evicts the input's pages (``posix_fadvise
  DONTNEED``, no root needed); ``warm`` writes back and reads the input once. Where
  eviction is unsupported, ``cold`` falls back to ``warm`` and says so in its label.
- :func:`tree_bytes`: the bytes of the regular files under a folder (what a store holds).
"""

from __future__ import annotations

import os
import resource
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Timed:
    wall_s: float
    cpu_s: float
    stdout: str
    stderr: str


def timed(
    cmd: list[str], cwd: Path, env: dict[str, str] | None = None, timeout_s: float = 1800.0
) -> Timed:
    """Run ``cmd`` once; raise RuntimeError with its output tail if it fails."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout_s)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        raise RuntimeError(
            f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout[-2000:]}\n"
            f"{proc.stderr[-2000:]}"
        )
    return Timed(wall_s=wall, cpu_s=cpu, stdout=proc.stdout, stderr=proc.stderr)


def read_through(path: Path) -> None:
    """Read a file once so that its pages are cached."""
    buf = bytearray(8 << 20)
    with open(path, "rb", buffering=0) as handle:
        while handle.readinto(buf):
            pass


def evict(path: Path) -> bool:
    """Write back and drop one file's cached pages (``posix_fadvise``); False if unsupported.

    Only the input leaves the page cache: the tools' own code stays cached, as it is for a
    user who runs them every day, so "cold" measures reading the data, not loading Python.
    """
    if not hasattr(os, "posix_fadvise"):
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    except OSError:
        return False
    finally:
        os.close(fd)
    return True


def prepare_cache(path: Path, mode: str) -> str:
    """Bring ``path`` into page-cache state ``mode`` (``cold`` or ``warm``); say what was done.

    Dirty pages everywhere are written back first (``sync``), so neither tool pays for the
    previous measurement's writes.
    """
    os.sync()
    if mode == "cold":
        if evict(path):
            return "cold"
        read_through(path)
        return "warm (eviction unsupported)"
    read_through(path)
    return "warm"


def tree_bytes(folder: Path) -> int:
    """Total size of the regular files under ``folder`` (0 if it does not exist)."""
    total = 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            try:
                info = os.lstat(os.path.join(root, name))
            except FileNotFoundError:  # a temporary that went away meanwhile
                continue
            if stat.S_ISREG(info.st_mode):
                total += info.st_size
    return total

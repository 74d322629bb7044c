"""Helpers shared by the headrace and DVC sides of the versioning bench (stdlib only).

- :func:`timed`: one subprocess, its wall time (start-up included) and CPU time (user +
  system, from ``RUSAGE_CHILDREN`` deltas).
- :func:`prepare_cache`: put the page cache in a known state before a measurement: ``cold``
  writes back dirty pages and drops the page cache (``/proc/sys/vm/drop_caches``, needs
  root); ``warm`` writes back and reads the input once. When dropping is refused, ``cold``
  falls back to ``warm`` and says so in the returned label.
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


def drop_page_cache() -> bool:
    """Write back dirty pages and drop the page cache; False when not allowed."""
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w") as handle:
            handle.write("3\n")
    except OSError:
        return False
    return True


def prepare_cache(path: Path, mode: str) -> str:
    """Bring the page cache into ``mode`` (``cold`` or ``warm``); return what was done."""
    if mode == "cold":
        if drop_page_cache():
            return "cold"
        read_through(path)
        return "warm (drop_caches refused)"
    os.sync()
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

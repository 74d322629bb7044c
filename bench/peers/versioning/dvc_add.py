"""``dvc add`` of an existing file, timed the way ``headrace import`` is (bench/versioning.py).

DVC runs from its own virtual environment (``bench/peers/envs.py``, peer ``dvc``). Each
measurement uses a fresh folder made with ``dvc init --no-scm`` (untimed, as a user's
existing repository), a copy of the input placed in it (untimed: ``dvc add`` tracks files
inside the repository), then, after :func:`prepare_cache`:

1. ``dvc add FILE``: hash (MD5) and copy into ``.dvc/cache`` (timed, start-up included);
2. ``dvc add FILE`` again with nothing changed (timed), and the cache's growth in bytes.

DVC's state and index (its "site cache") go to a folder inside the measurement's folder, so
nothing is left under ``/var/tmp/dvc`` and no run profits from an earlier one.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

try:
    from bench.peers import envs
    from bench.peers.versioning._common import prepare_cache, timed, tree_bytes
except ModuleNotFoundError:  # run as a script: make the repo root importable
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
    from bench.peers import envs
    from bench.peers.versioning._common import prepare_cache, timed, tree_bytes

_SCRUB = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")


def ensure() -> envs.EnvStatus:
    """DVC's venv (created on first use, a minute or so; never raises for install errors)."""
    return envs.ensure_env("dvc")


def _env(site_cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SCRUB and not k.startswith("DVC_")}
    env.update(
        {
            "DVC_NO_ANALYTICS": "1",
            "DVC_SITE_CACHE_DIR": str(site_cache),
            "PYTHONDONTWRITEBYTECODE": "1",
        }
    )
    return env


def version(python: str) -> str:
    dvc = str(Path(python).parent / "dvc")
    with tempfile.TemporaryDirectory() as scratch:
        return timed([dvc, "--version"], Path(scratch), _env(Path(scratch))).stdout.strip()


def warm_up(python: str, base: Path) -> None:
    """An untimed ``dvc init`` + ``dvc add`` of a small file, so DVC's code is in the cache."""
    dvc = str(Path(python).parent / "dvc")
    folder = Path(tempfile.mkdtemp(prefix="dvc-warm-", dir=base))
    try:
        repo = folder / "repo"
        repo.mkdir()
        env = _env(folder / "site-cache")
        timed([dvc, "init", "--no-scm", "-q"], repo, env)
        (repo / "small.bin").write_bytes(os.urandom(1 << 20))
        timed([dvc, "add", "small.bin"], repo, env)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def add_once(python: str, data: Path, base: Path, cache_mode: str) -> dict[str, Any]:
    """One fresh repository: first ``dvc add`` and an unchanged re-add, with store growth."""
    dvc = str(Path(python).parent / "dvc")
    folder = Path(tempfile.mkdtemp(prefix="dvc-", dir=base))
    try:
        repo = folder / "repo"
        repo.mkdir()
        env = _env(folder / "site-cache")
        timed([dvc, "init", "--no-scm", "-q"], repo, env)
        target = repo / data.name
        shutil.copyfile(data, target)
        store = repo / ".dvc" / "cache"
        before = tree_bytes(store)
        cache_state = prepare_cache(target, cache_mode)
        first = timed([dvc, "add", data.name], repo, env)
        after_first = tree_bytes(store)
        again = timed([dvc, "add", data.name], repo, env)
        after_again = tree_bytes(store)
        return {
            "tool": "dvc",
            "cache": cache_state,
            "commit_s": first.wall_s,
            "commit_cpu_s": first.cpu_s,
            "stored_bytes": after_first - before,
            "recommit_s": again.wall_s,
            "recommit_cpu_s": again.cpu_s,
            "recommit_bytes": after_again - after_first,
            "input_bytes": target.stat().st_size,
            "ok": True,
        }
    finally:
        shutil.rmtree(folder, ignore_errors=True)

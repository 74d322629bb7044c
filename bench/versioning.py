"""Data versioning: content hashing, ``headrace import`` against ``dvc add``, branch and merge.

Three parts, all in one run and printed side by side (the versioning issue's targets):

1. **Hashing**: headrace's ``hash_file`` (BLAKE3, memory-mapped, multithreaded above
   64 MiB) on the ~1 GiB input with a warm page cache, in GiB/s, next to ``hashlib.md5``
   (what DVC uses) and single-threaded BLAKE3 read in 1 MiB chunks. Target: >= 2 GiB/s.
2. **Import vs ``dvc add``**: a ~1 GiB Parquet file (generated once, cached under
   ``<bench cache>/versioning/``) committed by ``headrace import ASSET FILE`` in a fresh
   workspace, and by ``dvc add FILE`` in a fresh ``dvc init --no-scm`` folder (DVC from its
   own venv, ``bench/peers/versioning/dvc_add.py``). Both are CLI subprocesses timed whole,
   start-up included; both run once untimed first (so their code is cached), then each
   repetition interleaves the two tools, each measurement in a fresh folder that is
   deleted right after. Before each first commit the input's pages
   are evicted from the page cache (``cold``; the tools' own code stays cached) or the
   input is read once (``warm``); dirty pages are written back first either way. Then the
   same file is committed again unchanged: time, and the bytes the store grew by.
   Targets: import >= 3x faster than ``dvc add``; re-commit stores nothing and takes < 10%
   of the first commit.
3. **Branches**: a workspace with 1,000 assets on ``main`` (seeded through ``import_table``
   with small Parquet files); ``create_branch`` then, after ``changed`` (100) assets were
   re-imported on the branch, ``merge`` into main, timed in-process on an open workspace
   (median of ``reps``). For information: one merge of a branch on which every asset
   changed, and the CLI's ``headrace branch create`` / ``headrace merge`` wall times
   (start-up included). Target: < 100 ms each.

Usage: ``python bench/run_all.py --only versioning`` (or ``python bench/versioning.py``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.peers import envs
from bench.peers.versioning._common import prepare_cache, read_through, timed, tree_bytes

HEADRACE = [sys.executable, "-m", "headrace"]
GIB = 1 << 30
DATA_VERSION = 1  # bump when the generated file's recipe changes
_STRING_WIDTH = 24
_ROW_BYTES = 8 + 4 * 8 + 8 + 4 + _STRING_WIDTH  # id, 4 doubles, int, string (+ offset)
_SECONDS = re.compile(r"(?:\bin|nothing stored;) ([0-9]+(?:\.[0-9]+)?) s\b")


def _say(message: str) -> None:
    print(f"[bench-versioning] {message}", file=sys.stderr, flush=True)


def _loadavg() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


# --- the input -------------------------------------------------------------------------------


def data_file(size_gib: float = 1.0) -> Path:
    """A ~``size_gib`` GiB Parquet file of random numbers and strings, made once and cached.

    Uncompressed and without dictionaries, so the file really is that big and hashing or
    copying it moves that many bytes. Deterministic (fixed seed).
    """
    import fcntl

    folder = envs.cache_dir() / "versioning"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"table-{size_gib:g}gib-v{DATA_VERSION}.parquet"
    with (folder / ".generate.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.exists():
            return path
        _say(f"generating {path} (once; kept in the bench cache)")
        tmp = path.with_suffix(".part")
        _generate(tmp, int(size_gib * GIB))
        os.replace(tmp, path)
    return path


def _generate(path: Path, target_bytes: int) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = -(-target_bytes // _ROW_BYTES)
    batch = 1 << 20
    rng = np.random.default_rng(20260105)
    schema = pa.schema(
        [
            ("id", pa.int64()),
            ("a", pa.float64()),
            ("b", pa.float64()),
            ("c", pa.float64()),
            ("d", pa.float64()),
            ("n", pa.int64()),
            ("s", pa.string()),
        ]
    )
    options = {"compression": "none", "use_dictionary": False}
    with pq.ParquetWriter(path, schema, **options) as writer:
        done = 0
        while done < rows:
            n = min(batch, rows - done)
            chars = rng.integers(97, 123, size=n * _STRING_WIDTH, dtype=np.uint8)
            offsets = np.arange(0, (n + 1) * _STRING_WIDTH, _STRING_WIDTH, dtype=np.int32)
            strings = pa.Array.from_buffers(
                pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(chars)]
            )
            columns = [
                pa.array(np.arange(done, done + n, dtype=np.int64)),
                *(pa.array(rng.random(n)) for _ in range(4)),
                pa.array(rng.integers(0, 1 << 62, size=n)),
                strings,
            ]
            writer.write_table(pa.Table.from_arrays(columns, schema=schema), row_group_size=n)
            done += n


# --- 1. hashing ------------------------------------------------------------------------------


def _read_hash(path: Path, hasher: Any) -> str:
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as handle:
        while n := handle.readinto(buf):
            hasher.update(view[:n])
    return str(hasher.hexdigest())


def hashing(path: Path, reps: int) -> dict[str, Any]:
    """GiB/s of headrace's ``hash_file`` and of references, warm page cache, median."""
    from blake3 import blake3

    from headrace.objects.blobs import hash_file

    size = path.stat().st_size
    read_through(path)
    cases = {
        "headrace hash_file (BLAKE3, mmap, threads)": lambda: hash_file(path),
        "blake3, 1 thread, 1 MiB reads": lambda: _read_hash(path, blake3()),
        "hashlib.md5 (DVC's hash), 1 MiB reads": lambda: _read_hash(
            path, hashlib.md5(usedforsecurity=False)
        ),
    }
    load = _loadavg()
    out: dict[str, Any] = {"bytes": size, "cpus": os.cpu_count(), "cases": {}}
    for name, fn in cases.items():
        walls = []
        for _ in range(max(reps, 3)):
            start = time.perf_counter()
            fn()
            walls.append(time.perf_counter() - start)
        wall = statistics.median(walls)
        out["cases"][name] = {"wall_s": wall, "gib_per_s": size / wall / GIB, "walls": walls}
    out["loadavg"] = [load, _loadavg()]
    return out


# --- 2. import against dvc add ---------------------------------------------------------------


def _headrace_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADRACE_")}
    env["COLUMNS"] = "250"  # one line per message, so the reported seconds parse
    return env


def _inner_seconds(stdout: str) -> float | None:
    found = _SECONDS.findall(" ".join(stdout.split()))
    return float(found[-1]) if found else None


def new_workspace(base: Path, prefix: str) -> tuple[Path, Path]:
    """A fresh workspace with its store created (untimed, as a user's existing one)."""
    from headrace.runtime.workspace import open_workspace
    from headrace.workspace.settings import init_workspace

    folder = Path(tempfile.mkdtemp(prefix=prefix, dir=base))
    init_workspace(folder)
    timed([*HEADRACE, "branch", "list"], folder, _headrace_env())
    with open_workspace(folder) as ws:
        objects = Path(ws.settings.resolved_objects_url)
    return folder, objects


def blob_bytes(objects: Path) -> int:
    """Bytes of the blobs in a local object store (``objects/ab/cdef...``), side files apart."""
    if not objects.is_dir():
        return 0
    return sum(
        tree_bytes(shard)
        for shard in objects.iterdir()
        if len(shard.name) == 2 and shard.is_dir() and not shard.name.startswith(".")
    )


def import_once(data: Path, base: Path, cache_mode: str) -> dict[str, Any]:
    """One fresh workspace: ``headrace import`` and an unchanged re-import, with store growth."""
    folder, objects = new_workspace(base, "hr-import-")
    env = _headrace_env()
    try:
        before = blob_bytes(objects)
        cache_state = prepare_cache(data, cache_mode)
        first = timed([*HEADRACE, "import", "table", str(data)], folder, env)
        after_first, folder_first = blob_bytes(objects), tree_bytes(folder)
        again = timed([*HEADRACE, "import", "table", str(data)], folder, env)
        after_again, folder_again = blob_bytes(objects), tree_bytes(folder)
        if "imported" not in first.stdout or "unchanged" not in again.stdout:
            raise RuntimeError(f"unexpected import output: {first.stdout!r} / {again.stdout!r}")
        return {
            "tool": "headrace",
            "cache": cache_state,
            "commit_s": first.wall_s,
            "commit_cpu_s": first.cpu_s,
            "commit_inner_s": _inner_seconds(first.stdout),
            "stored_bytes": after_first - before,
            "recommit_s": again.wall_s,
            "recommit_cpu_s": again.cpu_s,
            "recommit_inner_s": _inner_seconds(again.stdout),
            "recommit_bytes": after_again - after_first,
            # Everything in the workspace (metadata database, side files) for information.
            "recommit_workspace_bytes": folder_again - folder_first,
            "input_bytes": data.stat().st_size,
            "ok": True,
        }
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def warm_up(base: Path) -> None:
    """An untimed ``headrace import`` of a small file, so headrace's code is in the cache."""
    folder, _objects = new_workspace(base, "hr-warm-")
    try:
        small = _tiny_table(folder, 0, 0)
        timed([*HEADRACE, "import", "small", str(small)], folder, _headrace_env())
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _summary(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Median of each timing over the samples; the largest store growth (worst case)."""
    out: dict[str, Any] = {"tool": samples[0]["tool"], "cache": samples[0]["cache"], "ok": True}
    out["n"] = len(samples)
    for key in samples[0]:
        values = [s[key] for s in samples]
        if key.endswith("_s"):
            present = [v for v in values if v is not None]
            out[key] = statistics.median(present) if present else None
            out[key.removesuffix("_s") + "_all_s"] = values
        elif key.endswith("_bytes"):
            out[key] = max(values)
    return out


def import_vs_dvc(
    data: Path, reps: int, *, with_dvc: bool, cache_modes: tuple[str, ...]
) -> dict[str, Any]:
    from bench.peers.versioning import dvc_add

    dvc_python: str | None = None
    dvc_error: str | None = None
    dvc_version: str | None = None
    if with_dvc:
        status = dvc_add.ensure()
        if status.ok and status.python:
            dvc_python = status.python
            dvc_version = dvc_add.version(dvc_python)
        else:
            dvc_error = status.error or "dvc venv unavailable"
            _say(f"dvc unavailable: {dvc_error.splitlines()[0]}")
    base = Path(tempfile.mkdtemp(prefix="hr-bench-versioning-", dir=envs.cache_dir()))
    out: dict[str, Any] = {
        "input": str(data),
        "input_bytes": data.stat().st_size,
        "dvc_version": dvc_version,
        "modes": {},
    }
    try:
        # Both tools run once untimed first: "cold" is about the data, not about loading code.
        warm_up(base)
        if dvc_python:
            dvc_add.warm_up(dvc_python, base)
        for mode in cache_modes:
            ours: list[dict[str, Any]] = []
            theirs: list[dict[str, Any]] = []
            for rep in range(reps):
                _say(f"import vs dvc add, {mode} cache, repetition {rep + 1}/{reps}")
                ours.append(import_once(data, base, mode))
                if dvc_python:
                    try:
                        theirs.append(dvc_add.add_once(dvc_python, data, base, mode))
                    except (OSError, RuntimeError) as exc:
                        dvc_error = str(exc)
                        _say(f"dvc add failed: {dvc_error.splitlines()[0]}")
                        dvc_python = None
            entry: dict[str, Any] = {"headrace": _summary(ours), "samples": ours + theirs}
            entry["dvc"] = _summary(theirs) if theirs else {"ok": False, "error": dvc_error}
            out["modes"][mode] = entry
    finally:
        shutil.rmtree(base, ignore_errors=True)
    out["dvc_error"] = dvc_error
    return out


# --- 3. branches -----------------------------------------------------------------------------


def _tiny_table(folder: Path, asset: int, revision: int) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = folder / f"a{asset:04d}-r{revision}.parquet"
    pq.write_table(
        pa.table(
            {
                "id": pa.array(range(20), pa.int64()),
                "asset": pa.array([asset] * 20, pa.int64()),
                "revision": pa.array([revision] * 20, pa.int64()),
                "value": pa.array([float(asset * 1000 + revision + i) for i in range(20)]),
            }
        ),
        path,
    )
    return path


def _change(ws: Any, inputs: Path, branch: str, assets: list[int], revision: int) -> None:
    from headrace.data.versions import import_table

    for i in assets:
        result = import_table(ws, f"asset_{i:04d}", _tiny_table(inputs, i, revision), branch=branch)
        assert result.created


def branches(reps: int, *, n_assets: int = 1000, changed: int = 100) -> dict[str, Any]:
    """Seed ``n_assets`` on main, then time branch create and merge (in-process and CLI)."""
    from headrace.data.branching import create_branch, merge
    from headrace.runtime.workspace import open_workspace

    base = Path(tempfile.mkdtemp(prefix="hr-bench-branches-", dir=envs.cache_dir()))
    try:
        folder, _objects = new_workspace(base, "hr-branches-")
        inputs = folder / "inputs"
        inputs.mkdir()
        env = _headrace_env()
        with open_workspace(folder) as ws:
            started = time.perf_counter()
            _change(ws, inputs, "main", list(range(n_assets)), 0)
            seed_s = time.perf_counter() - started
            assert ws.store.branches.get("main").heads == n_assets
            creates, dry_runs, merges = [], [], []
            revision = 0
            for rep in range(reps):
                name = f"feature-{rep}"
                start = time.perf_counter()
                record = create_branch(ws, name)
                creates.append(time.perf_counter() - start)
                assert record.heads == n_assets, record
                revision += 1
                touched = [(rep * changed + j) % n_assets for j in range(changed)]
                _change(ws, inputs, name, touched, revision)
                start = time.perf_counter()
                planned = merge(ws, name, "main", dry_run=True)
                dry_runs.append(time.perf_counter() - start)
                start = time.perf_counter()
                result = merge(ws, name, "main")
                merges.append(time.perf_counter() - start)
                assert len(planned.moves) == len(result.moves) == changed, result
            # The worst case for merge: every asset changed on the branch (one sample).
            create_branch(ws, "feature-all")
            revision += 1
            _change(ws, inputs, "feature-all", list(range(n_assets)), revision)
            start = time.perf_counter()
            result = merge(ws, "feature-all", "main")
            merge_all_changed = time.perf_counter() - start
            assert len(result.moves) == n_assets, result
            cli_creates, cli_merges, cli_floor = [], [], []
            for rep in range(reps):
                name = f"cli-{rep}"
                cli_creates.append(timed([*HEADRACE, "branch", "create", name], folder, env).wall_s)
                revision += 1
                touched = [(7 + rep * changed + j) % n_assets for j in range(changed)]
                _change(ws, inputs, name, touched, revision)
                done = timed([*HEADRACE, "merge", name], folder, env)
                if f"moved {changed} versions" not in " ".join(done.stdout.split()):
                    raise RuntimeError(f"unexpected merge output: {done.stdout[-500:]!r}")
                cli_merges.append(done.wall_s)
                cli_floor.append(timed([*HEADRACE, "branch", "list"], folder, env).wall_s)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return {
        "assets": n_assets,
        "changed": changed,
        "seed_s": seed_s,
        "create_ms": statistics.median(creates) * 1000,
        "merge_ms": statistics.median(merges) * 1000,
        "merge_dry_run_ms": statistics.median(dry_runs) * 1000,
        "create_samples_ms": [t * 1000 for t in creates],
        "merge_samples_ms": [t * 1000 for t in merges],
        "merge_every_asset_changed_ms": merge_all_changed * 1000,
        "cli_create_ms": statistics.median(cli_creates) * 1000,
        "cli_merge_ms": statistics.median(cli_merges) * 1000,
        "cli_branch_list_ms": statistics.median(cli_floor) * 1000,
    }


# --- all of it -------------------------------------------------------------------------------


def run(
    *,
    reps: int,
    peers: list[str] | None = None,
    size_gib: float = 1.0,
    assets: int = 1000,
    changed: int = 100,
    cache_modes: tuple[str, ...] = ("cold", "warm"),
) -> dict[str, Any]:
    """Every versioning measurement; DVC too when ``peers`` names ``dvc`` (None: no peers)."""
    unknown = sorted(set(cache_modes) - {"cold", "warm"})
    if unknown or not cache_modes:
        raise ValueError(f"page-cache modes are 'cold' and 'warm', got {list(cache_modes)}")
    data = data_file(size_gib)
    with_dvc = bool(peers) and "dvc" in (peers or [])
    results: dict[str, Any] = {"loadavg_start": _loadavg(), "cpus": os.cpu_count()}
    _say("hashing")
    results["hashing"] = hashing(data, reps)
    results["import"] = import_vs_dvc(data, reps, with_dvc=with_dvc, cache_modes=cache_modes)
    _say(f"branches: seeding {assets} assets")
    results["branches"] = branches(reps, n_assets=assets, changed=changed)
    results["loadavg_end"] = _loadavg()
    return results


def _ratio(a: float | None, b: float | None) -> float:
    return a / b if a and b else float("nan")


def _verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def report(results: dict[str, Any]) -> str:
    lines: list[str] = []
    h = results["hashing"]
    first = next(iter(h["cases"].values()))
    lines.append(
        f"hashing {h['bytes'] / GIB:.2f} GiB, warm page cache, {h['cpus']} CPUs, load average "
        f"{h['loadavg'][0]:.1f}, median of {len(first['walls'])}:"
    )
    for name, case in h["cases"].items():
        lines.append(f"  {name:<44}{case['gib_per_s']:>7.2f} GiB/s{case['wall_s']:>8.3f} s")
    lines.append(f"  target >= 2 GiB/s: {_verdict(first['gib_per_s'] >= 2.0)}")

    imp = results["import"]
    lines.append("")
    lines.append(
        f"import {imp['input_bytes'] / GIB:.2f} GiB Parquet vs dvc add"
        + (f" ({imp['dvc_version']})" if imp.get("dvc_version") else "")
        + "; CLI wall s, start-up included (in-process s):"
    )
    header = (
        f"  {'cache':<7}{'tool':<10}{'commit s':>10}{'(inner)':>9}{'stored MiB':>12}"
        f"{'re-commit s':>13}{'(inner)':>9}{'re-stored B':>13}{'re/first':>10}"
    )
    lines += [header, "  " + "-" * (len(header) - 2)]
    for mode, entry in imp["modes"].items():
        for tool in ("headrace", "dvc"):
            r = entry[tool]
            if not r.get("ok"):
                lines.append(f"  {mode:<7}{tool:<10}  unavailable: {str(r.get('error'))[:70]}")
                continue
            inner = r.get("commit_inner_s")
            re_inner = r.get("recommit_inner_s")
            if r["cache"] != mode:
                lines.append(f"  ({tool}, {mode}: the page cache was {r['cache']})")
            lines.append(
                f"  {mode:<7}{tool:<10}{r['commit_s']:>10.2f}"
                f"{'' if inner is None else f'({inner:.2f})':>9}"
                f"{r['stored_bytes'] / 2**20:>12.0f}{r['recommit_s']:>13.2f}"
                f"{'' if re_inner is None else f'({re_inner:.2f})':>9}"
                f"{r['recommit_bytes']:>13,}{r['recommit_s'] / r['commit_s']:>10.0%}"
            )
        hr, dvc = entry["headrace"], entry["dvc"]
        if dvc.get("ok"):
            speedup = _ratio(dvc["commit_s"], hr["commit_s"])
            lines.append(
                f"  {mode}: dvc add / headrace import = {speedup:.2f}x "
                f"(target >= 3x: {_verdict(speedup >= 3.0)})"
            )
        share = hr["recommit_s"] / hr["commit_s"]
        inner_first, inner_again = hr.get("commit_inner_s"), hr.get("recommit_inner_s")
        lines.append(
            f"  {mode}: headrace re-commit {hr['recommit_bytes']:,} new blob bytes "
            f"(target 0: {_verdict(hr['recommit_bytes'] == 0)}; whole workspace "
            f"{hr.get('recommit_workspace_bytes', 0):+,} B)"
        )
        if inner_first and inner_again is not None:
            inner_share = inner_again / inner_first
            # The commit's own cost; the CLI's start-up (~0.7 s, the same for any command)
            # is budgeted by the orchestration target and shown for information.
            lines.append(
                f"  {mode}: re-commit costs {inner_share:.0%} of the first commit "
                f"(in-process; target < 10%: {_verdict(inner_share < 0.10)}); "
                f"CLI wall, start-up included: {share:.0%}"
            )
        else:
            lines.append(
                f"  {mode}: re-commit CLI wall {share:.0%} of the first commit "
                f"(target < 10%: {_verdict(share < 0.10)})"
            )

    b = results["branches"]
    lines.append("")
    lines.append(
        f"branches: workspace with {b['assets']:,} assets on main (seeded by import_table in "
        f"{b['seed_s']:.1f} s), {b['changed']} changed on the branch; in-process, median:"
    )
    lines.append(
        f"  create_branch {b['create_ms']:8.1f} ms   (target < 100 ms: "
        f"{_verdict(b['create_ms'] < 100)})"
    )
    lines.append(
        f"  merge         {b['merge_ms']:8.1f} ms   (target < 100 ms: "
        f"{_verdict(b['merge_ms'] < 100)}; dry run {b['merge_dry_run_ms']:.1f} ms)"
    )
    lines.append(
        f"  merge with all {b['assets']:,} assets changed: "
        f"{b['merge_every_asset_changed_ms']:.1f} ms (one sample, for information)"
    )
    lines.append(
        f"  CLI, start-up included: headrace branch create {b['cli_create_ms']:.0f} ms, "
        f"headrace merge {b['cli_merge_ms']:.0f} ms (headrace branch list "
        f"{b['cli_branch_list_ms']:.0f} ms)"
    )
    lines.append("")
    lines.append(
        f"load average {results['loadavg_start']:.1f} at start, {results['loadavg_end']:.1f} "
        f"at end ({results['cpus']} CPUs)"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--no-peers", action="store_true", help="headrace only (no DVC)")
    parser.add_argument("--size-gib", type=float, default=1.0)
    parser.add_argument("--assets", type=int, default=1000)
    parser.add_argument("--cache", default="cold,warm", help="page-cache modes: cold,warm")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    results = run(
        reps=args.reps,
        peers=None if args.no_peers else ["dvc"],
        size_gib=args.size_gib,
        assets=args.assets,
        cache_modes=tuple(m for m in args.cache.split(",") if m),
    )
    print(report(results))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The object store: what durability costs, and encrypted import against ``dvc add``.

Three parts, in one run, printed side by side (the trust issue's targets):

1. **Durable import**: ``headrace import`` of the ~1 GiB Parquet file of
   ``bench/versioning.py`` into a fresh workspace, synced (the default) and with
   ``HEADRACE_OBJECTS_DURABLE=0``, interleaved, each after the input was read once and
   dirty pages were written back (``warm``), so neither pays for the other's writes.
   Target: syncing costs < 10% of the import (in-process seconds, the CLI start-up
   apart; the CLI wall is shown too).
2. **Durable chain**: the 200-asset chain of ``bench/orchestration.py``, in-process run
   time (``bench/workloads/headrace_run.py``) and ``headrace materialize`` CLI wall,
   synced and unsynced (200 small blobs, each a file sync and a folder sync).
3. **Encrypted import vs dvc add**: ``headrace import`` of the same file into an
   encrypted workspace (``headrace keys init``, untimed) against ``dvc add`` of the file
   unencrypted (DVC from its own venv, as in ``bench/versioning.py``), ``cold`` and
   ``warm`` page cache. Target: >= 3x faster.

Usage: ``python bench/run_all.py --only objects`` (or ``python bench/objects.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import orchestration, versioning
from bench.peers import envs
from bench.peers.versioning._common import prepare_cache, timed

HEADRACE = versioning.HEADRACE
GIB = versioning.GIB
KEY = "bench key: not a secret, only for this benchmark"


def _say(message: str) -> None:
    print(f"[bench-objects] {message}", file=sys.stderr, flush=True)


def _env(**extra: str) -> dict[str, str]:
    return versioning._headrace_env() | extra


def _import(
    data: Path, base: Path, env: dict[str, str], mode: str, *, encrypt: bool
) -> dict[str, Any]:
    folder, _objects = versioning.new_workspace(base, "hr-objects-")
    try:
        if encrypt:
            timed([*HEADRACE, "keys", "init"], folder, env)
        cache = prepare_cache(data, mode)
        first = timed([*HEADRACE, "import", "table", str(data)], folder, env)
        if "imported" not in first.stdout:
            raise RuntimeError(f"unexpected import output: {first.stdout!r}")
        return {
            "cache": cache,
            "wall_s": first.wall_s,
            "inner_s": versioning._inner_seconds(first.stdout),
        }
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _median(samples: list[dict[str, Any]], key: str) -> float:
    return statistics.median(s[key] for s in samples if s[key] is not None)


def durable_import(data: Path, base: Path, reps: int) -> dict[str, Any]:
    out: dict[str, Any] = {"input_bytes": data.stat().st_size}
    runs: dict[str, list[dict[str, Any]]] = {"durable": [], "unsynced": []}
    for rep in range(reps):
        _say(f"import, synced and unsynced, repetition {rep + 1}/{reps}")
        for name, flag in (("durable", "1"), ("unsynced", "0")):
            env = _env(HEADRACE_OBJECTS_DURABLE=flag)
            runs[name].append(_import(data, base, env, "warm", encrypt=False))
    for name, samples in runs.items():
        out[name] = {
            "wall_s": _median(samples, "wall_s"),
            "inner_s": _median(samples, "inner_s"),
            "samples": samples,
        }
    return out


def durable_chain(base: Path, reps: int, n: int = 200) -> dict[str, Any]:
    script = str(orchestration.WORKLOADS / "headrace_run.py")
    out: dict[str, Any] = {"n": n}
    walls: dict[str, list[float]] = {"durable": [], "unsynced": []}
    runs: dict[str, list[float]] = {"durable": [], "unsynced": []}
    for rep in range(reps):
        _say(f"{n}-asset chain, synced and unsynced, repetition {rep + 1}/{reps}")
        for name, flag in (("durable", "1"), ("unsynced", "0")):
            env = orchestration._env("chain", n) | {"HEADRACE_OBJECTS_DURABLE": flag}
            cli_ws = orchestration._workspace(base, "chain", n)
            walls[name].append(orchestration._timed([*HEADRACE, "materialize"], cli_ws, env)[0])
            api_ws = orchestration._workspace(base, "chain", n)
            _, _, printed = orchestration._timed(
                [sys.executable, script, "chain", str(n), str(api_ws)], api_ws, env
            )
            record = json.loads(printed.strip().splitlines()[-1])
            assert record["ok"], record
            runs[name].append(record["run_s"])
            shutil.rmtree(cli_ws, ignore_errors=True)
            shutil.rmtree(api_ws, ignore_errors=True)
    for name in walls:
        out[name] = {
            "wall_s": statistics.median(walls[name]),
            "run_s": statistics.median(runs[name]),
            "walls": walls[name],
            "runs": runs[name],
        }
    return out


def encrypted_vs_dvc(
    data: Path, base: Path, reps: int, *, with_dvc: bool, modes: tuple[str, ...]
) -> dict[str, Any]:
    from bench.peers.versioning import dvc_add

    dvc_python: str | None = None
    error: str | None = None
    if with_dvc:
        status = dvc_add.ensure()
        if status.ok and status.python:
            dvc_python = status.python
        else:
            error = status.error or "dvc venv unavailable"
    out: dict[str, Any] = {
        "dvc_version": dvc_add.version(dvc_python) if dvc_python else None,
        "dvc_error": error,
        "modes": {},
    }
    env = _env(HEADRACE_ENCRYPTION_KEY=KEY)
    versioning.warm_up(base)
    if dvc_python:
        dvc_add.warm_up(dvc_python, base)
    for mode in modes:
        ours: list[dict[str, Any]] = []
        theirs: list[dict[str, Any]] = []
        for rep in range(reps):
            _say(f"encrypted import vs dvc add, {mode} cache, repetition {rep + 1}/{reps}")
            ours.append(_import(data, base, env, mode, encrypt=True))
            if dvc_python:
                theirs.append(dvc_add.add_once(dvc_python, data, base, mode))
        entry: dict[str, Any] = {
            "headrace": {
                "wall_s": _median(ours, "wall_s"),
                "inner_s": _median(ours, "inner_s"),
                "cache": ours[0]["cache"],
                "samples": ours,
            }
        }
        if theirs:
            entry["dvc"] = {
                "wall_s": statistics.median(t["commit_s"] for t in theirs),
                "samples": theirs,
            }
        out["modes"][mode] = entry
    return out


def run(
    *,
    reps: int,
    peers: list[str] | None = None,
    size_gib: float = 1.0,
    modes: tuple[str, ...] = ("cold", "warm"),
) -> dict[str, Any]:
    data = versioning.data_file(size_gib)
    base = Path(tempfile.mkdtemp(prefix="hr-bench-objects-", dir=envs.cache_dir()))
    try:
        results: dict[str, Any] = {"cpus": os.cpu_count(), "loadavg_start": os.getloadavg()[0]}
        results["import"] = durable_import(data, base, reps)
        results["chain"] = durable_chain(base, reps)
        with_dvc = bool(peers) and "dvc" in (peers or [])
        results["encrypted"] = encrypted_vs_dvc(data, base, reps, with_dvc=with_dvc, modes=modes)
        results["loadavg_end"] = os.getloadavg()[0]
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return results


def _verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def report(results: dict[str, Any]) -> str:
    lines: list[str] = []
    imp = results["import"]
    d, u = imp["durable"], imp["unsynced"]
    cost = d["inner_s"] / u["inner_s"] - 1
    lines.append(
        f"headrace import {imp['input_bytes'] / GIB:.2f} GiB, warm input, median of "
        f"{len(d['samples'])}: in-process s (CLI wall s, start-up included)"
    )
    lines.append(f"  durable (fsync)  {d['inner_s']:8.2f} ({d['wall_s']:.2f})")
    lines.append(f"  unsynced         {u['inner_s']:8.2f} ({u['wall_s']:.2f})")
    lines.append(
        f"  syncing costs {cost:+.1%} in-process, {d['wall_s'] / u['wall_s'] - 1:+.1%} CLI wall "
        f"(target < 10%: {_verdict(cost < 0.10)})"
    )
    ch = results["chain"]
    d, u = ch["durable"], ch["unsynced"]
    lines.append("")
    lines.append(
        f"{ch['n']}-asset chain, median of {len(d['runs'])}: in-process run s "
        "(headrace materialize CLI wall s)"
    )
    lines.append(f"  durable (fsync)  {d['run_s']:8.3f} ({d['wall_s']:.3f})")
    lines.append(f"  unsynced         {u['run_s']:8.3f} ({u['wall_s']:.3f})")
    lines.append(
        f"  syncing costs {d['run_s'] / u['run_s'] - 1:+.1%} of the run, "
        f"{d['wall_s'] / u['wall_s'] - 1:+.1%} CLI wall (for information)"
    )
    enc = results["encrypted"]
    lines.append("")
    lines.append(
        "encrypted headrace import vs dvc add (unencrypted)"
        + (f", {enc['dvc_version']}" if enc.get("dvc_version") else "")
        + ": CLI wall s, start-up included (in-process s)"
    )
    for mode, entry in enc["modes"].items():
        hr = entry["headrace"]
        line = f"  {mode:<5} headrace {hr['wall_s']:6.2f} ({hr['inner_s']:.2f})"
        if "dvc" in entry:
            ratio = entry["dvc"]["wall_s"] / hr["wall_s"]
            line += (
                f"   dvc add {entry['dvc']['wall_s']:6.2f}   dvc / headrace {ratio:.2f}x "
                f"(target >= 3x: {_verdict(ratio >= 3)})"
            )
        else:
            line += f"   dvc unavailable: {str(enc.get('dvc_error'))[:60]}"
        lines.append(line)
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
    parser.add_argument("--cache", default="cold,warm", help="page-cache modes: cold,warm")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    results = run(
        reps=args.reps,
        peers=None if args.no_peers else ["dvc"],
        size_gib=args.size_gib,
        modes=tuple(m for m in args.cache.split(",") if m),
    )
    print(report(results))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Run the orchestration workloads in each peer's own virtual environment and time them.

Each (peer config, shape, repetition) is one subprocess: the runner script prints one JSON
line with the peer's own import and run times, and this module adds the wall time of the
whole subprocess (interpreter start-up included) and its CPU time (user + system, from
``RUSAGE_CHILDREN`` deltas, so servers the peer starts and reaps are counted too).

Library use (from the repo root, or with it on ``sys.path``)::

    from bench.peers.orchestration.run import run_peers
    records = run_peers([("chain", 200), ("fan", 200)], peers=["dagster", "prefect"], reps=3)

Script use::

    python bench/peers/orchestration/run.py --shapes chain:200,fan:200 \\
        --peers dagster,prefect,airflow,plain [--reps 3] [--out peers.json]

Peer state (Dagster, Prefect and Airflow homes with their SQLite databases) lives in a fresh
directory under ``<cache>/homes`` for each call, is prepared before timing (``airflow db
migrate``, a ``dagster.yaml``), and is warmed up with an untimed ``chain 1`` run per config so
that creating the databases is not billed to the first measured shape. Runner output goes to
``<cache>/logs/peers/``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

try:
    from bench.peers import envs
except ModuleNotFoundError:  # run as a script: make the repo root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
    from bench.peers import envs

HERE = Path(__file__).resolve().parent
DEFAULT_TIMEOUT_S = 300.0
SETUP_TIMEOUT_S = 600.0
# Inherited variables that would point a peer at someone else's state or packages.
_SCRUB = (
    "PYTHONPATH",
    "PYTHONHOME",
    "VIRTUAL_ENV",
    "DAGSTER_HOME",
    "PREFECT_API_URL",
    "PREFECT_PROFILE",
    "AIRFLOW_CONFIG",
    "AIRFLOW__CORE__DAGS_FOLDER",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
)


@dataclass(frozen=True)
class PeerConfig:
    """One measured way of running a peer: its venv (``family``), script and extra args."""

    tool: str
    family: str  # a key of envs.PEERS, or "plain" for the bench's own interpreter
    script: str
    args: tuple[str, ...] = ()


CONFIGS: tuple[PeerConfig, ...] = (
    PeerConfig("plain", "plain", "plain_run.py"),
    PeerConfig("prefect", "prefect", "prefect_run.py"),
    PeerConfig("dagster-ops-sqlite", "dagster", "dagster_run.py", ("ops",)),
    PeerConfig("dagster-assets-sqlite", "dagster", "dagster_run.py", ("assets",)),
    PeerConfig("airflow-dagtest", "airflow", "airflow_run.py"),
)


@dataclass
class Sample:
    """One subprocess run."""

    ok: bool
    error: str | None
    wall_s: float
    cpu_s: float
    inner: dict[str, Any]


def _say(message: str) -> None:
    print(f"[bench-peers] {message}", file=sys.stderr, flush=True)


def select_configs(peers: Sequence[str] | None) -> list[PeerConfig]:
    """Configs whose tool name or family is in ``peers`` (all when None), in CONFIGS order."""
    if peers is None:
        return list(CONFIGS)
    wanted = set(peers)
    known = {c.tool for c in CONFIGS} | {c.family for c in CONFIGS}
    unknown = sorted(wanted - known)
    if unknown:
        raise ValueError(f"unknown peer(s) {unknown}; choose from {sorted(known)}")
    return [c for c in CONFIGS if c.tool in wanted or c.family in wanted]


# --- peer state ------------------------------------------------------------------------------


def _base_env(homes: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SCRUB}
    env.update(
        {
            "PYTHONDONTWRITEBYTECODE": "1",
            "DAGSTER_HOME": str(homes / "dagster"),
            "PREFECT_HOME": str(homes / "prefect"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_SERVER_EPHEMERAL_ENABLED": "true",
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
            "AIRFLOW_HOME": str(homes / "airflow"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        }
    )
    return env


def _setup_dagster(home: Path, python: Path, env: dict[str, str]) -> None:
    del python, env
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(
        f"storage:\n  sqlite:\n    base_dir: {home}\ntelemetry:\n  enabled: false\n"
    )


def _setup_prefect(home: Path, python: Path, env: dict[str, str]) -> None:
    del python, env
    home.mkdir(parents=True, exist_ok=True)  # Prefect does not create missing parents


def _setup_airflow(home: Path, python: Path, env: dict[str, str]) -> None:
    home.mkdir(parents=True, exist_ok=True)
    cmd = [str(python.parent / "airflow"), "db", "migrate"]
    proc = subprocess.run(
        cmd, env=env, capture_output=True, text=True, timeout=SETUP_TIMEOUT_S, check=False
    )
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise RuntimeError(f"airflow db migrate exited {proc.returncode}: {' | '.join(tail)}")


_SETUP: dict[str, Callable[[Path, Path, dict[str, str]], None]] = {
    "dagster": _setup_dagster,
    "prefect": _setup_prefect,
    "airflow": _setup_airflow,
}


# --- one subprocess --------------------------------------------------------------------------


def _parse_result(stdout: str) -> dict[str, Any] | None:
    for line in reversed(stdout.splitlines()):
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            data = json.loads(line)
        except ValueError:
            continue
        if isinstance(data, dict) and "run_s" in data:
            return data
    return None


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1][:500] if lines else ""


def run_once(cmd: list[str], env: dict[str, str], log_stem: Path, timeout_s: float) -> Sample:
    """Run ``cmd`` once, stdout/stderr to ``<log_stem>.out``/``.err``; never raises on failure."""
    out_path, err_path = log_stem.with_suffix(".out"), log_stem.with_suffix(".err")
    timed_out = False
    with out_path.open("w") as out, err_path.open("w") as err:
        ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        try:
            proc = subprocess.Popen(
                cmd, env=env, cwd=HERE, stdout=out, stderr=err, start_new_session=True
            )
        except OSError as exc:
            return Sample(
                ok=False, error=f"cannot start {cmd[0]}: {exc}", wall_s=0.0, cpu_s=0.0, inner={}
            )
        try:
            returncode = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
            os.killpg(proc.pid, signal.SIGKILL)  # the runner and any server it started
            returncode = proc.wait()
        wall = time.perf_counter() - t0
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    inner = _parse_result(out_path.read_text(errors="replace")) or {}
    error: str | None = None
    if timed_out:
        error = f"timeout after {timeout_s:.0f}s"
    elif returncode != 0:
        error = f"exit {returncode}: {_last_line(err_path.read_text(errors='replace'))}"
    elif not inner:
        error = "no JSON result line on stdout"
    elif inner.get("ok") is not True:
        error = f"runner reported failure: {json.dumps(inner)[:300]}"
    return Sample(ok=error is None, error=error, wall_s=wall, cpu_s=cpu, inner=inner)


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _record(
    config: PeerConfig, mode: str, n: int, samples: list[Sample], version: str | None
) -> dict[str, Any]:
    good = [s for s in samples if s.ok]
    errors = [s.error for s in samples if s.error]

    def med(key: str) -> float | None:
        return _median([float(s.inner[key]) for s in good if key in s.inner])

    return {
        "tool": config.tool,
        "mode": mode,
        "n": n,
        "wall_s": _median([s.wall_s for s in good]),
        "run_s": med("run_s"),
        "import_s": med("import_s"),
        "cpu_s": _median([s.cpu_s for s in good]),
        "run_cpu_s": med("run_cpu_s"),
        "reps": len(good),
        "version": version,
        "ok": bool(samples) and not errors,
        "error": errors[0] if errors else None,
    }


def _failed(config: PeerConfig, mode: str, n: int, error: str) -> dict[str, Any]:
    return {
        "tool": config.tool,
        "mode": mode,
        "n": n,
        "wall_s": None,
        "run_s": None,
        "import_s": None,
        "cpu_s": None,
        "run_cpu_s": None,
        "reps": 0,
        "version": None,
        "ok": False,
        "error": error,
    }


# --- the bench -------------------------------------------------------------------------------


@dataclass
class _Family:
    python: Path | None
    version: str | None
    error: str | None


def _prepare_families(families: list[str], homes: Path, env: dict[str, str]) -> dict[str, _Family]:
    ready: dict[str, _Family] = {}
    for family in families:
        if family == "plain":
            ready[family] = _Family(Path(sys.executable), sys.version.split()[0], None)
            continue
        status = envs.ensure_env(family)
        if not status.ok or status.python is None:
            ready[family] = _Family(None, None, f"venv: {status.error}")
            continue
        python = Path(status.python)
        version = next(iter((status.versions or {}).values()), None)
        try:
            _SETUP[family](homes / family, python, env)
        except (OSError, RuntimeError, subprocess.TimeoutExpired) as exc:
            ready[family] = _Family(None, version, f"setup: {exc}")
            continue
        ready[family] = _Family(python, version, None)
    return ready


def run_peers(
    shapes: list[tuple[str, int]],
    peers: list[str] | None = None,
    reps: int = 1,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    warmup: bool = True,
) -> list[dict[str, Any]]:
    """Time every selected peer config on every ``(mode, n)`` shape; one record per pair.

    ``peers`` names configs (``"dagster-ops-sqlite"``) or families (``"dagster"``, ``"plain"``,
    ``"prefect"``, ``"airflow"``); None means all. Times are medians over the successful
    repetitions. A peer whose venv, setup or run fails yields ``ok=False`` with ``error`` set;
    nothing here raises for a peer's failure.
    """
    for mode, n in shapes:
        if mode not in ("chain", "fan") or n < 1:
            raise ValueError(f"bad shape {(mode, n)}: mode is 'chain' or 'fan', n >= 1")
    configs = select_configs(peers)
    cache = envs.cache_dir()
    logs = cache / "logs" / "peers"
    logs.mkdir(parents=True, exist_ok=True)
    (cache / "homes").mkdir(exist_ok=True)
    homes = Path(tempfile.mkdtemp(prefix="run-", dir=cache / "homes"))
    env = _base_env(homes)
    try:
        families = list(dict.fromkeys(c.family for c in configs))
        ready = _prepare_families(families, homes, env)

        def command(config: PeerConfig, python: Path, mode: str, n: int) -> list[str]:
            return [str(python), str(HERE / config.script), mode, str(n), *config.args]

        if warmup:
            for config in configs:
                fam = ready[config.family]
                if fam.python is not None:
                    _say(f"warm-up {config.tool}")
                    cmd = command(config, fam.python, "chain", 1)
                    run_once(cmd, env, logs / f"{config.tool}-warmup", timeout_s)

        records: list[dict[str, Any]] = []
        for mode, n in shapes:
            for config in configs:
                fam = ready[config.family]
                if fam.python is None:
                    records.append(_failed(config, mode, n, fam.error or "unavailable"))
                    continue
                samples: list[Sample] = []
                for rep in range(reps):
                    stem = logs / f"{config.tool}-{mode}-{n}-r{rep}"
                    sample = run_once(command(config, fam.python, mode, n), env, stem, timeout_s)
                    samples.append(sample)
                    status = "ok" if sample.ok else f"FAILED ({sample.error})"
                    _say(f"{config.tool} {mode}:{n} rep {rep}: {sample.wall_s:.2f}s {status}")
                    if not sample.ok:
                        break
                records.append(_record(config, mode, n, samples, fam.version))
        return records
    finally:
        shutil.rmtree(homes, ignore_errors=True)


# --- command line ----------------------------------------------------------------------------


def parse_shapes(text: str) -> list[tuple[str, int]]:
    """``"chain:200,fan:200"`` -> ``[("chain", 200), ("fan", 200)]``."""
    shapes: list[tuple[str, int]] = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        mode, _, count = item.partition(":")
        if mode not in ("chain", "fan") or not count.isdigit():
            raise argparse.ArgumentTypeError(f"bad shape {item!r}; expected chain:N or fan:N")
        shapes.append((mode, int(count)))
    return shapes


def _fmt(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, float) else ("-" if value is None else str(value))


def format_table(records: list[dict[str, Any]]) -> str:
    columns = ("tool", "mode", "n", "wall_s", "run_s", "import_s", "cpu_s", "ok", "error")
    rows = [[_fmt(r.get(c)) for c in columns] for r in records]
    for row in rows:
        row[-1] = row[-1][:60]
    widths = [max(len(c), *(len(row[i]) for row in rows)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(line.rstrip() for line in lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Time peer orchestrators on chain/fan shapes.")
    parser.add_argument("--shapes", type=parse_shapes, default=parse_shapes("chain:200,fan:200"))
    parser.add_argument("--peers", default=None, help="comma-separated tools or families")
    parser.add_argument("--reps", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="per run, s")
    parser.add_argument("--no-warmup", action="store_true")
    parser.add_argument("--out", type=Path, help="write the JSON records here, not to stdout")
    args = parser.parse_args(argv)
    peers = [p.strip() for p in args.peers.split(",") if p.strip()] if args.peers else None
    try:
        records = run_peers(
            args.shapes, peers, args.reps, timeout_s=args.timeout, warmup=not args.no_warmup
        )
    except ValueError as exc:
        parser.error(str(exc))
    print(format_table(records), file=sys.stderr)
    payload = json.dumps(records, indent=2)
    if args.out:
        args.out.write_text(payload + "\n")
    else:
        print(payload)
    return 0 if all(r["ok"] for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())

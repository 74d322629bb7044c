"""One virtual environment per peer tool, created on demand under the bench cache.

Each peer (Dagster, Prefect, Airflow; DVC for the versioning bench; Great Expectations and
Pandera for the quality bench; MLflow for the tracking bench; Evidently for the drift
bench) gets its own venv at
``<cache>/venvs/<peer>``, made with ``python -m venv`` and filled from PyPI with pip. A stamp
file written after a successful install makes creation idempotent; a changed requirement list
rebuilds the env. A failed install is recorded in ``<cache>/venvs/<peer>.failed`` (with the
tail of pip's log) and is not retried for the same requirements unless asked, so one broken
peer never stops the bench.

The cache is ``$HEADRACE_BENCH_CACHE`` or ``<repo>/.bench-cache``. Progress goes to stderr.

Usage: ``python bench/peers/envs.py
[--peers dagster,prefect,airflow,dvc,great_expectations,pandera,mlflow,evidently] [--retry-failed]``
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
STAMP_NAME = ".headrace-bench-stamp.json"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
INSTALL_TIMEOUT_S = 3600.0


@dataclass(frozen=True)
class PeerSpec:
    """What to pip-install for one peer, and a module whose import proves the env works."""

    name: str
    requirements: tuple[str, ...]
    probe_module: str

    def digest(self) -> str:
        text = "\n".join((self.name, self.probe_module, *self.requirements))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


PEERS: dict[str, PeerSpec] = {
    "dagster": PeerSpec(
        name="dagster",
        requirements=("dagster>=1.13,<1.14",),
        probe_module="dagster",
    ),
    "prefect": PeerSpec(
        name="prefect",
        # Prefect 3.8's ephemeral server failed to start with fastapi>=0.155 on this machine.
        requirements=("prefect>=3,<4", "fastapi==0.154.0"),
        probe_module="prefect",
    ),
    "airflow": PeerSpec(
        name="airflow",
        requirements=("apache-airflow>=3,<4",),
        probe_module="airflow.sdk",
    ),
    # Not an orchestrator: the data-versioning peer of bench/versioning.py (`dvc add`).
    "dvc": PeerSpec(
        name="dvc",
        requirements=("dvc>=3,<4",),
        probe_module="dvc.repo",
    ),
    # The data-quality peers of bench/quality.py. Both get pandas 3 with pyarrow, as the
    # project venv has, so all tools validate the same Arrow-backed text columns. (Great
    # Expectations 1.24 does not cap pandas and ran this suite on pandas 3.1 with the same
    # results as on 2.3, at the same speed.)
    "great_expectations": PeerSpec(
        name="great_expectations",
        requirements=("great_expectations>=1,<2", "pandas", "pyarrow"),
        probe_module="great_expectations.expectations",
    ),
    "pandera": PeerSpec(
        name="pandera",
        requirements=("pandera[pandas]>=0.24", "pandas", "pyarrow"),
        probe_module="pandera.pandas",
    ),
    # The experiment-tracking peer of bench/tracking.py: the full package (not
    # mlflow-skinny), which brings SQLAlchemy and Alembic for its SQLite tracking store.
    "mlflow": PeerSpec(
        name="mlflow",
        requirements=("mlflow>=2,<4",),
        probe_module="mlflow.store.tracking.sqlalchemy_store",
    ),
    # The drift peer of bench/drift.py: Evidently 0.7's DataDriftPreset; it needs pandas < 3.
    "evidently": PeerSpec(
        name="evidently",
        requirements=("evidently>=0.7,<0.8", "pandas<3"),
        probe_module="evidently.presets",
    ),
}


@dataclass
class EnvStatus:
    """The outcome of :func:`ensure_env` for one peer."""

    peer: str
    ok: bool
    python: str | None = None
    error: str | None = None
    created: bool = False
    install_s: float | None = None
    versions: dict[str, str] | None = None


def cache_dir() -> Path:
    """The bench cache: ``$HEADRACE_BENCH_CACHE`` or ``<repo>/.bench-cache``, created if absent."""
    raw = os.environ.get("HEADRACE_BENCH_CACHE")
    path = Path(raw).expanduser().resolve() if raw else REPO_ROOT / ".bench-cache"
    path.mkdir(parents=True, exist_ok=True)
    return path


def venv_dir(peer: str) -> Path:
    return cache_dir() / "venvs" / peer


def venv_python(peer: str) -> Path:
    return venv_dir(peer) / "bin" / "python"


def _failure_path(peer: str) -> Path:
    return cache_dir() / "venvs" / f"{peer}.failed"


def _log_path(peer: str) -> Path:
    path = cache_dir() / "logs" / f"install-{peer}.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _say(message: str) -> None:
    print(f"[bench-envs] {message}", file=sys.stderr, flush=True)


def _read_json(path: Path) -> dict[str, object] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _run_logged(cmd: list[str], log: Path, timeout_s: float) -> None:
    """Run ``cmd`` appending its output to ``log``; raise RuntimeError on failure."""
    with log.open("a") as fh:
        fh.write(f"\n$ {' '.join(cmd)}\n")
        fh.flush()
        try:
            proc = subprocess.run(
                cmd, stdout=fh, stderr=subprocess.STDOUT, timeout=timeout_s, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise RuntimeError(f"timed out after {timeout_s:.0f}s: {' '.join(cmd)}") from exc
    if proc.returncode != 0:
        raise RuntimeError(f"exit {proc.returncode}: {' '.join(cmd)}\n{_tail(log)}")


def _installed_versions(python: Path, spec: PeerSpec) -> dict[str, str]:
    names = [m.group(0) for req in spec.requirements if (m := _NAME.match(req))]
    code = (
        "import json, sys\n"
        "from importlib.metadata import version, PackageNotFoundError\n"
        "out = {}\n"
        "for n in sys.argv[1:]:\n"
        "    try: out[n] = version(n)\n"
        "    except PackageNotFoundError: pass\n"
        "print(json.dumps(out))\n"
    )
    proc = subprocess.run(
        [str(python), "-c", code, *names], capture_output=True, text=True, check=False
    )
    data = json.loads(proc.stdout) if proc.returncode == 0 and proc.stdout.strip() else {}
    return {str(k): str(v) for k, v in data.items()}


def _install(spec: PeerSpec, target: Path, log: Path) -> None:
    if target.exists():
        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    _run_logged([sys.executable, "-m", "venv", str(target)], log, 300.0)
    python = target / "bin" / "python"
    pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check"]
    _run_logged([*pip, "--upgrade", "pip"], log, 600.0)
    _run_logged([*pip, *spec.requirements], log, INSTALL_TIMEOUT_S)
    _run_logged([str(python), "-c", f"import {spec.probe_module}"], log, 300.0)


def _stamped_status(peer: str, spec: PeerSpec) -> EnvStatus | None:
    """The status of an existing venv whose stamp matches ``spec``, else None."""
    python = venv_python(peer)
    stamp = _read_json(venv_dir(peer) / STAMP_NAME)
    if not stamp or stamp.get("digest") != spec.digest() or not python.exists():
        return None
    versions = stamp.get("versions")
    install_s = stamp.get("install_s")
    return EnvStatus(
        peer=peer,
        ok=True,
        python=str(python),
        install_s=float(install_s) if isinstance(install_s, int | float) else None,
        versions={str(k): str(v) for k, v in versions.items()}
        if isinstance(versions, dict)
        else None,
    )


def _build(peer: str, spec: PeerSpec) -> EnvStatus:
    target, python, log = venv_dir(peer), venv_python(peer), _log_path(peer)
    log.write_text("")
    _say(f"creating {peer} venv at {target} ({' '.join(spec.requirements)}); log: {log}")
    started = time.perf_counter()
    try:
        _install(spec, target, log)
    except (OSError, RuntimeError) as exc:
        elapsed = time.perf_counter() - started
        error = str(exc)
        _say(f"{peer}: install FAILED after {elapsed:.0f}s: {error.splitlines()[0]}")
        record = {"digest": spec.digest(), "error": error, "install_s": elapsed, "at": time.time()}
        _failure_path(peer).write_text(json.dumps(record, indent=2))
        return EnvStatus(peer=peer, ok=False, error=error, install_s=elapsed)
    elapsed = time.perf_counter() - started
    versions = _installed_versions(python, spec)
    stamp = {
        "digest": spec.digest(),
        "requirements": list(spec.requirements),
        "versions": versions,
        "install_s": elapsed,
        "python": sys.version.split()[0],
        "at": time.time(),
    }
    (target / STAMP_NAME).write_text(json.dumps(stamp, indent=2))
    _failure_path(peer).unlink(missing_ok=True)
    _say(f"{peer}: ready in {elapsed:.0f}s ({versions})")
    return EnvStatus(
        peer=peer, ok=True, python=str(python), created=True, install_s=elapsed, versions=versions
    )


def ensure_env(peer: str, *, retry_failed: bool = False, force: bool = False) -> EnvStatus:
    """Create ``peer``'s venv unless a matching one exists; never raises for install errors.

    A failure recorded for the same requirements is returned as is, without reinstalling,
    unless ``retry_failed`` or ``force`` is given or ``HEADRACE_BENCH_RETRY_FAILED=1``.
    """
    spec = PEERS.get(peer)
    if spec is None:
        return EnvStatus(peer=peer, ok=False, error=f"unknown peer {peer!r}")
    retry_failed = retry_failed or os.environ.get("HEADRACE_BENCH_RETRY_FAILED") == "1"
    lock_path = cache_dir() / "venvs" / f"{peer}.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one builder per peer, even across processes
        if not force and (status := _stamped_status(peer, spec)) is not None:
            return status
        failure = _read_json(_failure_path(peer))
        if not (force or retry_failed) and failure and failure.get("digest") == spec.digest():
            error = "install failed earlier (HEADRACE_BENCH_RETRY_FAILED=1 retries): "
            return EnvStatus(peer=peer, ok=False, error=error + str(failure.get("error")))
        return _build(peer, spec)


def ensure_envs(
    peers: list[str] | None = None, *, retry_failed: bool = False, force: bool = False
) -> dict[str, EnvStatus]:
    """Ensure each named peer's venv (all peers by default), one after the other."""
    names = list(PEERS) if peers is None else peers
    return {p: ensure_env(p, retry_failed=retry_failed, force=force) for p in names}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--peers", default=",".join(PEERS), help="comma-separated peer names")
    parser.add_argument("--retry-failed", action="store_true", help="retry recorded failures")
    parser.add_argument("--force", action="store_true", help="rebuild even if stamped")
    args = parser.parse_args(argv)
    peers = [p.strip() for p in args.peers.split(",") if p.strip()]
    statuses = ensure_envs(peers, retry_failed=args.retry_failed, force=args.force)
    print(json.dumps({p: asdict(s) for p, s in statuses.items()}, indent=2))
    return 0 if all(s.ok for s in statuses.values()) else 1


if __name__ == "__main__":
    sys.exit(main())

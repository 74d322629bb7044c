"""A private PostgreSQL cluster a test may stop and start under running processes.

The shared server on 5432 serves every engineer's tests, so outages are staged on a
cluster of our own: ``initdb`` in a temporary folder, ``pg_ctl`` on a free port, trust
authentication, run as the ``postgres`` user (PostgreSQL refuses to run as root).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

BIN = Path(os.environ.get("HEADRACE_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
USER = "postgres"


def missing() -> str | None:
    """Why a private cluster cannot run here, or None."""
    for tool in ("initdb", "pg_ctl"):
        if not (BIN / tool).exists():
            return f"no {BIN / tool} (set HEADRACE_TEST_PG_BIN to PostgreSQL's bin folder)"
    try:
        pwd.getpwnam(USER)
    except KeyError:
        return f"no {USER!r} user to run a private PostgreSQL cluster as"
    if os.geteuid() != 0 and pwd.getpwuid(os.geteuid()).pw_name != USER:
        return f"running a cluster as {USER!r} needs root or that user"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "no runuser to start PostgreSQL as the postgres user"
    return None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class PrivateCluster:
    """One cluster: :meth:`start`, :meth:`stop` (the outage), :meth:`database`."""

    def __init__(self) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="hr-pg-"))
        entry = pwd.getpwnam(USER)
        os.chown(self.home, entry.pw_uid, entry.pw_gid)
        self.data = self.home / "data"
        self.log = self.home / "server.log"
        self.port = free_port()
        self._as_postgres(
            str(BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", USER,
            "-E", "UTF8", "--no-sync", "--no-instructions",
        )  # fmt: skip

    def _as_postgres(self, *argv: str) -> None:
        command = list(argv) if os.geteuid() != 0 else ["runuser", "-u", USER, "--", *argv]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            tail = self.log.read_text()[-2000:] if self.log.exists() else ""
            raise RuntimeError(
                f"{' '.join(argv[:2])} failed ({done.returncode}): {done.stderr}{tail}"
            )

    @property
    def admin(self) -> str:
        return f"host=127.0.0.1 port={self.port} user={USER} dbname=postgres"

    def url(self, name: str) -> str:
        return f"postgresql+psycopg://{USER}@127.0.0.1:{self.port}/{name}"

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.home} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._as_postgres(
            str(BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log),
            "-o", options, "-w", "-t", "60", "start",
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: ``fast`` ends every session (clients see their connection
        closed), ``immediate`` kills the server processes outright."""
        self._as_postgres(
            str(BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop"
        )

    @property
    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def database(self) -> str:
        """A new empty database; its URL."""
        import psycopg

        name = f"hr_outage_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.admin, autocommit=True, connect_timeout=5) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def remove(self) -> None:
        if self.running:
            with contextlib.suppress(RuntimeError):
                self.stop("immediate")
        shutil.rmtree(self.home, ignore_errors=True)


def wait_for(condition: object, *, timeout: float, every: float = 0.05, what: str = "") -> None:
    """Poll ``condition()`` until it is true; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(every)
    raise AssertionError(f"not within {timeout:g} s: {what or condition}")

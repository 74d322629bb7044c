"""Where the audit chain's keys come from, never the metadata store:

1. ``HEADRACE_AUDIT_KEY``: ``id:secret`` pairs separated by commas, oldest first (the
   last seals new entries); for a server whose secrets are injected by its platform.
2. A key file, ``[audit] key_file`` in ``headrace.toml`` or ``HEADRACE_AUDIT_KEY_FILE``:
   one ``id secret`` pair a line, oldest first, ``#`` comments; it must be readable by
   its owner only (mode 0600), as ssh insists for private keys.
3. Otherwise ``.headrace/audit.key``, made (mode 0600) when the first entry is sealed.
   It sits beside the SQLite file, so whoever holds the workspace folder holds the key:
   it protects a store kept elsewhere (PostgreSQL), not a copied folder.
"""

from __future__ import annotations

import os
import secrets
import stat
import threading
from collections.abc import Callable
from pathlib import Path

from headrace.core.audit_chain import AuditKey, AuditKeyError, Keyring, make_key, new_secret
from headrace.workspace.settings import Settings

ENV_KEYS = "HEADRACE_AUDIT_KEY"
DEFAULT_FILE = "audit.key"


def parse_env_keys(value: str) -> Keyring:
    keys = []
    for index, pair in enumerate(p.strip() for p in value.split(",")):
        key_id, sep, secret = pair.partition(":")
        if not sep:
            raise AuditKeyError(
                f"{ENV_KEYS} item {index + 1} is not id:secret; give comma-separated "
                "id:secret pairs, oldest first (the last seals new entries)"
            )
        keys.append(make_key(key_id.strip(), secret.strip(), where=ENV_KEYS))
    return Keyring(tuple(keys))


def parse_key_file(text: str, where: str) -> Keyring:
    keys = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 2:
            raise AuditKeyError(
                f"{where} line {number}: expected 'id secret' (two words), got {len(parts)}"
            )
        keys.append(make_key(parts[0], parts[1], where=f"{where} line {number}"))
    if not keys:
        raise AuditKeyError(f"{where} holds no audit key; add a line 'id secret'")
    return Keyring(tuple(keys))


def key_file_of(settings: Settings) -> tuple[Path, bool]:
    """(the key file, whether a setting named it rather than the default)."""
    if settings.audit_key_file:
        path = Path(settings.audit_key_file).expanduser()
        return (path if path.is_absolute() else settings.root / path), True
    return settings.state_dir / DEFAULT_FILE, False


def _check_private(path: Path) -> None:
    if os.name != "posix":
        return
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise AuditKeyError(
            f"audit key file {path} is readable or writable by others (mode {mode:04o}); "
            f"run: chmod 600 {path}"
        )


def _write_new(path: Path, key_id: str, secret: str) -> bool:
    """Create ``path`` holding one key, atomically and only if absent (several server
    processes may race to make the default key): False when it existed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as out:
            out.write("# headrace audit keys, oldest first: the last seals new entries\n")
            out.write(f"{key_id} {secret}\n")
            out.flush()
            os.fsync(out.fileno())
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)


def new_key_id() -> str:
    return f"k-{secrets.token_hex(4)}"


class KeySource:
    """The keyring of one workspace, read afresh when its file or variable changes
    (a key rotated by another process is picked up at the next append)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._seen: tuple[object, Keyring | None] | None = None

    def __call__(self, sealing: bool) -> Keyring | None:
        """The keyring; with ``sealing``, the default key file is made when missing."""
        env = os.environ.get(ENV_KEYS)
        if env:
            return self._cached(("env", env), lambda: parse_env_keys(env))
        path, named = key_file_of(self.settings)
        try:
            info = path.stat()
        except FileNotFoundError:
            if named:
                raise AuditKeyError(
                    f"audit key file {path} (the audit.key_file setting) does not exist; "
                    "create it with headrace audit rotate-key, or fix the setting"
                ) from None
            if not sealing:
                return None
            _write_new(path, new_key_id(), new_secret())
            info = path.stat()
        return self._cached(
            (str(path), info.st_mtime_ns, info.st_size, info.st_ino),
            lambda: self._read(path),
        )

    def _cached(self, stamp: object, load: Callable[[], Keyring]) -> Keyring:
        with self._lock:
            if self._seen is not None and self._seen[0] == stamp and self._seen[1] is not None:
                return self._seen[1]
        ring = load()
        with self._lock:
            self._seen = (stamp, ring)
        return ring

    @staticmethod
    def _read(path: Path) -> Keyring:
        _check_private(path)
        return parse_key_file(path.read_text(), str(path))

    def rotate(self) -> tuple[str | None, AuditKey, Path]:
        """Add a new key at the end of the key file (made if missing): (the id of the
        key it replaces, the new key, the file). Refused when the keys come from
        HEADRACE_AUDIT_KEY, which only its owner can change."""
        if os.environ.get(ENV_KEYS):
            raise AuditKeyError(
                f"the audit keys come from {ENV_KEYS}: add a new id:secret pair at its end "
                "(keep the old ones to verify older entries) and restart the server"
            )
        path, _ = key_file_of(self.settings)
        key_id, secret = new_key_id(), new_secret()
        if _write_new(path, key_id, secret):
            return None, make_key(key_id, secret, where=str(path)), path
        old = self._read(path)
        while old.get(key_id) is not None:  # pragma: no cover - 32 random bits collide
            key_id = new_key_id()
        with path.open("a") as out:
            out.write(f"{key_id} {secret}\n")
            out.flush()
            os.fsync(out.fileno())
        return old.current.id, make_key(key_id, secret, where=str(path)), path

"""The ``[lineage]`` settings: where OpenLineage events go.

``headrace.toml``::

    [lineage]
    transport = "http"                   # none (default) | file | http
    url = "http://localhost:5000"         # http: events are POSTed to <url>/api/v1/lineage
    api_key = "..."                      # http: sent as "Authorization: Bearer <api_key>"
    timeout = 5                          # http: seconds per request
    path = ".headrace/lineage/events.jsonl"  # file: JSON lines, relative to the workspace

Each key is overridden by its environment variable: ``HEADRACE_LINEAGE_TRANSPORT``,
``HEADRACE_LINEAGE_PATH``, ``HEADRACE_LINEAGE_URL``, ``HEADRACE_LINEAGE_API_KEY``,
``HEADRACE_LINEAGE_TIMEOUT``. Unknown keys and bad values are errors naming the key.
"""

from __future__ import annotations

import functools
import importlib.util
import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from headrace.errors import MissingExtraError, SettingsError
from headrace.lineage.openlineage import OpenLineageEmitter
from headrace.lineage.transports import FileTransport, HttpTransport, LineageTransport
from headrace.workspace.settings import CONFIG_FILE, STATE_DIR, Settings

SECTION = "lineage"
TRANSPORTS = ("none", "file", "http")
DEFAULT_PATH = f"{STATE_DIR}/lineage/events.jsonl"
DEFAULT_TIMEOUT = 5.0

#: key in [lineage] -> environment variable
_KEYS: dict[str, str] = {
    "transport": "HEADRACE_LINEAGE_TRANSPORT",
    "path": "HEADRACE_LINEAGE_PATH",
    "url": "HEADRACE_LINEAGE_URL",
    "api_key": "HEADRACE_LINEAGE_API_KEY",
    "timeout": "HEADRACE_LINEAGE_TIMEOUT",
}


@dataclass(frozen=True, kw_only=True)
class LineageSettings:
    """The ``[lineage]`` section, validated; ``path`` is absolute."""

    transport: str = "none"
    path: Path
    url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    timeout: float = DEFAULT_TIMEOUT


def load_lineage_settings(
    root: Path | str, environ: Mapping[str, str] | None = None
) -> LineageSettings:
    """Read ``[lineage]`` from ``<root>/headrace.toml``; environment variables override it."""
    root = Path(root)
    environ = os.environ if environ is None else environ
    values, origin = _from_file(root / CONFIG_FILE)
    for key, env in _KEYS.items():
        if env in environ:
            values[key], origin[key] = environ[env], env
    for key, value in values.items():
        if key != "timeout" and not isinstance(value, str):
            raise SettingsError(
                f"{origin[key]}: expected a string, got {value!r}", field=f"{SECTION}.{key}"
            )

    transport = values.get("transport", "none")
    if transport not in TRANSPORTS:
        raise SettingsError(
            f"{origin['transport']}: lineage transport {transport!r} is unknown; expected one "
            f"of {', '.join(TRANSPORTS)}",
            field=f"{SECTION}.transport",
        )
    url = values.get("url") or None
    if url is not None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise SettingsError(
                f"{origin['url']}: lineage url {url!r} is not an http:// or https:// URL",
                field=f"{SECTION}.url",
            )
    elif transport == "http":
        raise SettingsError(
            f"{origin['transport']}: lineage transport 'http' needs a url: set {SECTION}.url "
            f"in {CONFIG_FILE} or {_KEYS['url']}",
            field=f"{SECTION}.url",
        )
    path = Path(values.get("path") or DEFAULT_PATH).expanduser()
    return LineageSettings(
        transport=transport,
        path=path if path.is_absolute() else root / path,
        url=url,
        api_key=values.get("api_key") or None,
        timeout=_timeout(values, origin),
    )


def emitter_from_settings(settings: Settings) -> OpenLineageEmitter | None:
    """The emitter the workspace's ``[lineage]`` settings ask for; None when it is off.

    Raises:
        SettingsError: a ``[lineage]`` key or ``HEADRACE_LINEAGE_*`` variable is invalid.
        MissingExtraError: the http transport needs openlineage-python.
    """
    config = load_lineage_settings(settings.root)
    transport: LineageTransport
    if config.transport == "none":
        return None
    if config.transport == "file":
        transport = FileTransport(config.path)
    else:
        if importlib.util.find_spec("openlineage.client") is None:
            raise MissingExtraError("openlineage-python", "openlineage")
        assert config.url is not None  # checked by load_lineage_settings
        transport = HttpTransport(config.url, api_key=config.api_key, timeout=config.timeout)
    # events that could not be delivered are kept, never dropped silently
    keep = FileTransport(settings.state_dir / "unlogged" / "lineage-undelivered.jsonl")
    return OpenLineageEmitter(transport, keep=keep)


def _from_file(path: Path) -> tuple[dict[str, Any], dict[str, str]]:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return {}, {}
    values, origin = _parsed(str(path), stat.st_mtime_ns, stat.st_size)
    return dict(values), dict(origin)


@functools.lru_cache(maxsize=16)
def _parsed(name: str, _mtime_ns: int, _size: int) -> tuple[dict[str, Any], dict[str, str]]:
    """The ``[lineage]`` table of a file, parsed once per version of it (a worker starts
    hundreds of runs a second, each reading these settings)."""
    path = Path(name)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        return {}, {}
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path}: invalid TOML: {exc}") from exc
    table = data.get(SECTION, {})
    if not isinstance(table, dict):
        raise SettingsError(
            f"{path.name}: {SECTION} must be a table ([{SECTION}]), got {table!r}", field=SECTION
        )
    for key in table:
        if key not in _KEYS:
            raise SettingsError(
                f"{path.name}: unknown setting {SECTION}.{key}; [{SECTION}] takes "
                f"{', '.join(sorted(_KEYS))}",
                field=f"{SECTION}.{key}",
            )
    return dict(table), {key: f"{path.name} {SECTION}.{key}" for key in table}


def _timeout(values: Mapping[str, Any], origin: Mapping[str, str]) -> float:
    if "timeout" not in values:
        return DEFAULT_TIMEOUT
    raw = values["timeout"]
    try:
        seconds = float(raw) if not isinstance(raw, bool) else math.nan
    except (TypeError, ValueError):
        seconds = math.nan
    if not seconds > 0 or math.isinf(seconds):
        raise SettingsError(
            f"{origin['timeout']}: lineage timeout must be a number of seconds > 0, got {raw!r}",
            field=f"{SECTION}.timeout",
        )
    return seconds

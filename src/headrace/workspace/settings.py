"""Settings from ``headrace.toml``, overridden by ``HEADRACE_*`` environment variables."""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from headrace.errors import SettingsError, WorkspaceNotFoundError

CONFIG_FILE = "headrace.toml"
STATE_DIR = ".headrace"
EXECUTORS = ("in_process", "threads", "processes")
#: Sections another area reads and validates itself (``headrace.lineage``: ``[lineage]``).
DELEGATED_SECTIONS = ("lineage",)

#: (toml section, key) -> (settings field, environment variable)
_FIELDS: dict[tuple[str, str], tuple[str, str]] = {
    ("project", "name"): ("project_name", "HEADRACE_PROJECT_NAME"),
    ("project", "module"): ("project_module", "HEADRACE_PROJECT_MODULE"),
    ("project", "path"): ("project_path", "HEADRACE_PROJECT_PATH"),
    ("store", "metadata_url"): ("metadata_url", "HEADRACE_METADATA_URL"),
    ("store", "objects_url"): ("objects_url", "HEADRACE_OBJECTS_URL"),
    ("run", "executor"): ("executor", "HEADRACE_EXECUTOR"),
    ("run", "max_concurrency"): ("max_concurrency", "HEADRACE_MAX_CONCURRENCY"),
    ("audit", "key_file"): ("audit_key_file", "HEADRACE_AUDIT_KEY_FILE"),
    ("audit", "checkpoint_every"): ("audit_checkpoint_every", "HEADRACE_AUDIT_CHECKPOINT_EVERY"),
    ("audit", "checkpoint_log"): ("audit_checkpoint_log", "HEADRACE_AUDIT_CHECKPOINT_LOG"),
    ("objects", "durable"): ("objects_durable", "HEADRACE_OBJECTS_DURABLE"),
    ("objects", "key_file"): ("objects_key_file", "HEADRACE_ENCRYPTION_KEY_FILE"),
    ("objects", "storage_options"): (
        "objects_storage_options",
        "HEADRACE_OBJECTS_STORAGE_OPTIONS",
    ),
    ("server", "tls_cert"): ("tls_cert", "HEADRACE_TLS_CERT"),
    ("server", "tls_key"): ("tls_key", "HEADRACE_TLS_KEY"),
}
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Where a workspace keeps its metadata, its blobs and its pipeline code."""

    root: Path
    project_name: str
    project_module: str | None = None
    project_path: str = "."
    metadata_url: str = f"sqlite:///{STATE_DIR}/headrace.db"
    objects_url: str = f"{STATE_DIR}/objects"
    executor: str = "in_process"
    max_concurrency: int = 4
    #: The audit keys' file (None: HEADRACE_AUDIT_KEY, else .headrace/audit.key).
    audit_key_file: str | None = None
    #: Seconds between the daemon's audit checkpoints (0: none taken automatically).
    audit_checkpoint_every: float = 3600.0
    #: A file every checkpoint's line is appended to: a witness outside the workspace.
    audit_checkpoint_log: str | None = None
    #: Sync every blob to disk before its version becomes visible (local stores).
    objects_durable: bool = True
    #: A file holding the user's encryption key (else ``HEADRACE_ENCRYPTION_KEY``).
    objects_key_file: str | None = None
    #: Passed to the fsspec file system as they are (e.g. server-side encryption).
    objects_storage_options: Mapping[str, Any] = field(default_factory=dict, hash=False)
    #: PEM certificate chain and private key ``headrace server`` / ``serve`` listen with.
    tls_cert: str | None = None
    tls_key: str | None = None

    @property
    def state_dir(self) -> Path:
        return self.root / STATE_DIR

    @property
    def resolved_metadata_url(self) -> str:
        """The metadata URL with a relative SQLite path made absolute to the root."""
        url = self.metadata_url
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith(prefix + "/"):
            rest = url[len(prefix) :]
            if rest and rest != ":memory:":
                return prefix + str((self.root / rest).resolve())
        return url

    @property
    def resolved_objects_url(self) -> str:
        url = self.objects_url
        if "://" in url and not url.startswith("file://"):
            return url
        path = Path(url.removeprefix("file://"))
        return str(path if path.is_absolute() else (self.root / path).resolve())

    @property
    def project_dir(self) -> Path:
        return (self.root / self.project_path).resolve()


def _validate(values: dict[str, Any], origin: Mapping[str, str]) -> dict[str, Any]:
    executor = values.get("executor")
    if executor is not None and executor not in EXECUTORS:
        raise SettingsError(
            f"{origin['executor']}: executor {executor!r} is unknown; expected one of "
            f"{', '.join(EXECUTORS)}",
            field="executor",
        )
    if "max_concurrency" in values:
        raw = values["max_concurrency"]
        try:
            number = int(raw)
        except (TypeError, ValueError):
            number = 0
        if isinstance(raw, bool) or number < 1:
            raise SettingsError(
                f"{origin['max_concurrency']}: max_concurrency must be an integer >= 1, "
                f"got {raw!r}",
                field="max_concurrency",
            )
        values["max_concurrency"] = number
    if "objects_durable" in values:
        values["objects_durable"] = _boolean(values["objects_durable"], origin["objects_durable"])
    if "objects_storage_options" in values:
        values["objects_storage_options"] = _options(
            values["objects_storage_options"], origin["objects_storage_options"]
        )
    if "audit_checkpoint_every" in values:
        values["audit_checkpoint_every"] = _every(
            values["audit_checkpoint_every"], origin["audit_checkpoint_every"]
        )
    typed = (
        "max_concurrency",
        "objects_durable",
        "objects_storage_options",
        "audit_checkpoint_every",
    )
    for key, value in values.items():
        if key not in typed and not isinstance(value, str):
            raise SettingsError(f"{origin[key]}: expected a string, got {value!r}", field=key)
    return values


def _boolean(raw: Any, origin: str) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().lower() in _TRUE + _FALSE:
        return raw.strip().lower() in _TRUE
    raise SettingsError(
        f"{origin}: durable must be true or false (or 1/0), got {raw!r}", field="objects.durable"
    )


def _every(raw: Any, origin: str) -> float:
    """A duration (``"1h"``, ``"30m"``, seconds as a number), or 0 / ``"off"``: never."""
    from headrace.core.errors import DefinitionError
    from headrace.core.monitors import seconds

    if isinstance(raw, str) and raw.strip().lower() in ("0", "off", "never"):
        return 0.0
    if not isinstance(raw, bool) and isinstance(raw, int | float) and raw == 0:
        return 0.0
    try:
        return seconds(raw.strip() if isinstance(raw, str) else raw, origin)
    except DefinitionError as exc:
        raise SettingsError(
            f"{origin}: checkpoint_every must be a duration such as '1h' or '30m', or 0 / "
            f"'off' to take no checkpoints automatically, got {raw!r}",
            field="audit.checkpoint_every",
        ) from exc


def _options(raw: Any, origin: str) -> dict[str, Any]:
    if isinstance(raw, str):  # from the environment: a JSON object
        try:
            raw = json.loads(raw)
        except ValueError as exc:
            raise SettingsError(
                f"{origin}: storage_options must be a JSON object, got {raw!r} ({exc})",
                field="objects.storage_options",
            ) from exc
    if not isinstance(raw, dict):
        raise SettingsError(
            f"{origin}: storage_options must be a table of fsspec options, got {raw!r}",
            field="objects.storage_options",
        )
    return raw


def find_root(start: Path | str | None = None) -> Path:
    """The nearest folder at or above ``start`` holding ``headrace.toml`` (like git).

    ``HEADRACE_WORKSPACE`` names the workspace explicitly.
    """
    explicit = os.environ.get("HEADRACE_WORKSPACE")
    if explicit and start is None:
        root = Path(explicit).resolve()
        if not (root / CONFIG_FILE).is_file():
            raise WorkspaceNotFoundError(f"HEADRACE_WORKSPACE={explicit} has no {CONFIG_FILE}")
        return root
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / CONFIG_FILE).is_file():
            return folder
    raise WorkspaceNotFoundError(
        f"no {CONFIG_FILE} in {here} or any parent folder; run 'headrace init' to create one"
    )


def load_settings(start: Path | str | None = None, **overrides: Any) -> Settings:
    """Read the workspace's settings; environment variables override the file."""
    root = find_root(start)
    path = root / CONFIG_FILE
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path}: invalid TOML: {exc}") from exc
    values: dict[str, Any] = {}
    origin: dict[str, str] = {}
    known_sections = {section for section, _ in _FIELDS} | set(DELEGATED_SECTIONS)
    for section, table in data.items():
        if section in DELEGATED_SECTIONS and isinstance(table, dict):
            continue  # validated by the area that owns it
        if section not in known_sections or not isinstance(table, dict):
            raise SettingsError(
                f"{path}: unknown section [{section}]; expected one of "
                f"{', '.join(sorted(known_sections))}",
                field=section,
            )
        for key, value in table.items():
            if (section, key) not in _FIELDS:
                allowed = sorted(k for s, k in _FIELDS if s == section)
                raise SettingsError(
                    f"{path}: unknown setting {section}.{key}; [{section}] takes "
                    f"{', '.join(allowed)}",
                    field=f"{section}.{key}",
                )
            name = _FIELDS[(section, key)][0]
            values[name] = value
            origin[name] = f"{path.name} {section}.{key}"
    for name, env in _FIELDS.values():
        if env in os.environ:
            values[name] = os.environ[env]
            origin[name] = env
    values = _validate(values, origin)
    values.setdefault("project_name", root.name)
    settings = Settings(root=root, **values)
    return replace(settings, **overrides) if overrides else settings


TEMPLATE = """\
# headrace workspace settings. Every value can be overridden by an environment variable
# (HEADRACE_PROJECT_MODULE, HEADRACE_METADATA_URL, HEADRACE_OBJECTS_URL, HEADRACE_EXECUTOR,
# HEADRACE_MAX_CONCURRENCY, ...).

[project]
name = "{name}"
# The module or package holding the @asset definitions, importable from `path`.
module = "{module}"
path = "{path}"

[store]
# SQLite by default; a team store: "postgresql+psycopg://user@host:5432/headrace"
metadata_url = "sqlite:///.headrace/headrace.db"
# A local folder by default; any fsspec URL (s3://bucket/prefix, memory://...) works.
objects_url = ".headrace/objects"

[run]
executor = "in_process"   # in_process | threads | processes
max_concurrency = 4

[objects]
# Sync each blob to disk before its version becomes visible; false is faster but a
# power cut can lose or truncate recent blobs.
durable = true
"""


def init_workspace(
    folder: Path | str = ".", *, module: str = "pipeline", path: str = "."
) -> tuple[Path, bool]:
    """Create ``headrace.toml`` and ``.headrace/`` in ``folder``.

    ``path`` is the folder the project module is imported from, relative to the
    workspace. Returns the root and whether a new ``headrace.toml`` was written (an
    existing one is kept untouched).
    """
    if not module.replace(".", "_").isidentifier():
        raise SettingsError(f"--module {module!r} is not an importable module name", field="module")
    root = Path(folder).resolve()
    root.mkdir(parents=True, exist_ok=True)
    (root / STATE_DIR).mkdir(exist_ok=True)
    (root / STATE_DIR / ".gitignore").write_text("*\n")
    config = root / CONFIG_FILE
    if config.exists():
        return root, False
    name = "".join(c if c.isalnum() or c in "-_" else "-" for c in root.name) or "project"
    config.write_text(TEMPLATE.format(name=name, module=module, path=path))
    return root, True

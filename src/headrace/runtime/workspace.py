"""``Workspace``: the handle every service works through."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

from headrace.core.assets import AssetSpec
from headrace.core.graph import AssetGraph
from headrace.objects.opening import AnyBlobStore, ObjectStoreConfig, open_objects
from headrace.store.engine import MetadataStore, open_store
from headrace.workspace.project import load_graph
from headrace.workspace.settings import Settings, load_settings


class Workspace:
    """Settings plus lazily opened stores and definitions.

    Args:
        settings: the workspace settings.
        definitions: assets given in Python; when None the project module named by the
            settings is imported.
    """

    def __init__(
        self, settings: Settings, *, definitions: Sequence[AssetSpec] | None = None
    ) -> None:
        self.settings = settings
        self._definitions = None if definitions is None else list(definitions)

    @cached_property
    def store(self) -> MetadataStore:
        from headrace.workspace.audit_keys import KeySource

        store = open_store(self.settings.resolved_metadata_url)
        # The audit chain's keys live outside the store: the environment or a file.
        store.governance.use_keys(KeySource(self.settings))
        return store

    @property
    def objects_config(self) -> ObjectStoreConfig:
        """How this workspace's object store opens (no secrets; for worker processes)."""
        s = self.settings
        key_file = s.objects_key_file
        if key_file and not Path(key_file).expanduser().is_absolute():
            key_file = str(s.root / key_file)
        return ObjectStoreConfig(
            url=s.resolved_objects_url,
            durable=s.objects_durable,
            storage_options=dict(s.objects_storage_options),
            key_file=key_file,
            workspace=str(s.root),
        )

    @cached_property
    def blobs(self) -> AnyBlobStore:
        """The object store; decrypting, when it is encrypted, with the user's key."""
        return open_objects(self.objects_config)

    @cached_property
    def graph(self) -> AssetGraph:
        if self._definitions is not None:
            return AssetGraph.build(self._definitions)
        return load_graph(self.settings)

    @property
    def project_modules(self) -> tuple[str, ...]:
        """Module prefixes that count as the project's code (for code versions)."""
        if self._definitions is not None:
            return tuple(sorted({s.module.split(".")[0] for s in self._definitions if s.module}))
        module = self.settings.project_module
        return (module.split(".")[0],) if module else ()

    @property
    def definition_modules(self) -> tuple[str, ...]:
        """Modules a worker process imports to find the same definitions."""
        if self._definitions is not None:
            return tuple(sorted({s.module for s in self._definitions if s.module}))
        return (self.settings.project_module,) if self.settings.project_module else ()

    def close(self) -> None:
        """Release the metadata store's connections."""
        if "store" in self.__dict__:
            self.store.close()
        if "blobs" in self.__dict__:
            self.blobs.close()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def open_workspace(
    path: Path | str | None = None,
    *,
    definitions: Sequence[AssetSpec] | None = None,
    **overrides: Any,
) -> Workspace:
    """Open the workspace at or above ``path`` (default: the current folder)."""
    return Workspace(load_settings(path, **overrides), definitions=definitions)

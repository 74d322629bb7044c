"""Errors of the metadata store."""

from __future__ import annotations

from headrace.errors import HeadraceError


class StoreError(HeadraceError):
    """The metadata store cannot be opened or used."""


class SchemaTooNewError(StoreError):
    """The database was migrated by a newer headrace than this one."""


class RunNotFoundError(StoreError):
    def __init__(self, run_id: str) -> None:
        super().__init__(f"no run with id {run_id!r}")
        self.run_id = run_id


class VersionNotFoundError(StoreError):
    def __init__(self, message: str, *, asset: str | None = None) -> None:
        super().__init__(message)
        self.asset = asset

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


class BranchNotFoundError(StoreError):
    def __init__(self, name: str) -> None:
        super().__init__(f"no branch named {name!r}; create it with: headrace branch create {name}")
        self.branch = name


class BranchExistsError(StoreError):
    def __init__(self, name: str) -> None:
        super().__init__(f"branch {name!r} already exists")
        self.branch = name


class BranchConflictError(StoreError):
    """Two writers moved the same heads: the later one is refused, nothing half-done.

    ``assets`` names the ``asset`` or ``asset[partition]`` keys in conflict.
    """

    retryable = True

    def __init__(self, message: str, *, branch: str, assets: list[str]) -> None:
        super().__init__(message)
        self.branch = branch
        self.assets = assets


class MergeRefusedError(StoreError):
    """A merge whose versions failed an error-severity check (or another gate)."""

    def __init__(self, message: str, *, branch: str, assets: list[str]) -> None:
        super().__init__(message)
        self.branch = branch
        self.assets = assets


class StoreUnreachableError(StoreError):
    """The metadata store cannot be reached right now (its server is down or
    restarting, the network dropped) or was busy: nothing was written, and trying
    again later can help."""

    retryable = True

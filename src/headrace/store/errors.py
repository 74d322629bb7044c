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


class StoreUnavailableError(StoreError):
    """The metadata store cannot be reached right now (its server is down or
    restarting, the network dropped): trying again later can help."""

    retryable = True


#: SQLSTATE classes and codes that mean the server went away, not that the statement
#: was wrong: 08 connection exception, 57P01 admin shutdown, 57P02 crash shutdown,
#: 57P03 cannot connect now (starting up or shutting down).
_UNREACHABLE_STATES = ("08", "57P01", "57P02", "57P03")
#: SQLite's words for a database file that cannot be reached (its disk or mount gone).
_SQLITE_UNREACHABLE = ("unable to open database file", "disk i/o error")


def is_store_unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) says the metadata store could not be
    reached, as opposed to a statement it refused: a lost or refused connection, a
    server shutting down or starting up. Those are worth retrying once it is back;
    a rejected row (a constraint, a type, a lock timeout) is not.

    Duck-typed on SQLAlchemy's and the drivers' exceptions, so that nothing heavy is
    imported to ask."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, StoreUnavailableError | ConnectionError):
            return True
        if getattr(current, "connection_invalidated", False):
            return True  # SQLAlchemy saw the connection die under the statement
        kind = type(current)
        names = {c.__name__ for c in kind.__mro__}
        module = kind.__module__
        if module.startswith("sqlalchemy") and "DisconnectionError" in names:
            return True
        if module.startswith("psycopg"):
            state = getattr(current, "sqlstate", None)
            if state is None and names & {"OperationalError", "InterfaceError"}:
                return True  # refused, reset or closed before the server said anything
            if state is not None and state.startswith(_UNREACHABLE_STATES):
                return True
        if module == "sqlite3" and "OperationalError" in names:
            text = str(current).lower()
            if any(words in text for words in _SQLITE_UNREACHABLE):
                return True
        current = current.__cause__ or current.__context__
    return False

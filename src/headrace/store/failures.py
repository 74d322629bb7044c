"""Why a write failed: the store could not be reached, or it refused the rows.

Buffered writers treat the two differently (:func:`is_transient`). A store that cannot
be reached or is busy (a refused or dropped connection, a server shutting down, a
locked SQLite file, a deadlock) says nothing about the rows: they are kept and written
again later. A store that refuses the rows (a value too long, a bad type, a NUL byte, a
broken constraint) refuses them every time: those rows are isolated and dead-lettered so
that the others get written. Long-running processes ask the narrower
:func:`is_unreachable` (the store is gone, not busy) to decide when to back off.
"""

from __future__ import annotations

#: SQLSTATE classes and codes that mean the server went away, not that the statement
#: was wrong: 08 connection exception, 57P01 admin shutdown, 57P02 crash shutdown,
#: 57P03 cannot connect now (starting up or shutting down).
_GONE_STATES = ("08", "57P01", "57P02", "57P03")
#: SQLite's words for a database file that cannot be reached (its disk or mount gone).
_SQLITE_GONE = ("unable to open database file", "disk i/o error")
#: SQLSTATE classes and codes of errors about the server's state, not the rows: the
#: above, insufficient resources (53), operator intervention such as a cancelled
#: statement (57), system errors (58), serialization failures and deadlocks (40001,
#: 40P01), locks not available (55P03, 55006).
_BUSY_CLASSES = ("53", "57", "58")
_BUSY_CODES = ("40001", "40P01", "55P03", "55006")
#: SQLite's words for a database that is busy or full rather than gone.
_SQLITE_BUSY = ("locked", "busy", "database or disk is full")


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and what caused it, each once (headrace wraps store errors)."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not other for other in seen):
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _names(exc: BaseException) -> set[str]:
    return {kind.__name__ for kind in type(exc).__mro__}


def is_unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) says the metadata store could not be
    reached, as opposed to a statement it refused: a lost or refused connection, a
    server shutting down or starting up, an SQLite file that cannot be opened. Processes
    back off and carry on once it is back; the team server answers 503.

    Duck-typed on SQLAlchemy's and the drivers' exceptions, so that nothing heavy is
    imported to ask."""
    from headrace.store.errors import StoreUnreachableError

    for current in _chain(exc):
        if isinstance(current, StoreUnreachableError | ConnectionError):
            return True
        if getattr(current, "connection_invalidated", False):
            return True  # SQLAlchemy saw the connection die under the statement
        names, module = _names(current), type(current).__module__
        if module.startswith("sqlalchemy") and "DisconnectionError" in names:
            return True
        if module.startswith("psycopg"):
            state = getattr(current, "sqlstate", None)
            if state is None and names & {"OperationalError", "InterfaceError"}:
                return True  # refused, reset or closed before the server said anything
            if state is not None and state.startswith(_GONE_STATES):
                return True
        sqlite = module == "sqlite3" and "OperationalError" in names
        if sqlite and any(words in str(current).lower() for words in _SQLITE_GONE):
            return True
    return False


def is_transient(exc: BaseException) -> bool:
    """True when ``exc`` says nothing about the rows written: the store could not be
    reached (:func:`is_unreachable`) or was busy (a lock, a deadlock, a cancelled
    statement, a full disk): keep the rows and write them again later. False when the
    database refused what was written: isolate those rows."""
    if is_unreachable(exc):
        return True
    for current in _chain(exc):
        names, module = _names(current), type(current).__module__
        if module.startswith("sqlalchemy") and names & {"TimeoutError"}:
            return True  # no pooled connection came free in time
        state = getattr(current, "sqlstate", None)
        if not module.startswith("psycopg") or not isinstance(state, str):
            state = ""
        if state and (state[:2] in _BUSY_CLASSES or state in _BUSY_CODES):
            return True
        sqlite = module == "sqlite3" and "OperationalError" in names
        if sqlite and any(words in str(current).lower() for words in _SQLITE_BUSY):
            return True
        if isinstance(current, OSError):
            return True
    return False


def refusal(exc: BaseException) -> str:
    """A one-line reason for a refused write: the driver's error type and first line."""
    from sqlalchemy import exc as sa

    original = exc.orig if isinstance(exc, sa.DBAPIError) and exc.orig is not None else exc
    lines = str(original).strip().splitlines()
    first = lines[0] if lines else ""
    text = f"{type(original).__name__}: {first}" if first else type(original).__name__
    return text.replace("\x00", "\\x00")[:1000]


def storable(text: str, limit: int | None = None) -> str:
    """``text`` as every database keeps it: a NUL byte (PostgreSQL's text refuses it)
    written as ``\\x00``, and at most ``limit`` characters (a longer text ends in an
    ellipsis). For text a user or client supplied that must not make a write fail."""
    text = text.replace("\x00", "\\x00")
    if limit is not None and len(text) > limit:
        return text[: limit - 1] + "\u2026"
    return text

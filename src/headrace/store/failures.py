"""Why a write failed: the store could not be reached, or it refused the rows.

Buffered writers treat the two differently. A store that cannot be reached (a refused
or dropped connection, a server shutting down, a locked SQLite file, a deadlock) says
nothing about the rows: they are kept and written again later. A store that refuses
the rows (a value too long, a bad type, a NUL byte, a broken constraint) refuses them
every time: those rows are isolated and dead-lettered so that the others get written.
"""

from __future__ import annotations

#: SQLSTATE classes and codes of PostgreSQL errors that are about the connection or the
#: server's state, not the rows: connection exceptions (08), insufficient resources
#: (53), operator intervention such as a shutdown (57), system errors (58),
#: serialization failures and deadlocks (40001, 40P01), locks not available (55P03).
_TRANSIENT_CLASSES = ("08", "53", "57", "58")
_TRANSIENT_CODES = ("40001", "40P01", "55P03", "55006")


def is_unreachable(exc: BaseException) -> bool:
    """True when ``exc`` says the store could not be reached or was busy (retry the
    same rows later); False when it refused what was written (isolate those rows)."""
    import sqlite3

    from sqlalchemy import exc as sa

    if isinstance(exc, sa.DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, (sa.DisconnectionError, sa.TimeoutError)):
        return True
    original = exc.orig if isinstance(exc, sa.DBAPIError) and exc.orig is not None else exc
    state = getattr(original, "sqlstate", None)
    if isinstance(state, str) and state:
        return state[:2] in _TRANSIENT_CLASSES or state in _TRANSIENT_CODES
    if isinstance(original, (sqlite3.OperationalError, OSError)):
        return True  # locked, busy, disk I/O, cannot open: nothing about the rows
    if isinstance(exc, sa.OperationalError):
        return True  # a driver's OperationalError without a SQLSTATE: connecting failed
    return _is_psycopg_operational(original)


def _is_psycopg_operational(exc: BaseException) -> bool:
    import sys

    psycopg = sys.modules.get("psycopg")  # only loaded when a PostgreSQL store is open
    return psycopg is not None and isinstance(exc, psycopg.OperationalError)


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

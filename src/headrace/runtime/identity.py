"""Who is acting, for audit trails: the principal a team-server request runs for, else
the operating-system user."""

from __future__ import annotations

import contextlib
import getpass
from collections.abc import Iterator
from contextvars import ContextVar

_acting: ContextVar[str | None] = ContextVar("headrace_actor", default=None)


def actor() -> str:
    """Who is acting: the server's caller inside :func:`acting_as`, else the OS user."""
    name = _acting.get()
    if name is not None:
        return name
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


@contextlib.contextmanager
def acting_as(name: str) -> Iterator[None]:
    """Attribute what happens inside to ``name`` (a principal)."""
    token = _acting.set(name)
    try:
        yield
    finally:
        _acting.reset(token)

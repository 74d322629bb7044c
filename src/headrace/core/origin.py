"""Which module a declaration was made in (so a project sees its own declarations)."""

from __future__ import annotations

import sys


def caller_module(*within: str) -> str:
    """The name of the first module up the stack outside the modules ``within`` (and
    their submodules): the one that called the declaring function."""
    frame = sys._getframe(1)
    while frame is not None and frame.f_globals.get("__name__", "").startswith(within):
        frame = frame.f_back  # type: ignore[assignment]
    return str(frame.f_globals.get("__name__", "__main__")) if frame is not None else "__main__"

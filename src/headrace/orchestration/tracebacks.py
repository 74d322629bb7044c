"""The traceback a failed step records: whose frames are whose.

A step's traceback starts at the user's code: the frames of headrace's runner above it
(the plumbing that called the asset) are left out. Below, every frame is kept and
each run of frames says whose it is: the user's, a library's, or headrace's own. A step
that failed inside headrace (a full disk while storing the value, say) shows headrace's
frames, labelled as not the user's code, instead of pretending they are.
"""

from __future__ import annotations

import os
import sysconfig
import traceback

#: The folder of the headrace package: its frames are headrace's own.
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: Folders of the standard library and installed packages: their frames are libraries'.
_LIBRARY_DIRS = tuple(
    {
        os.path.realpath(path) + os.sep
        for key in ("stdlib", "platstdlib", "purelib", "platlib")
        if (path := sysconfig.get_paths().get(key))
    }
)

YOURS = "your code"
HEADRACE = "headrace (not your code)"
LIBRARY = "a library (not your code)"


def owner(filename: str) -> str:
    """Whose code a frame's file is: :data:`YOURS`, :data:`HEADRACE` or :data:`LIBRARY`."""
    path = os.path.realpath(filename) if not filename.startswith("<") else filename
    if path.startswith(_PACKAGE_DIR + os.sep):
        return HEADRACE
    if filename.startswith("<frozen ") or path.startswith(_LIBRARY_DIRS):
        return LIBRARY
    return YOURS


def user_traceback(exc: BaseException) -> str:
    """The traceback of a step's failure, from the user's code down, each run of frames
    labelled with whose code it is (``-- in your code --``)."""
    frames = traceback.extract_tb(exc.__traceback__)
    owners = [owner(frame.filename) for frame in frames]
    # headrace's runner called the user's code: the frames above the user's first are
    # plumbing. With no frame of the user's, the failure is headrace's (or a library's
    # it called, such as a full disk under pathlib): every frame is shown.
    start = next((i for i, who in enumerate(owners) if who == YOURS), 0)
    lines = ["Traceback (most recent call last):\n"]
    current = None
    for frame, who in zip(frames[start:], owners[start:], strict=True):
        if who != current:
            lines.append(f"  -- in {who} --\n")
            current = who
        lines.extend(traceback.format_list([frame]))
    lines.extend(traceback.format_exception_only(type(exc), exc))
    return "".join(lines)


__all__ = ["HEADRACE", "LIBRARY", "YOURS", "owner", "user_traceback"]

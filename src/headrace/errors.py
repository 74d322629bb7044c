"""The root of every error headrace raises.

Each area keeps its own ``errors.py``; every error derives from :class:`HeadraceError`
and says whether retrying the same operation can help (``retryable``).
"""

from __future__ import annotations


class HeadraceError(Exception):
    """Base class of all headrace errors.

    Attributes:
        retryable: True when the same call may succeed later (a transient condition such
            as a locked database or a timeout); False when the input must change first.
    """

    retryable: bool = False


class WorkspaceNotFoundError(HeadraceError):
    """No ``headrace.toml`` was found in the folder or any of its parents."""


class SettingsError(HeadraceError):
    """``headrace.toml`` or a ``HEADRACE_*`` variable holds an invalid value."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class MissingExtraError(HeadraceError):
    """An optional dependency is needed for this operation and is not installed."""

    def __init__(self, package: str, extra: str) -> None:
        super().__init__(
            f"{package} is not installed; install it with: pip install 'headrace[{extra}]'"
        )
        self.package = package
        self.extra = extra

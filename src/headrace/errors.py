"""The root of every error headrace raises.

Each area keeps its own ``errors.py``; every error derives from :class:`HeadraceError`
and says whether retrying the same operation can help (``retryable``).
"""

from __future__ import annotations

from typing import Any


class HeadraceError(Exception):
    """Base class of all headrace errors.

    Attributes:
        retryable: True when the same call may succeed later (a transient condition such
            as a locked database or a timeout); False when the input must change first.
    """

    retryable: bool = False

    def __reduce__(self) -> tuple[Any, ...]:
        # Errors cross process boundaries (worker processes); rebuild them without
        # calling subclass constructors, whose signatures differ.
        return (_rebuild, (type(self), self.args, dict(self.__dict__)))


def _rebuild(cls: type[HeadraceError], args: tuple[Any, ...], state: dict[str, Any]) -> Any:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


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

"""Errors of serializing and loading asset values."""

from __future__ import annotations

from headrace.errors import HeadraceError


class SerializationError(HeadraceError):
    """An asset's value cannot be stored in its declared (or inferred) format."""

    def __init__(self, message: str, *, asset: str | None = None) -> None:
        super().__init__(message)
        self.asset = asset


class InputTypeError(HeadraceError):
    """A stored value cannot be loaded as the type a parameter is annotated with."""

    def __init__(self, message: str, *, asset: str | None = None, parameter: str | None = None):
        super().__init__(message)
        self.asset = asset
        self.parameter = parameter

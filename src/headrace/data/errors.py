"""Errors of comparing the stored versions of a table asset."""

from __future__ import annotations

from pathlib import Path

from headrace.errors import HeadraceError


class DiffError(HeadraceError):
    """Two versions of a table cannot be compared as asked.

    Attributes:
        asset: the name of the table (or asset) being compared.
    """

    def __init__(self, message: str, *, asset: str | None = None) -> None:
        super().__init__(message)
        self.asset = asset


class DiffFileError(DiffError):
    """A Parquet file of one side is missing or cannot be read as Parquet."""

    def __init__(self, message: str, *, asset: str | None, side: str, path: str | Path) -> None:
        super().__init__(message, asset=asset)
        self.side = side
        self.path = str(path)


class PrimaryKeyMissingError(DiffError):
    """A primary key column is absent from one side (``"old"`` or ``"new"``)."""

    def __init__(self, message: str, *, asset: str | None, side: str, column: str) -> None:
        super().__init__(message, asset=asset)
        self.side = side
        self.column = column


class PrimaryKeyTypeError(DiffError):
    """A primary key column has types on the two sides that cannot be matched."""

    def __init__(
        self, message: str, *, asset: str | None, column: str, old_type: str, new_type: str
    ) -> None:
        super().__init__(message, asset=asset)
        self.column = column
        self.old_type = old_type
        self.new_type = new_type


class DuplicateKeyError(DiffError):
    """Some primary key values occur on more than one row of one side.

    Attributes:
        side: ``"old"`` or ``"new"``.
        duplicates: how many distinct key values occur more than once.
        sample_key: one such key value, column name to value.
        sample_count: how many rows hold ``sample_key``.
    """

    def __init__(
        self,
        message: str,
        *,
        asset: str | None,
        side: str,
        duplicates: int,
        sample_key: dict[str, object],
        sample_count: int,
    ) -> None:
        super().__init__(message, asset=asset)
        self.side = side
        self.duplicates = duplicates
        self.sample_key = sample_key
        self.sample_count = sample_count


class DataError(HeadraceError):
    """A request about data versions that cannot be carried out as asked."""

    def __init__(self, message: str, *, asset: str | None = None) -> None:
        super().__init__(message)
        self.asset = asset

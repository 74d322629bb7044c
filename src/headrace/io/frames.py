"""Tables in pandas, polars or Arrow form, recognised without importing the libraries."""

from __future__ import annotations

import types
import typing
from typing import Any

from headrace.errors import MissingExtraError

FLAVORS = ("pandas", "polars", "arrow")


def table_flavor(value: Any) -> str | None:
    """``pandas``, ``polars`` or ``arrow`` for a table value, else None."""
    cls = type(value)
    module, name = cls.__module__, cls.__name__
    if module.startswith("pandas") and name == "DataFrame":
        return "pandas"
    if module.startswith("polars") and name in ("DataFrame", "LazyFrame"):
        return "polars"
    if module.startswith("pyarrow") and name in ("Table", "RecordBatch"):
        return "arrow"
    return None


def to_arrow(value: Any, flavor: str) -> Any:
    import pyarrow as pa

    if flavor == "pandas":
        return pa.Table.from_pandas(value, preserve_index=None)
    if flavor == "polars":
        if type(value).__name__ == "LazyFrame":
            value = value.collect()
        return value.to_arrow()
    if isinstance(value, pa.RecordBatch):
        return pa.Table.from_batches([value])
    return value


def from_arrow(table: Any, flavor: str) -> Any:
    if flavor == "pandas":
        try:
            import pandas  # noqa: F401
        except ModuleNotFoundError as exc:
            raise MissingExtraError("pandas", "pandas") from exc
        return table.to_pandas()
    if flavor == "polars":
        try:
            import polars as pl
        except ModuleNotFoundError as exc:
            raise MissingExtraError("polars", "polars") from exc
        return pl.from_arrow(table)
    return table


_STRING_HINTS = {
    "pandas": ("pd.DataFrame", "pandas.DataFrame", "pandas.core.frame.DataFrame"),
    "polars": ("pl.DataFrame", "polars.DataFrame", "pl.LazyFrame", "polars.LazyFrame"),
    "arrow": ("pa.Table", "pyarrow.Table", "pyarrow.lib.Table"),
}


def annotation_flavor(annotation: Any) -> str | None:
    """The table flavor a parameter annotation asks for (``X | None`` allowed)."""
    if annotation is None:
        return None
    if isinstance(annotation, str):
        text = annotation.replace(" ", "")
        for part in text.replace("Optional[", "").rstrip("]").split("|"):
            for flavor, names in _STRING_HINTS.items():
                if part in names or (part == names[0].split(".")[-1] and flavor == "pandas"):
                    return flavor
        return None
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            found = annotation_flavor(arg)
            if found:
                return found
        return None
    if isinstance(annotation, type):
        module, name = annotation.__module__, annotation.__name__
        if module.startswith("pandas") and name == "DataFrame":
            return "pandas"
        if module.startswith("polars") and name in ("DataFrame", "LazyFrame"):
            return "polars"
        if module.startswith("pyarrow") and name == "Table":
            return "arrow"
    return None

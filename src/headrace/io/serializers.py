"""Serializers: Parquet for tables; JSON, text, bytes, or pickle only when declared.

Pickle runs arbitrary code when loaded, so it is never chosen automatically: an asset
must opt in with ``io="pickle"``.
"""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass
from typing import Any

from headrace.io.errors import SerializationError
from headrace.io.frames import from_arrow, table_flavor, to_arrow


@dataclass(frozen=True, slots=True)
class Serialized:
    kind: str  # table | object
    format: str  # parquet | json | text | bytes | pickle
    flavor: str  # pandas | polars | arrow | python
    data: bytes
    row_count: int | None
    schema: list[list[str]] | None
    stats: dict[str, Any] | None = None


def _parquet(table: Any) -> tuple[bytes, Any]:
    """Parquet bytes and the writer's own footer metadata (no second read for stats)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    collected: list[Any] = []
    pq.write_table(table, sink, compression="zstd", metadata_collector=collected)
    return bytes(sink.getvalue().to_pybytes()), collected[0] if collected else None


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def column_stats(data: bytes) -> dict[str, Any]:
    """Per-column null count, min and max, read from the Parquet footer (no data pass)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    return column_stats_from_metadata(pq.read_metadata(pa.BufferReader(data)))


def column_stats_from_metadata(meta: Any) -> dict[str, Any]:
    """Aggregate the row groups' statistics of a Parquet ``FileMetaData``."""
    out: dict[str, Any] = {}
    for group in range(meta.num_row_groups):
        row_group = meta.row_group(group)
        for i in range(row_group.num_columns):
            column = row_group.column(i)
            name = column.path_in_schema
            entry = out.setdefault(name, {"nulls": 0, "min": None, "max": None})
            stats = column.statistics
            if stats is None:
                entry["nulls"] = None
                continue
            if entry["nulls"] is not None and stats.has_null_count:
                entry["nulls"] += stats.null_count
            if stats.has_min_max:
                low, high = stats.min, stats.max
                try:
                    entry["min"] = low if entry["min"] is None else min(entry["min"], low)
                    entry["max"] = high if entry["max"] is None else max(entry["max"], high)
                except TypeError:
                    entry["min"] = entry["max"] = None
    return {name: {k: _jsonable(v) for k, v in entry.items()} for name, entry in out.items()}


def serialize(
    value: Any, io: str | None, *, asset: str, primary_key: tuple[str, ...] = ()
) -> Serialized:
    """Turn an asset's return value into bytes in its declared or inferred format."""
    flavor = table_flavor(value)
    if flavor is not None and io in (None, "parquet"):
        try:
            table = to_arrow(value, flavor)
        except Exception as exc:
            raise SerializationError(
                f"asset {asset!r}: the returned {flavor} table cannot be converted to Arrow: "
                f"{type(exc).__name__}: {exc}",
                asset=asset,
            ) from exc
        missing = [c for c in primary_key if c not in table.column_names]
        if missing:
            raise SerializationError(
                f"asset {asset!r} declares primary key column {missing[0]!r}, which the "
                f"returned table lacks (columns: {', '.join(table.column_names[:20])})",
                asset=asset,
            )
        try:
            data, footer = _parquet(table)
        except Exception as exc:
            raise SerializationError(
                f"asset {asset!r}: the returned {flavor} table cannot be written as Parquet: "
                f"{type(exc).__name__}: {exc}",
                asset=asset,
            ) from exc
        schema = [[f.name, str(f.type)] for f in table.schema]
        stats = column_stats_from_metadata(footer) if footer is not None else column_stats(data)
        return Serialized("table", "parquet", flavor, data, table.num_rows, schema, stats)
    if io == "parquet":
        raise SerializationError(
            f"asset {asset!r} declares io='parquet' but returned a {type(value).__name__}, "
            "not a pandas, polars or Arrow table",
            asset=asset,
        )
    if io == "pickle":
        return Serialized("object", "pickle", "python", pickle.dumps(value, protocol=5), None, None)
    if io == "model":
        from headrace.io.models import ModelFormatError, dump_model

        try:
            flavor_name, model_class, data = dump_model(value)
        except ModelFormatError as exc:
            raise SerializationError(f"asset {asset!r}: {exc}", asset=asset) from exc
        return Serialized(
            "model", "model", flavor_name, data, None, None, {"model_class": model_class}
        )
    if io == "text":
        if not isinstance(value, str):
            raise SerializationError(
                f"asset {asset!r} declares io='text' but returned a {type(value).__name__}",
                asset=asset,
            )
        return Serialized("object", "text", "python", value.encode(), None, None)
    if io == "bytes":
        if not isinstance(value, bytes | bytearray | memoryview):
            raise SerializationError(
                f"asset {asset!r} declares io='bytes' but returned a {type(value).__name__}",
                asset=asset,
            )
        return Serialized("object", "bytes", "python", bytes(value), None, None)
    try:
        data = json.dumps(value, allow_nan=True, separators=(",", ":")).encode()
    except (TypeError, ValueError) as exc:
        raise SerializationError(
            f"asset {asset!r} returned a {type(value).__module__}.{type(value).__name__}, "
            "which has no safe serializer: return a pandas/polars/Arrow table or "
            "JSON-compatible data, or declare io='pickle' to opt in to pickle "
            f"({exc})",
            asset=asset,
        ) from exc
    return Serialized("object", "json", "python", data, None, None)


def deserialize(data: bytes | str, fmt: str, flavor: str, *, wanted: str | None = None) -> Any:
    """Load a stored value; tables come back as ``wanted`` (default: as written).

    ``data`` may be the bytes, or the path of a local file (memory-mapped for Parquet).
    """
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        source: Any = data if isinstance(data, str) else pa.BufferReader(data)
        table = pq.read_table(source, memory_map=isinstance(data, str))
        return from_arrow(table, wanted or flavor)
    if isinstance(data, str):
        with open(data, "rb") as handle:
            raw = handle.read()
    else:
        raw = data
    if fmt == "json":
        return json.loads(raw)
    if fmt == "text":
        return raw.decode()
    if fmt == "bytes":
        return raw
    if fmt == "pickle":
        return pickle.loads(raw)
    if fmt == "model":  # safe flavors only: a pickled model is not loaded here
        from headrace.io.models import load_model_bytes

        return load_model_bytes(raw)
    raise SerializationError(f"unknown stored format {fmt!r}")

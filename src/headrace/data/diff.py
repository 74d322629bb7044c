"""Comparing two versions of a table asset stored as Parquet files.

A version of a table asset is one or more Parquet files (one per partition); each side of
a diff is the union of its files. :func:`diff_tables` reports the schema changes and the
row counts (both read from the Parquet footers, so cheap) and, when the table declares a
primary key, matches rows by key and counts the added, removed and changed rows, with a
few samples of each.

The rows are compared by DuckDB reading the Parquet files directly, with a memory limit,
two threads and a temporary folder to spill to, so tables of millions of rows are compared
without loading either side into memory. The key match joins only keys and one hash of
each row, so its memory grows with the number of rows, not the width of the table; the
rows whose hashes differ are then compared value by value. Values are compared
null-safely (``IS DISTINCT FROM``): two nulls are equal, a null and a value differ.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import math
import os
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from headrace.data.errors import (
    DiffError,
    DiffFileError,
    DuplicateKeyError,
    PrimaryKeyMissingError,
    PrimaryKeyTypeError,
)

if TYPE_CHECKING:
    import duckdb
    from rich.console import Console

__all__ = ["TableDiff", "diff_tables", "render"]

OLD = "old"
NEW = "new"
_THREADS = 2


@dataclass(frozen=True)
class TableDiff:
    """What changed between two versions of a table.

    Column types are Arrow type strings (``int64``, ``timestamp[us, tz=UTC]``...). The
    row fields (``added_rows`` to ``changed_columns``) are filled only when the diff was
    given a primary key; without one they are ``None`` or empty and only the schema and
    the row counts are compared.

    Attributes:
        name: the table (asset) name, for messages and rendering.
        old_rows: rows of the old side. new_rows: rows of the new side.
        added_columns: ``(name, type)`` of columns only on the new side, in its order.
        removed_columns: ``(name, type)`` of columns only on the old side, in its order.
        retyped_columns: ``(name, old type, new type)`` of columns whose type changed.
        primary_key: the key rows were matched by, or ``None``.
        added_rows: keys only on the new side. removed_rows: keys only on the old side.
        changed_rows: keys on both sides whose row differs in a compared column.
        unchanged_rows: keys on both sides whose compared columns are all equal.
        added_sample / removed_sample: up to ``sample`` rows (column to value, key first),
            in key order.
        changed_sample: up to ``sample`` dicts ``{"key": {column: value},
            "changes": {column: {"old": value, "new": value}}}``, in key order.
        changed_columns: for every compared column (on both sides, not in the key, with
            compatible types), how many matched rows differ in it.
        uncompared_columns: columns on both sides whose types are too different to
            compare (such as ``string`` and ``int64``); they never count as changes.

    Sample values are JSON-serializable: dates, times, decimals, UUIDs and non-finite
    floats become strings, binary values hex strings.
    """

    name: str
    old_rows: int
    new_rows: int
    added_columns: list[tuple[str, str]] = field(default_factory=list)
    removed_columns: list[tuple[str, str]] = field(default_factory=list)
    retyped_columns: list[tuple[str, str, str]] = field(default_factory=list)
    primary_key: tuple[str, ...] | None = None
    added_rows: int | None = None
    removed_rows: int | None = None
    changed_rows: int | None = None
    unchanged_rows: int | None = None
    added_sample: list[dict[str, Any]] = field(default_factory=list)
    removed_sample: list[dict[str, Any]] = field(default_factory=list)
    changed_sample: list[dict[str, Any]] = field(default_factory=list)
    changed_columns: dict[str, int] = field(default_factory=dict)
    uncompared_columns: list[str] = field(default_factory=list)

    @property
    def rows_compared(self) -> bool:
        """True when rows were matched by a primary key (not only counted)."""
        return self.primary_key is not None

    @property
    def row_delta(self) -> int:
        return self.new_rows - self.old_rows

    @property
    def schema_changed(self) -> bool:
        return bool(self.added_columns or self.removed_columns or self.retyped_columns)

    @property
    def identical(self) -> bool:
        """No difference was found.

        With a primary key: same schema and no added, removed or changed row. Without
        one the rows are not compared, so this only means same schema and row count.
        """
        if self.schema_changed or self.old_rows != self.new_rows:
            return False
        if not self.rows_compared:
            return True
        return not (self.added_rows or self.removed_rows or self.changed_rows)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TableDiff:
        """The diff :meth:`to_dict` gave (as a team server sends it)."""
        fields = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in fields}
        for name in ("added_columns", "removed_columns", "retyped_columns"):
            values[name] = [tuple(c) for c in values.get(name) or []]
        if values.get("primary_key") is not None:
            values["primary_key"] = tuple(values["primary_key"])
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serializable dict of every field, plus ``identical``."""
        data = dataclasses.asdict(self)
        data["primary_key"] = list(self.primary_key) if self.primary_key is not None else None
        data["added_columns"] = [list(c) for c in self.added_columns]
        data["removed_columns"] = [list(c) for c in self.removed_columns]
        data["retyped_columns"] = [list(c) for c in self.retyped_columns]
        data["identical"] = self.identical
        return data


def diff_tables(
    old: Sequence[str | Path],
    new: Sequence[str | Path],
    *,
    primary_key: Sequence[str] | None = None,
    sample: int = 5,
    memory_limit: str = "1GB",
    name: str = "table",
) -> TableDiff:
    """Compare two versions of a table, each the union of its Parquet files.

    Args:
        old: the Parquet files of the old version.
        new: the Parquet files of the new version.
        primary_key: the columns identifying a row. Given, rows are matched by key and
            added, removed and changed rows are counted and sampled; ``None`` compares
            only the schema and the row counts.
        sample: how many rows to keep of each kind (added, removed, changed).
        memory_limit: DuckDB's memory limit (``"1GB"``, ``"512MB"``); beyond it the
            comparison spills to a temporary folder instead of failing.
        name: the table's name, used in messages.

    Raises:
        DiffFileError: a file is missing or is not readable Parquet.
        PrimaryKeyMissingError: a key column is absent from one side.
        PrimaryKeyTypeError: a key column has incompatible types on the two sides.
        DuplicateKeyError: a key value occurs on several rows of one side.
        DiffError: any other reason the diff cannot be computed (no files on a side,
            files of one side with conflicting column types, out of memory...).
    """
    if isinstance(sample, bool) or not isinstance(sample, int) or sample < 0:
        raise DiffError(f"sample must be a whole number >= 0, got {sample!r}", asset=name)
    old_side = _read_side(OLD, old, name)
    new_side = _read_side(NEW, new, name)
    old_types, new_types = old_side.types, new_side.types
    base = TableDiff(
        name=name,
        old_rows=old_side.rows,
        new_rows=new_side.rows,
        added_columns=[(c, str(t)) for c, t in new_types.items() if c not in old_types],
        removed_columns=[(c, str(t)) for c, t in old_types.items() if c not in new_types],
        retyped_columns=[
            (c, str(t), str(new_types[c]))
            for c, t in old_types.items()
            if c in new_types and str(t) != str(new_types[c])
        ],
    )
    if primary_key is None:
        return base
    key = _check_key(primary_key, old_types, new_types, name)
    shared = [c for c in old_types if c in new_types and c not in key]
    compared = [c for c in shared if _comparable(old_types[c], new_types[c])]
    uncompared = [c for c in shared if c not in compared]
    with _connect(memory_limit, name) as con:
        _check_unique(con, old_side, key, name)
        _check_unique(con, new_side, key, name)
        rows = _RowDiff(con, old_side, new_side, key, compared, name).run(sample)
    return dataclasses.replace(
        base,
        primary_key=key,
        added_rows=rows.added,
        removed_rows=rows.removed,
        changed_rows=rows.changed,
        unchanged_rows=rows.unchanged,
        added_sample=rows.added_sample,
        removed_sample=rows.removed_sample,
        changed_sample=rows.changed_sample,
        changed_columns=rows.changed_columns,
        uncompared_columns=uncompared,
    )


# --- the two sides ------------------------------------------------------------------


@dataclass(frozen=True)
class _Side:
    label: str
    files: tuple[str, ...]
    schema: Any  # pyarrow.Schema: every column of the side's files, unified
    rows: int

    @property
    def types(self) -> dict[str, Any]:
        return {f.name: f.type for f in self.schema}

    def source(self) -> str:
        files = ", ".join(_literal(f) for f in self.files)
        return f"read_parquet([{files}], union_by_name = true, hive_partitioning = false)"


def _read_side(label: str, paths: Sequence[str | Path], name: str) -> _Side:
    """The schema and row count of one side, from the Parquet footers only."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if isinstance(paths, str | Path):
        raise DiffError(
            f"the {label} side of {name!r} must be a list of Parquet files, got one path",
            asset=name,
        )
    if not paths:
        raise DiffError(f"the {label} side of {name!r} has no Parquet files", asset=name)
    files = tuple(os.fspath(p) for p in paths)
    schemas = []
    rows = 0
    for path in files:
        try:
            with pq.ParquetFile(path) as parquet:
                schemas.append(parquet.schema_arrow)
                rows += parquet.metadata.num_rows
        except FileNotFoundError:
            raise DiffFileError(
                f"the {label} file {path} of {name!r} does not exist",
                asset=name,
                side=label,
                path=path,
            ) from None
        except (OSError, pa.ArrowException) as exc:
            raise DiffFileError(
                f"cannot read the {label} file {path} of {name!r} as Parquet: {exc}",
                asset=name,
                side=label,
                path=path,
            ) from exc
    try:
        schema = pa.unify_schemas(schemas, promote_options="permissive")
    except (pa.ArrowTypeError, pa.ArrowInvalid) as exc:
        raise DiffError(
            f"the {label} files of {name!r} disagree on a column's type: {exc}", asset=name
        ) from exc
    return _Side(label=label, files=files, schema=schema, rows=rows)


def _check_key(
    primary_key: Sequence[str], old_types: dict[str, Any], new_types: dict[str, Any], name: str
) -> tuple[str, ...]:
    if isinstance(primary_key, str):
        primary_key = [primary_key]
    key = tuple(primary_key)
    if not key:
        raise DiffError(f"the primary key of {name!r} names no column", asset=name)
    if len(set(key)) != len(key):
        raise DiffError(f"the primary key of {name!r} repeats a column: {key!r}", asset=name)
    for label, types in ((OLD, old_types), (NEW, new_types)):
        for column in key:
            if column not in types:
                raise PrimaryKeyMissingError(
                    f"primary key column {column!r} is missing from the {label} side of "
                    f"{name!r}; its columns are: {', '.join(types) or '(none)'}",
                    asset=name,
                    side=label,
                    column=column,
                )
    for column in key:
        old_type, new_type = old_types[column], new_types[column]
        old_family, new_family = _family(old_type), _family(new_type)
        if old_family is None or old_family != new_family:
            raise PrimaryKeyTypeError(
                f"primary key column {column!r} of {name!r} is {old_type} on the old side "
                f"and {new_type} on the new side; rows cannot be matched by it",
                asset=name,
                column=column,
                old_type=str(old_type),
                new_type=str(new_type),
            )
    return key


def _family(arrow_type: Any) -> str | None:
    """Types of one family compare by value in DuckDB (``int32`` 1 equals ``double`` 1.0).

    ``None`` for the ``null`` type: an all-null column, comparable with any type.
    """
    import pyarrow as pa

    t = pa.types
    if t.is_dictionary(arrow_type):
        return _family(arrow_type.value_type)
    if t.is_null(arrow_type):
        return None
    if t.is_integer(arrow_type) or t.is_floating(arrow_type) or t.is_decimal(arrow_type):
        return "number"
    if t.is_string(arrow_type) or t.is_large_string(arrow_type) or t.is_string_view(arrow_type):
        return "string"
    if (
        t.is_binary(arrow_type)
        or t.is_large_binary(arrow_type)
        or t.is_binary_view(arrow_type)
        or t.is_fixed_size_binary(arrow_type)
    ):
        return "binary"
    if t.is_timestamp(arrow_type):
        # Naive and zoned timestamps only compare through a session time zone: refuse.
        return "timestamp with time zone" if arrow_type.tz else "timestamp"
    if t.is_date(arrow_type):
        return "date"
    if t.is_time(arrow_type):
        return "time"
    if t.is_duration(arrow_type):
        return "duration"
    return str(arrow_type)  # booleans, lists, structs...: only the same type compares


def _comparable(old_type: Any, new_type: Any) -> bool:
    old_family, new_family = _family(old_type), _family(new_type)
    return old_family is None or new_family is None or old_family == new_family


# --- DuckDB ---------------------------------------------------------------------------


@contextmanager
def _connect(memory_limit: str, name: str) -> Iterator[duckdb.DuckDBPyConnection]:
    import duckdb

    with tempfile.TemporaryDirectory(prefix="headrace-diff-") as spill:
        try:
            con = duckdb.connect(
                ":memory:",
                config={
                    "memory_limit": memory_limit,
                    "threads": _THREADS,
                    "temp_directory": spill,
                    "preserve_insertion_order": False,
                },
            )
        except duckdb.Error as exc:
            raise DiffError(
                f"cannot start the diff of {name!r} (memory_limit={memory_limit!r}?): {exc}",
                asset=name,
            ) from exc
        try:
            con.execute("SET enable_progress_bar = false")
            con.execute("SET TimeZone = 'UTC'")
            yield con
        finally:
            con.close()


def _query(
    con: duckdb.DuckDBPyConnection, sql: str, name: str, *, values: bool = False
) -> list[tuple[Any, ...]]:
    """Run one statement and return its rows.

    ``values=True`` for rows of table values: they are converted through Arrow, which
    turns every DuckDB type into Python (zoned timestamps need no ``pytz`` there).
    """
    import duckdb

    try:
        if not values:
            return con.execute(sql).fetchall()
        relation = con.sql(sql)
        # DuckDB 2 names it to_arrow_table; DuckDB 1 has arrow(), returning a table.
        fetch = getattr(relation, "to_arrow_table", None) or relation.arrow
        table = fetch()
        return list(zip(*(column.to_pylist() for column in table.columns), strict=True))
    except duckdb.OutOfMemoryException as exc:
        first_line = str(exc).splitlines()[0]
        raise DiffError(
            f"the diff of {name!r} ran out of memory; raise memory_limit ({first_line})",
            asset=name,
        ) from exc
    except duckdb.Error as exc:
        raise DiffError(f"the diff of {name!r} failed: {exc}", asset=name) from exc


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _check_unique(
    con: duckdb.DuckDBPyConnection, side: _Side, key: tuple[str, ...], name: str
) -> None:
    keys = ", ".join(f"{_ident(c)} AS k{i}" for i, c in enumerate(key))
    aliases = ", ".join(f"k{i}" for i in range(len(key)))
    sql = (
        f"SELECT count(*) OVER () AS duplicates, n, {aliases} FROM ("
        f"SELECT {keys}, count(*) AS n FROM {side.source()} "
        f"GROUP BY {aliases} HAVING count(*) > 1) ORDER BY {aliases} LIMIT 1"
    )
    found = _query(con, sql, name, values=True)
    if not found:
        return
    duplicates, rows, *values = found[0]
    sample_key = dict(zip(key, (_jsonable(v) for v in values), strict=True))
    shown = ", ".join(f"{c}={v!r}" for c, v in sample_key.items())
    raise DuplicateKeyError(
        f"the primary key {', '.join(key)} of {name!r} is not unique on the {side.label} "
        f"side: {duplicates} key value(s) occur on more than one row, e.g. {shown} "
        f"on {rows} rows",
        asset=name,
        side=side.label,
        duplicates=duplicates,
        sample_key=sample_key,
        sample_count=rows,
    )


@dataclass(frozen=True)
class _Rows:
    added: int
    removed: int
    changed: int
    unchanged: int
    changed_columns: dict[str, int]
    added_sample: list[dict[str, Any]]
    removed_sample: list[dict[str, Any]]
    changed_sample: list[dict[str, Any]]


class _RowDiff:
    """Matching the rows of two sides by key, in two passes.

    1. Each side is read as its key and one hash of its compared columns; a full outer
       join on the key keeps, in the temporary table ``d``, the keys on one side only and
       the matched keys whose hashes differ (the candidates). The join holds only keys
       and hashes, however wide the table.
    2. The candidates' rows are read again with their values and compared exactly,
       column by column (``IS DISTINCT FROM``), into the temporary table ``ch``.

    Equal values of the same type hash equal, so a changed row can only be missed when
    two different rows hash to the same 64 bits; a candidate whose hash differs for
    another reason (``1`` and ``1.0``, ``0.0`` and ``-0.0``) is dropped by the exact
    comparison. Columns are aliased by position (``k0``, ``c0``...) so that no column
    name can collide with another or need quoting twice.
    """

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        old: _Side,
        new: _Side,
        key: tuple[str, ...],
        compared: list[str],
        name: str,
    ) -> None:
        self.con = con
        self.old = old
        self.new = new
        self.key = key
        self.compared = compared
        self.name = name
        self.keys = [f"k{i}" for i in range(len(key))]

    def _query(self, sql: str, *, values: bool = False) -> list[tuple[Any, ...]]:
        return _query(self.con, sql, self.name, values=values)

    def _on(self, left: str, right: str) -> str:
        return " AND ".join(f"{left}.{k} IS NOT DISTINCT FROM {right}.{k}" for k in self.keys)

    def _order(self, alias: str) -> str:
        return ", ".join(f"{alias}.{k}" for k in self.keys)

    def _values(self, side: _Side) -> list[str]:
        """The compared columns of a side as SQL expressions, in ``compared`` order."""
        import pyarrow as pa

        types = side.types
        # An all-null column may be read as any type: use a plain NULL, which compares.
        return ["NULL" if pa.types.is_null(types[c]) else _ident(c) for c in self.compared]

    def _keyed(self, side: _Side, columns: list[str]) -> str:
        keys = [f"{_ident(c)} AS k{i}" for i, c in enumerate(self.key)]
        return f"SELECT {', '.join([*keys, *columns])} FROM {side.source()}"

    def run(self, sample: int) -> _Rows:
        hashes = {}
        for side in (self.old, self.new):
            values = self._values(side)
            hashes[side.label] = f"hash({', '.join(values)})" if values else "0::UBIGINT"
        old = self._keyed(self.old, [f"{hashes[OLD]} AS h"])
        new = self._keyed(self.new, [f"{hashes[NEW]} AS h"])
        coalesced = ", ".join(f"coalesce(o.{k}, n.{k}) AS {k}" for k in self.keys)
        self._query(
            f"CREATE TEMP TABLE d AS WITH o AS ({old}), n AS ({new}) "
            f"SELECT {coalesced}, o.h IS NULL AS added, n.h IS NULL AS removed "
            f"FROM o FULL OUTER JOIN n ON {self._on('o', 'n')} "
            "WHERE o.h IS NULL OR n.h IS NULL OR o.h <> n.h"
        )
        added, removed, candidates = self._query(
            "SELECT count(*) FILTER (WHERE added), count(*) FILTER (WHERE removed), "
            "count(*) FILTER (WHERE NOT added AND NOT removed) FROM d"
        )[0]
        changed, per_column, changed_sample = self._compare(candidates, sample)
        return _Rows(
            added=added,
            removed=removed,
            changed=changed,
            unchanged=self.old.rows - removed - changed,
            changed_columns=per_column,
            added_sample=self._sample(self.new, "added", sample) if added and sample else [],
            removed_sample=(
                self._sample(self.old, "removed", sample) if removed and sample else []
            ),
            changed_sample=changed_sample,
        )

    def _compare(
        self, candidates: int, sample: int
    ) -> tuple[int, dict[str, int], list[dict[str, Any]]]:
        """Compare the candidates exactly: changed rows, changes per column, a sample.

        Only the keys and the per-column verdicts of the changed rows are kept (table
        ``ch``); the sampled rows' values are read again for those few keys.
        """
        if not candidates or not self.compared:
            return 0, dict.fromkeys(self.compared, 0), []
        count = len(self.compared)
        keys = ", ".join(self.keys)
        flags = [f"o.c{j} IS DISTINCT FROM n.c{j} AS d{j}" for j in range(count)]
        self._query(
            f"CREATE TEMP TABLE ch AS {self._pair('SELECT * FROM c')} "
            f"SELECT {self._order('o')}, {', '.join(flags)} FROM o JOIN n ON {self._on('o', 'n')} "
            f"WHERE {' OR '.join(f'd{j}' for j in range(count))}"
        )
        counts = ", ".join(f"count(*) FILTER (WHERE d{j})" for j in range(count))
        changed, *per_column = self._query(f"SELECT count(*), {counts} FROM ch")[0]
        found: list[dict[str, Any]] = []
        if changed and sample:
            picked = f"SELECT {keys} FROM ch ORDER BY {keys} LIMIT {sample}"
            select = [f"o.{k}" for k in self.keys]
            for j in range(count):
                select += [f"o.c{j}", f"n.c{j}", f"o.c{j} IS DISTINCT FROM n.c{j}"]
            rows = self._query(
                f"{self._pair(picked)} SELECT {', '.join(select)} "
                f"FROM o JOIN n ON {self._on('o', 'n')} ORDER BY {self._order('o')}",
                values=True,
            )
            width = len(self.key)
            for row in rows:
                changes = {}
                for j, column in enumerate(self.compared):
                    old_value, new_value, differs = row[width + 3 * j : width + 3 * j + 3]
                    if differs:
                        changes[column] = {"old": _jsonable(old_value), "new": _jsonable(new_value)}
                key = {c: _jsonable(v) for c, v in zip(self.key, row[:width], strict=True)}
                found.append({"key": key, "changes": changes})
        return changed, dict(zip(self.compared, per_column, strict=True)), found

    def _pair(self, keys_sql: str) -> str:
        """A ``WITH`` clause: ``o`` and ``n``, the key and compared columns of each side,
        restricted to the keys ``keys_sql`` selects (the candidates when it is ``c``)."""
        candidates = f"SELECT {', '.join(self.keys)} FROM d WHERE NOT added AND NOT removed"
        sides = []
        for alias, side in (("o", self.old), ("n", self.new)):
            columns = [f"{v} AS c{j}" for j, v in enumerate(self._values(side))]
            sides.append(
                f"{alias} AS (SELECT s.* FROM ({self._keyed(side, columns)}) AS s "
                f"SEMI JOIN wanted AS w ON {self._on('s', 'w')})"
            )
        return f"WITH c AS ({candidates}), wanted AS ({keys_sql}), {', '.join(sides)}"

    def _sample(self, side: _Side, kind: str, sample: int) -> list[dict[str, Any]]:
        """The first ``sample`` rows, in key order, of the keys ``d`` marks ``kind``."""
        names = [*self.key, *(c for c in side.types if c not in self.key)]
        columns = [f"{_ident(c)} AS v{j}" for j, c in enumerate(names)]
        values = ", ".join(f"s.v{j}" for j in range(len(names)))
        picked = (
            f"SELECT {', '.join(self.keys)} FROM d WHERE {kind} "
            f"ORDER BY {', '.join(self.keys)} LIMIT {sample}"
        )
        rows = self._query(
            f"SELECT {values} FROM ({self._keyed(side, columns)}) AS s "
            f"SEMI JOIN ({picked}) AS x ON {self._on('s', 'x')} ORDER BY {self._order('s')}",
            values=True,
        )
        return [{c: _jsonable(v) for c, v in zip(names, row, strict=True)} for row in rows]


def _jsonable(value: Any) -> Any:
    """A value as JSON can hold it: strings for dates, decimals, UUIDs, odd floats."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, datetime.date | datetime.time):  # datetime is a date
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, decimal.Decimal | uuid.UUID | datetime.timedelta):
        return str(value)
    return str(value)


# --- rendering ------------------------------------------------------------------------


def render(diff: TableDiff, console: Console) -> None:
    """Print a diff for people: schema changes, row counts, changed columns, samples."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    def cell(value: Any, limit: int = 40) -> Text:
        if value is None:
            return Text("null", style="dim")
        text = value if isinstance(value, str) else repr(value)
        if len(text) > limit:
            text = text[: limit - 1] + "…"
        return Text(text)

    def small_table(title: str) -> Table:
        console.print()
        console.print(Text(title, style="bold"))
        return Table(box=box.SIMPLE_HEAD, show_edge=False, padding=(0, 1))

    console.print(Text.assemble(("diff of ", "bold"), (diff.name, "bold cyan")))

    if not diff.schema_changed:
        console.print(Text("schema: unchanged"))
    else:
        schema = small_table("schema")
        for header in ("", "column", "old type", "new type"):
            schema.add_column(header)
        for column, type_ in diff.added_columns:
            schema.add_row(Text("+", "green"), Text(column, "green"), cell(""), Text(type_))
        for column, type_ in diff.removed_columns:
            schema.add_row(Text("-", "red"), Text(column, "red"), Text(type_), cell(""))
        for column, old_type, new_type in diff.retyped_columns:
            schema.add_row(
                Text("~", "yellow"), Text(column, "yellow"), cell(old_type), cell(new_type)
            )
        console.print(schema)

    delta = diff.row_delta
    delta_style = "green" if delta > 0 else "red" if delta < 0 else "dim"
    console.print(
        Text.assemble(
            "rows: ",
            f"{diff.old_rows:,} → {diff.new_rows:,} ",
            (f"({delta:+,})", delta_style),
        )
    )

    if not diff.rows_compared:
        console.print(Text("rows not compared: no primary key declared", style="dim"))
    else:
        key = ", ".join(diff.primary_key or ())
        counts = small_table(f"rows by primary key ({key})")
        counts.add_column("")
        counts.add_column("rows", justify="right")
        for label, count, style in (
            ("added", diff.added_rows, "green"),
            ("removed", diff.removed_rows, "red"),
            ("changed", diff.changed_rows, "yellow"),
            ("unchanged", diff.unchanged_rows, "dim"),
        ):
            counts.add_row(Text(label, style), Text(f"{count or 0:,}"))
        console.print(counts)

        changed = sorted(
            ((c, n) for c, n in diff.changed_columns.items() if n), key=lambda cn: -cn[1]
        )
        if changed:
            per_column = small_table("changed values per column")
            per_column.add_column("column")
            per_column.add_column("rows", justify="right")
            for column, count in changed:
                per_column.add_row(Text(column), Text(f"{count:,}"))
            console.print(per_column)
        if diff.uncompared_columns:
            console.print(
                Text(
                    "not compared (incompatible types): " + ", ".join(diff.uncompared_columns),
                    style="dim",
                )
            )

        for title, rows, style in (
            ("added rows", diff.added_sample, "green"),
            ("removed rows", diff.removed_sample, "red"),
        ):
            if not rows:
                continue
            headers = list(dict.fromkeys(c for row in rows for c in row))
            table = small_table(f"{title} (sample of {len(rows)})")
            for header in headers:
                table.add_column(Text(header, style), overflow="fold")
            for row in rows:
                table.add_row(*(cell(row.get(h)) for h in headers))
            console.print(table)

        if diff.changed_sample:
            table = small_table(f"changed rows (sample of {len(diff.changed_sample)})")
            for header in (*(diff.primary_key or ()), "column", "old", "new"):
                table.add_column(Text(header), overflow="fold")
            for entry in diff.changed_sample:
                key_cells = [cell(v) for v in entry["key"].values()]
                for index, (column, change) in enumerate(entry["changes"].items()):
                    shown = key_cells if index == 0 else [Text("") for _ in key_cells]
                    table.add_row(
                        *shown,
                        Text(column, "yellow"),
                        cell(change["old"]),
                        cell(change["new"]),
                    )
            console.print(table)

    if diff.identical:
        verdict = "identical" if diff.rows_compared else "same schema and row count"
        console.print(Text(verdict, style="bold green"))

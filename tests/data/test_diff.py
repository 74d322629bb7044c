"""Diffing two versions of a table stored as Parquet files."""

from __future__ import annotations

import datetime
import decimal
import json
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from rich.console import Console

from headrace.data.diff import TableDiff, diff_tables, render
from headrace.data.errors import (
    DiffError,
    DiffFileError,
    DuplicateKeyError,
    PrimaryKeyMissingError,
    PrimaryKeyTypeError,
)
from headrace.errors import HeadraceError


def write(folder: Path, name: str, data: pa.Table | dict[str, Any], **options: Any) -> Path:
    table = data if isinstance(data, pa.Table) else pa.table(data)
    path = folder / f"{name}.parquet"
    pq.write_table(table, path, **options)
    return path


# --- schema and row counts ---------------------------------------------------------


def test_schema_changes_and_row_counts_without_a_key(tmp_path: Path) -> None:
    old = write(
        tmp_path,
        "old",
        {
            "id": pa.array([1, 2, 3], pa.int64()),
            "a": pa.array([1, 2, 3], pa.int32()),
            "b": ["x", "y", "z"],
            "gone": [0.5, 0.5, 0.5],
        },
    )
    new = write(
        tmp_path,
        "new",
        {
            "id": pa.array([1, 2, 3, 4], pa.int64()),
            "a": pa.array([1, 2, 3, 4], pa.int64()),
            "b": pa.array([1, 2, 3, 4], pa.int64()),
            "c": [True, False, True, None],
            "ts": pa.array([0, 1, 2, 3], pa.timestamp("ms", tz="UTC")),
        },
    )

    diff = diff_tables([old], [new], name="orders")

    assert diff == TableDiff(
        name="orders",
        old_rows=3,
        new_rows=4,
        added_columns=[("c", "bool"), ("ts", "timestamp[ms, tz=UTC]")],
        removed_columns=[("gone", "double")],
        retyped_columns=[("a", "int32", "int64"), ("b", "string", "int64")],
    )
    assert diff.row_delta == 1
    assert diff.schema_changed
    assert not diff.rows_compared
    assert diff.added_rows is None and diff.changed_rows is None
    assert not diff.identical


def test_without_a_key_identical_means_same_schema_and_row_count(tmp_path: Path) -> None:
    old = write(tmp_path, "old", {"id": [1, 2], "v": ["a", "b"]})
    new = write(tmp_path, "new", {"id": [3, 4], "v": ["c", "d"]})

    diff = diff_tables([old], [new])

    assert diff.identical
    assert not diff.rows_compared
    assert diff.to_dict()["identical"] is True


# --- rows by primary key ------------------------------------------------------------


def test_added_removed_and_changed_rows_with_exact_counts_and_samples(tmp_path: Path) -> None:
    old = write(
        tmp_path,
        "old",
        {
            "id": [1, 2, 3, 4, 5, 6],
            "name": ["a", "b", "c", "d", "e", "f"],
            "qty": [10, 20, 30, 40, 50, 60],
            "dropped": [0, 0, 0, 0, 0, 0],
        },
    )
    new = write(
        tmp_path,
        "new",
        {
            "qty": [10, 21, 41, 50, 70, 80],
            "id": [1, 2, 4, 5, 7, 8],
            "name": ["a", "B", "d", "e", "g", "h"],
            "extra": [True, True, True, True, False, False],
        },
    )

    diff = diff_tables([old], [new], primary_key=["id"], name="orders")

    assert (diff.added_rows, diff.removed_rows, diff.changed_rows, diff.unchanged_rows) == (
        2,
        2,
        2,
        2,
    )
    assert diff.primary_key == ("id",)
    assert diff.added_columns == [("extra", "bool")]
    assert diff.removed_columns == [("dropped", "int64")]
    assert diff.added_sample == [
        {"id": 7, "qty": 70, "name": "g", "extra": False},
        {"id": 8, "qty": 80, "name": "h", "extra": False},
    ]
    assert diff.removed_sample == [
        {"id": 3, "name": "c", "qty": 30, "dropped": 0},
        {"id": 6, "name": "f", "qty": 60, "dropped": 0},
    ]
    assert diff.changed_sample == [
        {
            "key": {"id": 2},
            "changes": {"name": {"old": "b", "new": "B"}, "qty": {"old": 20, "new": 21}},
        },
        {"key": {"id": 4}, "changes": {"qty": {"old": 40, "new": 41}}},
    ]
    assert diff.changed_columns == {"name": 1, "qty": 2}
    assert diff.uncompared_columns == []
    assert not diff.identical
    # Key order in every sample: the key columns come first.
    assert list(diff.added_sample[0]) == ["id", "qty", "name", "extra"]


def test_samples_are_the_first_rows_in_key_order_and_can_be_turned_off(tmp_path: Path) -> None:
    old = write(tmp_path, "old", {"id": list(range(100)), "v": [0] * 100})
    new = write(
        tmp_path,
        "new",
        {"id": list(range(50, 150)), "v": [1 if i % 10 == 0 else 0 for i in range(50, 150)]},
    )

    two = diff_tables([old], [new], primary_key=["id"], sample=2)
    none = diff_tables([old], [new], primary_key=["id"], sample=0)

    assert (two.added_rows, two.removed_rows, two.changed_rows, two.unchanged_rows) == (
        50,
        50,
        5,
        45,
    )
    assert [row["id"] for row in two.added_sample] == [100, 101]
    assert [row["id"] for row in two.removed_sample] == [0, 1]
    assert [entry["key"]["id"] for entry in two.changed_sample] == [50, 60]
    assert (none.added_sample, none.removed_sample, none.changed_sample) == ([], [], [])
    assert (none.added_rows, none.removed_rows, none.changed_rows) == (50, 50, 5)
    assert none.changed_columns == {"v": 5}


def test_nulls_and_floats_compare_null_safely(tmp_path: Path) -> None:
    nan = float("nan")
    old = write(
        tmp_path,
        "old",
        {
            "id": [1, 2, 3, 4, 5, 6, 7],
            "v": pa.array([None, None, 5, 5, 1, 1, 1], pa.int64()),
            "f": [0.5, 0.5, 0.5, 0.5, nan, 0.0, 1.0],
        },
    )
    new = write(
        tmp_path,
        "new",
        {
            "id": [1, 2, 3, 4, 5, 6, 7],
            "v": pa.array([None, 5, None, 5, 1, 1, 1], pa.int64()),
            "f": [0.5, 0.5, 0.5, 0.5, nan, -0.0, nan],
        },
    )

    diff = diff_tables([old], [new], primary_key=["id"])

    assert (diff.changed_rows, diff.unchanged_rows) == (3, 4)
    assert diff.changed_columns == {"v": 2, "f": 1}
    assert diff.changed_sample == [
        {"key": {"id": 2}, "changes": {"v": {"old": None, "new": 5}}},
        {"key": {"id": 3}, "changes": {"v": {"old": 5, "new": None}}},
        {"key": {"id": 7}, "changes": {"f": {"old": 1.0, "new": "nan"}}},
    ]


def test_composite_keys_match_on_every_column_nulls_included(tmp_path: Path) -> None:
    old = write(
        tmp_path,
        "old",
        {
            "region": ["eu", "eu", "us", "us"],
            "id": pa.array([1, 2, 1, None], pa.int64()),
            "a": [10, 20, 30, 40],
        },
    )
    new = write(
        tmp_path,
        "new",
        {
            "id": pa.array([1, 2, 2, None], pa.int64()),
            "region": ["eu", "eu", "us", "us"],
            "a": [10, 21, 50, 41],
        },
    )

    diff = diff_tables([old], [new], primary_key=["region", "id"])

    assert (diff.added_rows, diff.removed_rows, diff.changed_rows, diff.unchanged_rows) == (
        1,
        1,
        2,
        1,
    )
    assert diff.added_sample == [{"region": "us", "id": 2, "a": 50}]
    assert diff.removed_sample == [{"region": "us", "id": 1, "a": 30}]
    assert diff.changed_sample == [
        {"key": {"region": "eu", "id": 2}, "changes": {"a": {"old": 20, "new": 21}}},
        {"key": {"region": "us", "id": None}, "changes": {"a": {"old": 40, "new": 41}}},
    ]


def test_a_table_of_key_columns_only_has_no_changed_rows(tmp_path: Path) -> None:
    old = write(tmp_path, "old", {"id": [1, 2, 3]})
    new = write(tmp_path, "new", {"id": [2, 3, 4]})

    diff = diff_tables([old], [new], primary_key=["id"])

    assert (diff.added_rows, diff.removed_rows, diff.changed_rows, diff.unchanged_rows) == (
        1,
        1,
        0,
        2,
    )
    assert (diff.added_sample, diff.removed_sample) == ([{"id": 4}], [{"id": 1}])
    assert diff.changed_columns == {}


def test_identical_files_and_reordered_rows_are_identical(tmp_path: Path) -> None:
    table = pa.table({"id": list(range(1000)), "v": [str(i) for i in range(1000)]})
    path = write(tmp_path, "same", table)
    shuffled = write(tmp_path, "shuffled", table.take(list(range(999, -1, -1))), row_group_size=100)

    for other in (path, shuffled):
        diff = diff_tables([path], [other], primary_key=["id"])
        assert diff.identical
        assert (diff.added_rows, diff.removed_rows, diff.changed_rows) == (0, 0, 0)
        assert diff.unchanged_rows == 1000
        assert diff.changed_columns == {"v": 0}
        assert (diff.added_sample, diff.removed_sample, diff.changed_sample) == ([], [], [])


def test_each_side_is_the_union_of_its_files(tmp_path: Path) -> None:
    old = [
        write(tmp_path, "old-0", {"id": [0, 1, 2, 3, 4], "v": [0, 1, 2, 3, 4]}),
        write(tmp_path, "old-1", {"id": [5, 6, 7, 8, 9], "v": [5, 6, 7, 8, 9]}),
    ]
    new = [
        write(tmp_path, "new-0", {"id": [0, 1, 2, 3], "v": [0, 1, 2, 3]}),
        # One partition has a column the others lack: null elsewhere.
        write(tmp_path, "new-1", {"x": [1, 1, 1, 1], "id": [4, 5, 6, 7], "v": [4, 55, 6, 7]}),
        write(tmp_path, "new-2", {"id": [8, 9, 10, 11], "v": [8, 9, 10, 11]}),
    ]

    diff = diff_tables(old, new, primary_key=["id"])

    assert (diff.old_rows, diff.new_rows) == (10, 12)
    assert diff.added_columns == [("x", "int64")]
    assert (diff.added_rows, diff.removed_rows, diff.changed_rows, diff.unchanged_rows) == (
        2,
        0,
        1,
        9,
    )
    assert diff.added_sample == [{"id": 10, "v": 10, "x": None}, {"id": 11, "v": 11, "x": None}]
    assert diff.changed_sample == [{"key": {"id": 5}, "changes": {"v": {"old": 5, "new": 55}}}]


def test_compatible_retypes_compare_by_value_and_others_are_not_compared(
    tmp_path: Path,
) -> None:
    old = write(
        tmp_path,
        "old",
        {
            "id": pa.array([1, 2, 3], pa.int32()),
            "n": pa.array([1, 2, 3], pa.int32()),
            "f": pa.array([1, 2, 3], pa.int64()),
            "s": ["1", "2", "3"],
            "d": pa.array(["a", "b", "c"]).dictionary_encode(),
            "empty": pa.array([None, None, None], pa.null()),
        },
    )
    new = write(
        tmp_path,
        "new",
        {
            "id": pa.array([1, 2, 3], pa.int64()),
            "n": pa.array([1, 2, 4], pa.int64()),
            "f": pa.array([1.0, 2.5, 3.0], pa.float64()),
            "s": pa.array([1, 2, 3], pa.int64()),
            "d": pa.array(["a", "b", "z"], pa.large_string()),
            "empty": pa.array([None, 7, None], pa.int64()),
        },
    )

    diff = diff_tables([old], [new], primary_key=["id"])

    assert [column for column, _, _ in diff.retyped_columns] == ["id", "n", "f", "s", "d", "empty"]
    assert diff.uncompared_columns == ["s"]
    assert diff.changed_columns == {"n": 1, "f": 1, "d": 1, "empty": 1}
    assert (diff.changed_rows, diff.unchanged_rows) == (2, 1)
    assert diff.changed_sample[0] == {
        "key": {"id": 2},
        "changes": {"f": {"old": 2, "new": 2.5}, "empty": {"old": None, "new": 7}},
    }


def test_samples_are_json_serializable(tmp_path: Path) -> None:
    when = datetime.datetime(2024, 5, 1, 12, 30, tzinfo=datetime.UTC)
    old = write(
        tmp_path,
        "old",
        {
            "id": [1, 2],
            "at": pa.array([when, when], pa.timestamp("us", tz="UTC")),
            "day": [datetime.date(2024, 5, 1)] * 2,
            "price": pa.array([decimal.Decimal("1.25")] * 2, pa.decimal128(6, 2)),
            "raw": [b"\x00\x01", b"\x02"],
            "tags": [["a"], ["b", "c"]],
            "ratio": [1.0, 2.0],
        },
    )
    new = write(
        tmp_path,
        "new",
        {
            "id": [2, 3],
            "at": pa.array(
                [when, when + datetime.timedelta(hours=1)], pa.timestamp("us", tz="UTC")
            ),
            "day": [datetime.date(2024, 5, 2)] * 2,
            "price": pa.array([decimal.Decimal("1.50")] * 2, pa.decimal128(6, 2)),
            "raw": [b"\x02", b"\xff"],
            "tags": [["b", "c"], []],
            "ratio": [float("inf"), float("nan")],
        },
    )

    diff = diff_tables([old], [new], primary_key=["id"])

    text = json.dumps(diff.to_dict(), allow_nan=False)
    assert json.loads(text)["changed_rows"] == 1
    assert diff.removed_sample == [
        {
            "id": 1,
            "at": "2024-05-01T12:30:00+00:00",
            "day": "2024-05-01",
            "price": "1.25",
            "raw": "0001",
            "tags": ["a"],
            "ratio": 1.0,
        }
    ]
    assert diff.changed_sample == [
        {
            "key": {"id": 2},
            "changes": {
                "day": {"old": "2024-05-01", "new": "2024-05-02"},
                "price": {"old": "1.25", "new": "1.50"},
                "ratio": {"old": 2.0, "new": "inf"},
            },
        }
    ]
    assert diff.added_sample[0]["ratio"] == "nan"


def test_render_shows_schema_counts_columns_and_samples(tmp_path: Path) -> None:
    old = write(tmp_path, "old", {"id": [1, 2, 3], "v": ["a", "b", "c"], "gone": [1, 2, 3]})
    new = write(tmp_path, "new", {"id": [2, 3, 4], "v": ["b", "[bold]C", "d"], "w": [0, 0, 0]})
    console = Console(record=True, width=120, color_system=None)

    render(diff_tables([old], [new], primary_key=["id"], name="orders"), console)
    text = " ".join(console.export_text().split())

    for expected in (
        "diff of orders",
        "+ w int64",
        "- gone int64",
        "rows: 3 → 3 (+0)",
        "rows by primary key (id) rows",
        "added 1 removed 1 changed 1 unchanged 1",
        "changed values per column column rows",
        "v 1",
        "added rows (sample of 1) id v w",
        "4 d 0",
        "removed rows (sample of 1) id v gone",
        "1 a 1",
        "changed rows (sample of 1) id column old new",
        "3 v c [bold]C",
    ):
        assert expected in text, expected
    assert "identical" not in text


def test_render_without_a_key_and_when_identical(tmp_path: Path) -> None:
    path = write(tmp_path, "t", {"id": [1, 2], "v": [1, 2]})
    console = Console(record=True, width=100, color_system=None)

    render(diff_tables([path], [path]), console)
    render(diff_tables([path], [path], primary_key=["id"]), console)
    text = console.export_text()

    assert "schema: unchanged" in text
    assert "rows: 2 → 2 (+0)" in text
    assert "rows not compared: no primary key declared" in text
    assert "same schema and row count" in text
    assert text.rstrip().endswith("identical")


def test_importing_the_module_stays_light() -> None:
    code = (
        "import sys, headrace.data.diff; "
        "print(','.join(m for m in ('duckdb', 'pyarrow', 'rich', 'pandas') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == ""


# --- errors ---------------------------------------------------------------------------


@pytest.mark.parametrize("side", ["old", "new"])
def test_a_missing_key_column_names_the_column_and_the_side(tmp_path: Path, side: str) -> None:
    with_key = write(tmp_path, "with", {"id": [1], "v": [1]})
    without = write(tmp_path, "without", {"ident": [1], "v": [1]})
    old, new = (without, with_key) if side == "old" else (with_key, without)

    with pytest.raises(PrimaryKeyMissingError) as caught:
        diff_tables([old], [new], primary_key=["id"], name="orders")

    assert caught.value.side == side
    assert caught.value.column == "id"
    assert str(caught.value) == (
        f"primary key column 'id' is missing from the {side} side of 'orders'; "
        "its columns are: ident, v"
    )
    assert isinstance(caught.value, HeadraceError)


def test_a_key_column_of_incompatible_types_is_refused(tmp_path: Path) -> None:
    old = write(tmp_path, "old", {"id": [1, 2]})
    new = write(tmp_path, "new", {"id": ["1", "2"]})

    with pytest.raises(PrimaryKeyTypeError, match="'id' of 'orders' is int64 on the old side"):
        diff_tables([old], [new], primary_key=["id"], name="orders")


@pytest.mark.parametrize("side", ["old", "new"])
def test_duplicate_keys_are_counted_with_a_sample(tmp_path: Path, side: str) -> None:
    unique = write(tmp_path, "unique", {"k": ["a", "b", "c"], "n": [1, 1, 1], "v": [0, 0, 0]})
    dupes = write(
        tmp_path,
        "dupes",
        {"k": ["b", "a", "a", "b", "c", "b", "a"], "n": [1, 2, 2, 1, 1, 1, 3], "v": list(range(7))},
    )
    old, new = (dupes, unique) if side == "old" else (unique, dupes)

    with pytest.raises(DuplicateKeyError) as caught:
        diff_tables([old], [new], primary_key=["k", "n"], name="orders")

    error = caught.value
    assert (error.side, error.duplicates, error.sample_count) == (side, 2, 2)
    assert error.sample_key == {"k": "a", "n": 2}
    assert str(error) == (
        f"the primary key k, n of 'orders' is not unique on the {side} side: 2 key value(s) "
        "occur on more than one row, e.g. k='a', n=2 on 2 rows"
    )


def test_duplicates_across_files_of_one_side_are_found(tmp_path: Path) -> None:
    one = write(tmp_path, "one", {"id": [1, 2]})
    two = write(tmp_path, "two", {"id": [2, 3]})

    with pytest.raises(DuplicateKeyError, match="on the new side: 1 key value"):
        diff_tables([one], [one, two], primary_key=["id"])


def test_a_missing_file_names_the_path_and_side(tmp_path: Path) -> None:
    present = write(tmp_path, "present", {"id": [1]})
    missing = tmp_path / "missing.parquet"

    with pytest.raises(DiffFileError) as caught:
        diff_tables([present], [present, missing], name="orders")

    assert (caught.value.side, caught.value.path) == ("new", str(missing))
    assert str(caught.value) == f"the new file {missing} of 'orders' does not exist"


def test_a_file_that_is_not_parquet_is_refused(tmp_path: Path) -> None:
    present = write(tmp_path, "present", {"id": [1]})
    junk = tmp_path / "junk.parquet"
    junk.write_text("not parquet")

    with pytest.raises(DiffFileError, match=r"cannot read the old file .*junk\.parquet"):
        diff_tables([junk], [present])


def test_files_of_one_side_with_conflicting_types_are_refused(tmp_path: Path) -> None:
    a = write(tmp_path, "a", {"id": [1], "v": [1]})
    b = write(tmp_path, "b", {"id": [2], "v": ["x"]})

    with pytest.raises(DiffError, match="the old files of 'table' disagree on a column's type"):
        diff_tables([a, b], [a])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sample": -1}, "sample must be a whole number >= 0"),
        ({"primary_key": []}, "names no column"),
        ({"primary_key": ["id", "id"]}, "repeats a column"),
        ({"primary_key": ["id"], "memory_limit": "lots"}, "cannot start the diff"),
    ],
)
def test_bad_arguments_are_refused(tmp_path: Path, kwargs: dict[str, Any], message: str) -> None:
    path = write(tmp_path, "t", {"id": [1]})

    with pytest.raises(DiffError, match=message):
        diff_tables([path], [path], **kwargs)


def test_a_side_needs_a_list_of_files(tmp_path: Path) -> None:
    path = write(tmp_path, "t", {"id": [1]})

    with pytest.raises(DiffError, match="the old side of 'table' has no Parquet files"):
        diff_tables([], [path])
    with pytest.raises(DiffError, match="must be a list of Parquet files"):
        diff_tables(path, [path])  # type: ignore[arg-type]


def test_errors_survive_pickling(tmp_path: Path) -> None:
    path = write(tmp_path, "t", {"id": [1, 1]})
    with pytest.raises(DuplicateKeyError) as caught:
        diff_tables([path], [path], primary_key=["id"])

    copy = pickle.loads(pickle.dumps(caught.value))

    assert str(copy) == str(caught.value)
    assert (copy.side, copy.duplicates, copy.sample_key) == ("old", 1, {"id": 1})


# --- millions of rows -----------------------------------------------------------------

ROWS = 3_000_000
BATCH = 500_000
ADDED = 5_000
RSS_RATIO = 0.75  # of the Arrow size of both tables, the least pandas needs to hold them

_MEASURE = textwrap.dedent(
    """
    import json, resource, subprocess, sys
    if sys.argv[1] == "measure":
        # This process's only child is the diff: RUSAGE_CHILDREN is its peak alone.
        done = subprocess.run(
            [sys.executable, "-c", sys.argv[2], "diff", *sys.argv[3:]],
            capture_output=True, text=True, check=True,
        )
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB elsewhere
        print(json.dumps({"peak_bytes": peak * scale, **json.loads(done.stdout)}))
    else:
        import time
        from headrace.data.diff import diff_tables
        started = time.perf_counter()
        diff = diff_tables(
            [sys.argv[2]], [sys.argv[3]], primary_key=["id"], memory_limit=sys.argv[4]
        )
        print(json.dumps({"seconds": time.perf_counter() - started, "diff": diff.to_dict()}))
    """
)


def _orders(ids: Any, np: Any, *, new: bool) -> pa.RecordBatch:
    """Six columns derived from the id; ``new`` applies the changes the test expects."""
    customer = pc.utf8_lpad(pc.cast(pa.array(ids % 100_000), pa.string()), width=7, padding="0")
    qty = ids % 97
    price = (ids % 1000) / 10
    status = pa.array(np.array(["open", "shipped", "delivered", "returned"])[ids % 4])
    price_missing = None
    if new:
        qty = qty + (ids % 100 == 7)  # 30,000 rows
        price_missing = ids % 1000 == 3  # 3,000 rows
        status = pc.if_else(pa.array(ids % 1000 == 407), "cancelled", status)  # 3,000 rows
    return pa.RecordBatch.from_pydict(
        {
            "id": pa.array(ids),
            "customer": pc.binary_join_element_wise(
                "customer-", customer, " <customer-", customer, "@example.com>", ""
            ),
            "qty": pa.array(qty),
            "price": pa.array(price, mask=price_missing),
            "status": status,
            "ts": pa.array(1_700_000_000_000_000 + ids * 1_000_000, pa.timestamp("us")),
        }
    )


def _write_orders(old_path: Path, new_path: Path) -> int:
    """Write both versions batch by batch; return the Arrow size of both tables."""
    np = pytest.importorskip("numpy")
    size = 0
    schema = _orders(np.arange(1), np, new=False).schema
    with pq.ParquetWriter(old_path, schema) as old, pq.ParquetWriter(new_path, schema) as new:
        for start in range(0, ROWS, BATCH):
            ids = np.arange(start, start + BATCH, dtype=np.int64)
            old_batch = _orders(ids, np, new=False)
            new_batch = _orders(ids[ids % 1000 != 1], np, new=True)  # 3,000 removed
            old.write_batch(old_batch)
            new.write_batch(new_batch)
            size += old_batch.nbytes + new_batch.nbytes
        added = _orders(np.arange(ROWS, ROWS + ADDED, dtype=np.int64), np, new=False)
        new.write_batch(added)
        size += added.nbytes
    return size


@pytest.mark.slow
@pytest.mark.integration
def test_diff_of_millions_of_rows_stays_within_memory(tmp_path: Path) -> None:
    old_path, new_path = tmp_path / "old.parquet", tmp_path / "new.parquet"
    arrow_bytes = _write_orders(old_path, new_path)

    done = subprocess.run(
        [
            sys.executable,
            "-c",
            _MEASURE,
            "measure",
            _MEASURE,
            str(old_path),
            str(new_path),
            "256MB",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    measured = json.loads(done.stdout)
    diff = measured["diff"]
    peak = measured["peak_bytes"]

    assert (diff["old_rows"], diff["new_rows"]) == (ROWS, ROWS - 3_000 + ADDED)
    assert diff["added_rows"] == ADDED
    assert diff["removed_rows"] == 3_000
    assert diff["changed_rows"] == 33_000
    assert diff["unchanged_rows"] == ROWS - 3_000 - 33_000
    assert diff["changed_columns"] == {
        "customer": 0,
        "qty": 30_000,
        "price": 3_000,
        "status": 3_000,
        "ts": 0,
    }
    assert [row["id"] for row in diff["added_sample"]] == list(range(ROWS, ROWS + 5))
    assert [row["id"] for row in diff["removed_sample"]] == [1, 1001, 2001, 3001, 4001]
    assert [entry["key"]["id"] for entry in diff["changed_sample"]] == [3, 7, 107, 207, 307]
    assert diff["changed_sample"][0]["changes"] == {"price": {"old": 0.3, "new": None}}
    assert diff["changed_sample"][1]["changes"] == {"qty": {"old": 7, "new": 8}}
    assert not diff["identical"]

    # Loading both tables, as Arrow or pandas, needs at least arrow_bytes; the diff
    # streams them and stays well below.
    print(
        f"diff of 2 x {ROWS:,} rows: {measured['seconds']:.1f} s, peak RSS "
        f"{peak / 2**20:.0f} MiB; both tables in Arrow: {arrow_bytes / 2**20:.0f} MiB"
    )
    assert arrow_bytes > 500 * 2**20
    assert peak < RSS_RATIO * arrow_bytes
    assert peak < 1.5 * 2**30

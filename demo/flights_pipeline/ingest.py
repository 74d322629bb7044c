"""Ingest: each month's landed flight file becomes a version of ``raw_flights``, then is typed."""

from __future__ import annotations

from pathlib import Path

import polars as pl

import headrace as hr
from flights_pipeline.sources import NULL_VALUES, landing_file
from headrace import checks as c

#: One partition per month of 2013: ``2013-01`` ... ``2013-12``.
MONTHS = hr.monthly("2013-01", "2013-12")
OWNER = "data-platform"
NEW_YORK = "America/New_York"

#: Columns of the flights file holding whole numbers (times as HHMM, delays in minutes).
INTEGER_COLUMNS = (
    "year",
    "month",
    "day",
    "dep_time",
    "sched_dep_time",
    "dep_delay",
    "arr_time",
    "sched_arr_time",
    "arr_delay",
    "flight",
    "air_time",
    "distance",
    "hour",
    "minute",
)
TEXT_COLUMNS = ("carrier", "tailnum", "origin", "dest")


def landed_version(partition: str, workspace_root: str, landing_dir: str = "landing") -> str:
    """A fingerprint of a month's landed file: a file landed again is ingested again."""
    stat = (Path(workspace_root) / landing_file(landing_dir, partition)).stat()
    return f"{stat.st_size}:{stat.st_mtime_ns}"


@hr.asset(
    partitions=MONTHS,
    group="ingest",
    owner=OWNER,
    tags=("nycflights13", "landing", "monthly"),
    # A month's file may land late: wait for it a little before failing the partition.
    retry=hr.RetryPolicy(max_retries=2, delay=0.5, retry_on=(FileNotFoundError,)),
    source_version=landed_version,
    # kept as landed, text only: an empty file is the one thing refused here
    checks=[c.row_count(min=1)],
)
def raw_flights(
    partition: str, context: hr.StepContext | None = None, *, landing_dir: str = "landing"
) -> pl.DataFrame:
    """One month of flights exactly as landed: every column kept as text.

    Reads ``flights-YYYY-MM.csv`` from ``landing_dir`` (a run param, relative to the
    workspace). Nothing is parsed yet, so a malformed file still lands and
    ``flights_clean`` says what is wrong. A file landed again (new size or time) is
    ingested again; an unchanged one is served from the cache.
    """
    root = context.workspace_root if context is not None else Path()
    path = root / landing_file(landing_dir, partition)
    table = pl.read_csv(path, infer_schema=False, null_values=NULL_VALUES)
    if context is not None:
        context.log.info("read %s: %d rows, %d columns", path, table.height, table.width)
    return table


#: The gate every month passes before it reaches ``main``: broken keys quarantine the
#: month; the data set's real dirt (cancelled flights, delays over 20 hours) is reported.
CLEAN_CHECKS = [
    *(
        c.not_null(column)
        for column in (
            "year",
            "month",
            "day",
            "carrier",
            "flight",
            "origin",
            "dest",
            "sched_dep_time",
        )
    ),
    c.unique("flight_id"),
    c.between("month", 1, 12),
    c.in_set("origin", ["EWR", "JFK", "LGA"]),
    c.references("carrier", "airlines"),
    # Warnings: the data set's real dirt, reported on every month, not hidden.
    c.not_null("dep_time", severity="warn", name="departed"),
    c.references("tailnum", "planes", severity="warn", name="plane_known"),
    c.between("dep_delay", max=20 * 60, severity="warn", name="dep_delay_under_20h"),
    c.between("arr_delay", -120, 20 * 60, severity="warn", name="arr_delay_plausible"),
    # Statistical process control: a month far from the months before it is flagged.
    c.anomaly("row_count", window=12, min_history=4),
    c.anomaly("null_fraction", "dep_time", window=12, min_history=4),
]


@hr.asset(
    partitions=MONTHS,
    group="ingest",
    owner=OWNER,
    tags=("nycflights13", "monthly"),
    primary_key="flight_id",
    checks=CLEAN_CHECKS,
)
def flights_clean(raw_flights: pl.DataFrame) -> pl.DataFrame:
    """One month of flights, typed, with the scheduled departure hour in UTC.

    - ``flight_id`` identifies a flight: its month times 100,000 plus its line in the
      month's file (the landed files keep the data set's order);
    - whole-number columns are cast leniently: a value that is not a number becomes
      null, and the checks (keys not null, origins known, ...) quarantine such a month;
    - ``sched_dep_local`` is the scheduled departure in New York local time, and
      ``sched_dep_hour`` its hour in UTC (the key of the weather table);
    - cancelled flights (no departure time) are kept and flagged ``cancelled``.
    """
    typed = raw_flights.select(
        *(pl.col(name).cast(pl.Int64, strict=False) for name in INTEGER_COLUMNS),
        *(pl.col(name).cast(pl.String) for name in TEXT_COLUMNS),
    )
    # Out-of-range clock values (a broken file) become null rather than failing the
    # build: the checks then decide whether the month may land.
    typed = typed.with_columns(
        hour=pl.when(pl.col("hour").is_between(0, 23)).then(pl.col("hour")),
        minute=pl.when(pl.col("minute").is_between(0, 59)).then(pl.col("minute")),
        month=pl.when(pl.col("month").is_between(1, 12)).then(pl.col("month")),
        day=pl.when(pl.col("day").is_between(1, 31)).then(pl.col("day")),
    )
    local_hour = pl.datetime("year", "month", "day", "hour")
    return typed.with_columns(
        flight_id=pl.col("month") * 100_000 + pl.int_range(pl.len(), dtype=pl.Int64),
        sched_dep_local=pl.datetime("year", "month", "day", "hour", "minute"),
        sched_dep_hour=local_hour.dt.replace_time_zone(
            NEW_YORK, ambiguous="earliest", non_existent="null"
        ).dt.convert_time_zone("UTC"),
        cancelled=pl.col("dep_time").is_null(),
    )

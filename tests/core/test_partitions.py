from __future__ import annotations

import datetime as dt

import pytest

import headrace as hr
from headrace.core.errors import PartitionError
from headrace.core.partitions import parse_partition_arg


def test_monthly_keys_offsets_and_windows() -> None:
    months = hr.monthly("2013-01", "2013-12")
    assert months.keys()[:3] == ["2013-01", "2013-02", "2013-03"]
    assert len(months.keys()) == 12
    assert months.offset("2013-01", -1) is None
    assert months.offset("2013-02", -1) == "2013-01"
    assert months.offset("2013-12", 1) is None
    assert months.window("2013-02") == (dt.date(2013, 2, 1), dt.date(2013, 3, 1))
    assert months.key_range("2013-11", "2013-12") == ["2013-11", "2013-12"]


def test_monthly_crosses_years_and_open_end_stops_at_until() -> None:
    months = hr.monthly("2012-11")
    assert months.keys(until=dt.date(2013, 2, 10)) == ["2012-11", "2012-12", "2013-01", "2013-02"]
    assert months.offset("2012-12", 1) == "2013-01"


def test_daily_partitions() -> None:
    days = hr.daily("2024-02-27", "2024-03-02")
    assert days.keys() == ["2024-02-27", "2024-02-28", "2024-02-29", "2024-03-01", "2024-03-02"]
    assert days.window("2024-02-29") == (dt.date(2024, 2, 29), dt.date(2024, 3, 1))


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("2013-13", "not a month"),
        ("2013-1", "not a month"),
        ("july", "not a month"),
        ("2012-12", "outside"),
        ("2014-01", "outside"),
    ],
)
def test_monthly_rejects_bad_keys(key: str, message: str) -> None:
    with pytest.raises(PartitionError, match=message):
        hr.monthly("2013-01", "2013-12").validate_key(key)


def test_static_partitions() -> None:
    regions = hr.static(["eu", "us", "apac"])
    assert regions.keys() == ["eu", "us", "apac"]
    assert regions.offset("us", -1) == "eu"
    assert regions.key_range("eu", "us") == ["eu", "us"]
    with pytest.raises(PartitionError, match="unknown partition 'mars'"):
        regions.validate_key("mars")
    with pytest.raises(PartitionError, match="listed twice"):
        hr.static(["a", "a"])
    with pytest.raises(PartitionError, match="at least one"):
        hr.static([])
    with pytest.raises(PartitionError, match="may not contain"):
        hr.static(["a[1]"])


def test_bad_definitions_and_ranges() -> None:
    with pytest.raises(PartitionError, match="before their start"):
        hr.monthly("2013-05", "2013-01")
    with pytest.raises(PartitionError, match="not a date"):
        hr.daily("yesterday")
    with pytest.raises(PartitionError, match="is empty"):
        hr.monthly("2013-01", "2013-12").key_range("2013-05", "2013-02")
    assert parse_partition_arg("2013-01..2013-03") == ("2013-01", "2013-03")
    assert parse_partition_arg("2013-01") == ("2013-01", None)
    with pytest.raises(PartitionError, match=r"START\.\.END"):
        parse_partition_arg("2013-01..")

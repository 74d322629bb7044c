"""Profiles kept with versions, and check history with control limits, on SQLite and
PostgreSQL."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from headrace.store import MetadataStore
from headrace.store.runs import NewVersion

from .builders import make_run, make_version, success


@dataclass
class FakeProfile:
    rows: int
    seconds: float = 0.25
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "columns": [], **self.extra}


@pytest.fixture
def run_id(store: MetadataStore) -> str:
    run = make_run()
    store.runs.create(run, [])
    return run.id


def record(
    store: MetadataStore, run_id: str, asset: str, *, at: float, partition: str | None = None
) -> NewVersion:
    version = make_version(asset, partition=partition)
    key = asset if partition is None else f"{asset}[{partition}]"
    store.runs.step_finished(success(run_id, key, version, at=at), branch="main")
    return version


def result(name: str, observed: Any, *, passed: bool = True, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "kind": extra.pop("kind", "mean"),
        "columns": ("x",),
        "severity": "error",
        "passed": passed,
        "observed": observed,
        "threshold": "≤ 10",
        "failing_rows": None,
        "failing_fraction": None,
        "sample": [],
        "message": "",
        **extra,
    }


def test_save_get_replace_and_history(store: MetadataStore, run_id: str) -> None:
    first = record(store, run_id, "orders", at=1.0)
    second = record(store, run_id, "orders", at=2.0, partition="2024-01")
    other = record(store, run_id, "other", at=3.0)
    assert store.profiles.get(first.id) is None

    store.profiles.save(first, FakeProfile(10, extra={"note": "<b>"}), at=100.0)
    store.profiles.save(second, FakeProfile(20), at=101.0)
    store.profiles.save(other, FakeProfile(30), at=102.0)
    got = store.profiles.get(first.id)
    assert got is not None
    assert (got.asset, got.partition, got.rows, got.seconds, got.created_at) == (
        "orders",
        None,
        10,
        0.25,
        100.0,
    )
    assert got.profile == {"rows": 10, "columns": [], "note": "<b>"}

    store.profiles.save(first, FakeProfile(11), at=103.0)  # profiling again replaces
    again = store.profiles.get(first.id)
    assert again is not None and again.rows == 11 and again.created_at == 103.0

    history = store.profiles.history("orders")
    assert [(h.version_id, h.partition) for h in history] == [
        (second.id, "2024-01"),
        (first.id, None),
    ]
    assert [h.version_id for h in store.profiles.history("orders", limit=1)] == [first.id]
    assert store.profiles.history("nothing") == []


def test_check_history_keeps_the_latest_result_per_version_oldest_version_first(
    store: MetadataStore, run_id: str
) -> None:
    old = record(store, run_id, "orders", at=1.0)
    new = record(store, run_id, "orders", at=2.0)
    elsewhere = record(store, run_id, "other", at=3.0)
    # Recorded out of order: the newer version was checked first.
    store.quality.record(new, [result("m", 5.0, lower=1.0, upper=9.0)], at=50.0)
    store.quality.record(old, [result("m", 3.0), result("rows", 7, kind="row_count")], at=60.0)
    # The old version checked again later: that result replaces the first one.
    store.quality.record(old, [result("m", 12.0, passed=False, lower=0.5, upper=10.0)], at=70.0)
    store.quality.record(elsewhere, [result("m", 99.0)], at=80.0)

    points = store.profiles.check_history("orders")
    assert [(p.name, p.version_id, p.observed, p.passed) for p in points] == [
        ("m", old.id, 12.0, False),
        ("rows", old.id, 7, True),
        ("m", new.id, 5.0, True),
    ]
    m_old = points[0]
    assert (m_old.lower, m_old.upper, m_old.checked_at) == (0.5, 10.0, 70.0)
    assert (points[1].lower, points[1].upper) == (None, None)
    assert points[2].version_created_at > m_old.version_created_at

    latest_only = store.profiles.check_history("orders", limit=1)
    assert [(p.name, p.version_id) for p in latest_only] == [("rows", old.id), ("m", new.id)]
    assert store.profiles.check_history("nothing") == []

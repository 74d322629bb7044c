"""The self-contained HTML quality report, and profiling stored versions."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

import headrace as hr
from headrace.core.errors import SelectionError
from headrace.orchestration.testing import check_asset
from headrace.quality.profile import ProfileError, TableProfile, profile
from headrace.quality.profiling import profile_asset, stored_or_new, versions_of
from headrace.quality.report import ReportData, build_report, render_report, write_report
from headrace.store.errors import VersionNotFoundError
from headrace.store.quality import CheckRecord
from tests.projects import open_project

EVIL = "<script>alert(1)</script>"

PROJECT = f"""
import pandas as pd
from headrace import checks as c

@hr.asset(checks=[
    c.not_null("id"),
    c.mean("amount", min=0, max=100),
    c.between("amount", 0, 50, severity="warn"),
    c.schema({{"id": "Int64"}}),
])
def orders(*, shift: int = 0) -> pd.DataFrame:
    amounts = [10.0 + shift, 20.0 + shift, 30.0 + shift, 40.0 + shift]
    return pd.DataFrame({{
        "id": [1, 2, 3, 4],
        "amount": amounts,
        "origin": ["EWR", "JFK", "EWR", None],
        {EVIL!r}: ["{EVIL}", "a", "b", "c"],
    }})

@hr.asset(partitions=hr.static(["east", "west"]))
def regions(partition: str) -> pd.DataFrame:
    return pd.DataFrame({{"n": [1, 2, 3] if partition == "east" else [4, 5]}})

@hr.asset
def settings() -> dict:
    return {{"a": 1}}
"""


@pytest.fixture
def ws(tmp_path: Path) -> hr.Workspace:
    workspace = open_project(tmp_path, PROJECT)
    for shift in (0, 5, 30, 2):  # shift 30 makes amounts above 50: the warn check fails
        assert hr.materialize("orders", params={"shift": shift}, workspace=workspace).success
    assert hr.materialize("regions settings", workspace=workspace).success
    return workspace


def _svgs(page: str) -> list[str]:
    return re.findall(r"<svg\b.*?</svg>", page, flags=re.S)


def test_the_report_is_one_self_contained_page(ws: hr.Workspace, tmp_path: Path) -> None:
    path = write_report(ws, "orders", tmp_path / "out" / "orders.html")
    assert path == (tmp_path / "out" / "orders.html").resolve()
    page = path.read_text()
    head = ws.store.versions.heads("main", ["orders"])[("orders", None)]

    assert page.startswith("<!DOCTYPE html>")
    assert "<h1>orders</h1>" in page and head.id in page and "<b>4</b> rows" in page
    # Nothing is fetched: no script, no stylesheet or image link, no URL at all.
    for forbidden in ("<script", "http://", "https://", "<link", " src=", "@import"):
        assert forbidden not in page, forbidden
    # The malicious column name and value are shown, escaped.
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page

    svgs = _svgs(page)
    histograms = [s for s in svgs if 'class="hist"' in s]
    assert len(histograms) == 2  # id and amount are numeric
    charts = re.findall(r'<figure class="chart" id="chart-([^"]+)">', page)
    # Every check with a numeric observed value; not the schema check (text).
    assert set(charts) == {"id_not_null", "amount_mean", "amount_between"}
    by_chart = dict(zip(charts, [s for s in svgs if 'class="hist"' not in s], strict=True))
    assert "failed" in by_chart["amount_between"] and "#dc2626" in by_chart["amount_between"]
    assert "#dc2626" not in by_chart["amount_mean"]
    assert "limits" in by_chart["amount_mean"]  # the mean's bounds are drawn
    assert "limits" not in by_chart["amount_between"]  # bounds on values, not on a count
    # Ids inside the inline SVGs do not collide between charts.
    ids = re.findall(r'\bid="([^"]+)"', "".join(by_chart.values()))
    assert len(ids) == len(set(ids))

    assert "No check results" not in page
    assert "amount_mean" in page and "≥ 0 and ≤ 100" in page


def test_report_data_has_one_point_per_version_even_when_checked_again(
    ws: hr.Workspace,
) -> None:
    check_asset(ws, "orders")  # the head checked a second time
    data = build_report(ws, "orders")
    per_check: dict[str, int] = {}
    for point in data.history:
        per_check[point.name] = per_check.get(point.name, 0) + 1
    assert per_check == {"id_not_null": 4, "amount_mean": 4, "amount_between": 4, "schema": 4}
    means = [p.observed for p in data.history if p.name == "amount_mean"]
    assert means == [25.0, 30.0, 55.0, 27.0]  # oldest version first
    passed = [p.passed for p in data.history if p.name == "amount_between"]
    assert passed == [True, True, False, True]
    assert {r.name for r in data.results} == set(per_check)


def test_the_report_uses_the_stored_profile_or_makes_one(ws: hr.Workspace) -> None:
    head = ws.store.versions.heads("main", ["orders"])[("orders", None)]
    assert ws.store.profiles.get(head.id) is None
    data = build_report(ws, "orders")
    stored = ws.store.profiles.get(head.id)
    assert stored is not None and stored.rows == 4
    assert TableProfile.from_dict(stored.profile) == data.profile
    assert stored_or_new(ws, head) == data.profile


def test_partitioned_assets_are_profiled_partition_by_partition(ws: hr.Workspace) -> None:
    profiled = profile_asset(ws, "regions")
    assert [(p.version.partition, p.profile.rows) for p in profiled] == [("east", 3), ("west", 2)]
    for item in profiled:
        stored = ws.store.profiles.get(item.version.id)
        assert stored is not None and stored.partition == item.version.partition
    only = profile_asset(ws, "regions", partition="west")
    assert [p.version.partition for p in only] == ["west"]
    # The report shows the last partition unless told otherwise.
    assert build_report(ws, "regions").version.partition == "west"
    assert build_report(ws, "regions", partition="east").profile.rows == 3


def test_bad_requests_are_refused_clearly(ws: hr.Workspace) -> None:
    with pytest.raises(SelectionError, match=r"unknown asset 'ordres' \(did you mean 'orders'"):
        versions_of(ws, "ordres")
    with pytest.raises(ProfileError, match="settings is stored as json, not a table"):
        profile_asset(ws, "settings")
    other = ws.store.versions.heads("main", ["regions"])[("regions", "east")]
    with pytest.raises(VersionNotFoundError, match="belongs to asset 'regions', not 'orders'"):
        versions_of(ws, "orders", version=other.id)
    with pytest.raises(VersionNotFoundError, match="no version on branch 'dev'"):
        build_report(ws, "orders", branch="dev")
    with pytest.raises(VersionNotFoundError, match=r"no partition 'north'.*\(it has east, west\)"):
        profile_asset(ws, "regions", partition="north")
    with pytest.raises(VersionNotFoundError, match="is of partition 'east', not 'west'"):
        versions_of(ws, "regions", version=other.id, partition="west")


def _record(name: str, **fields: object) -> CheckRecord:
    values: dict[str, object] = {
        "version_id": "v" * 32,
        "asset": "t",
        "partition": None,
        "run_id": None,
        "name": name,
        "kind": "in_set",
        "columns": (EVIL,),
        "severity": "error",
        "passed": False,
        "observed": 1,
        "threshold": f"in {{'{EVIL}'}}",
        "failing_rows": 1,
        "failing_fraction": 0.5,
        "sample": [{EVIL: EVIL, "id": 1}],
        "message": f"bad {EVIL}",
        "created_at": 1.0,
    }
    values.update(fields)
    return CheckRecord(**values)  # type: ignore[arg-type]


def test_every_string_is_escaped_in_a_rendered_report() -> None:
    import polars as pl

    from headrace.store.records import VersionRecord

    table = profile(pl.DataFrame({EVIL: [EVIL, "x"], "n": [1.0, 2.0]}))
    version = VersionRecord(
        id="v" * 32,
        asset="t",
        partition=EVIL,
        kind="table",
        format="parquet",
        flavor="polars",
        blob="b" * 64,
        size=1,
        row_count=2,
        schema=None,
        run_id=None,
        step_key=None,
        code_version=None,
        params={},
        cache_key=None,
        created_at=time.time(),
    )
    data = ReportData(
        asset="t",
        branch=EVIL,
        version=version,
        profile=table,
        profiled_at=None,
        results=[_record("x_in_set"), _record("ok", passed=True, sample=[], message=None)],
    )
    page = render_report(data)
    assert "<script" not in page
    assert page.count("&lt;script&gt;") >= 6  # name, value, partition, branch, sample, message
    assert "No check with a numeric observed value has a history yet." in page
    assert "1 failing row of <b>x_in_set</b>" in page

"""Checks on assets: a failed error check quarantines the version and stops downstream."""

from __future__ import annotations

from pathlib import Path

import pytest

import headrace as hr
from headrace.data.branching import create_branch, merge
from headrace.data.quarantine import discard, release
from headrace.store.errors import MergeRefusedError, StoreError
from tests.integration.conftest import run_cli
from tests.projects import open_project

PROJECT = """
import pandas as pd
from headrace import checks as c

@hr.asset(
    partitions=hr.static(["good", "bad"]),
    checks=[
        c.not_null("id"),
        c.between("amount", 0, 100),
        c.between("amount", 0, 50, severity="warn", name="amount_usual"),
    ],
)
def orders(partition: str, *, bad_rows: int = 2) -> pd.DataFrame:
    amounts = [10.0, 60.0, 30.0]
    if partition == "bad":
        amounts += [500.0] * bad_rows
    return pd.DataFrame({"id": range(len(amounts)), "amount": amounts})

@hr.asset
def total(orders: pd.DataFrame) -> int:
    return int(orders.amount.sum())

@hr.asset(partitions=hr.static(["good", "bad"]))
def per_partition(orders: pd.DataFrame) -> int:
    return len(orders)
"""


def test_a_failed_error_check_quarantines_and_stops_downstream(tmp_path: Path) -> None:
    ws = open_project(tmp_path, PROJECT)
    result = hr.materialize(workspace=ws)
    assert result.steps["orders[good]"].status == "success"
    assert "warnings: amount_usual" in (result.steps["orders[good]"].reason or "")
    bad = result.steps["orders[bad]"]
    assert bad.status == "failed"
    assert "checks failed: amount_between (2 of 5 rows fail" in (bad.error or "")
    assert "quarantined" in (bad.error or "")
    assert result.steps["per_partition[good]"].status == "success"
    assert result.steps["per_partition[bad]"].status == "upstream_failed"
    assert result.steps["total"].status == "upstream_failed"
    # The bad version is kept, inspectable, and not on main.
    held = ws.store.quality.quarantined()
    assert [(q.asset, q.partition) for q in held] == [("orders", "bad")]
    assert ws.store.versions.get(held[0].version_id).row_count == 5
    assert ("orders", "bad") not in ws.store.versions.heads("main")
    results = {r.name: r for r in ws.store.quality.results(held[0].version_id)}
    assert results["amount_between"].failing_rows == 2 and not results["amount_between"].passed
    assert [row["amount"] for row in results["amount_between"].sample] == [500.0, 500.0]
    assert results["id_not_null"].passed
    # Results accumulate per version, for history (and control charts).
    good_history = ws.store.quality.history("orders", "amount_usual")
    assert [r.passed for r in good_history] == [False, False]


def test_release_and_discard_are_a_persons_decisions(tmp_path: Path) -> None:
    ws = open_project(tmp_path, PROJECT)
    hr.materialize("orders", workspace=ws)
    held = ws.store.quality.quarantined()[0]
    released = release(ws, held.version_id[:16])
    assert released.status == "released" and released.decided_by
    assert ws.store.versions.heads("main")[("orders", "bad")].id == held.version_id
    assert ws.store.branches.log(branch="main", limit=1)[0].kind == "release"
    with pytest.raises(StoreError, match="already released"):
        discard(ws, held.version_id)
    hr.materialize("orders", workspace=ws, params={"bad_rows": "3"}, partitions="bad")
    newer = ws.store.quality.quarantined()[0]
    assert discard(ws, newer.version_id).status == "discarded"
    assert ws.store.versions.heads("main")[("orders", "bad")].id == held.version_id


def test_merge_refuses_versions_with_failed_error_checks(tmp_path: Path) -> None:
    ws = open_project(tmp_path, PROJECT)
    hr.materialize("orders", workspace=ws, partitions="good")
    create_branch(ws, "dev")
    hr.materialize("orders", workspace=ws, branch="dev", partitions="bad")
    held = ws.store.quality.quarantined(branch="dev")[0]
    assert merge(ws, "dev", dry_run=True).moves == []  # nothing held reaches the branch
    release(ws, held.version_id)  # a person lets it onto dev: released versions may merge
    assert [m.asset for m in merge(ws, "dev", dry_run=True).moves] == ["orders"]
    # A version whose error checks failed and nobody released is refused by the gate.
    from headrace.store.schema import quarantine

    with ws.store.write() as c:
        c.execute(quarantine.update().values(status="held"))
    with pytest.raises(
        MergeRefusedError,
        match=r"orders\[bad\] version .* failed error checks: "
        r"amount_between",
    ):
        merge(ws, "dev")


@pytest.mark.integration
def test_quarantine_cli(tmp_path: Path) -> None:
    open_project(tmp_path, PROJECT)
    failed = run_cli(tmp_path, "materialize", "orders")
    assert failed.returncode == 1 and "checks failed" in failed.stdout
    listed = run_cli(tmp_path, "quarantine", "list", check=True)
    assert "orders[bad]" in listed.stdout
    version = listed.stdout.split("orders[bad]")[0].split()[-1]
    shown = run_cli(tmp_path, "quarantine", "show", version, check=True)
    assert "amount_between" in shown.stdout and "500.0" in shown.stdout
    released = run_cli(tmp_path, "quarantine", "release", version, check=True)
    assert "now points at it" in released.stdout
    assert "nothing in quarantine" in run_cli(tmp_path, "quarantine", "list", check=True).stdout

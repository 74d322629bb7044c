"""Testing stored data against checks added later, from Python and the CLI (JUnit XML)."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import headrace as hr
from headrace.orchestration.testing import check_asset, check_selection, write_junit
from tests.integration.conftest import run_cli
from tests.projects import OPENED, open_project

UNCHECKED = """
import pandas as pd

@hr.asset(partitions=hr.static(["good", "bad"]))
def orders(partition: str) -> pd.DataFrame:
    amounts = [10.0, 20.0] + ([900.0] if partition == "bad" else [])
    return pd.DataFrame({"id": range(len(amounts)), "amount": amounts})

@hr.asset
def plain() -> int:
    return 1
"""

CHECKED = UNCHECKED.replace(
    '@hr.asset(partitions=hr.static(["good", "bad"]))',
    '@hr.asset(partitions=hr.static(["good", "bad"]), checks=['
    'hr.checks.between("amount", 0, 100), hr.checks.unique("id"),'
    ' hr.checks.row_count(min=3, severity="warn")])',
)


def _with_checks(tmp_path: Path) -> hr.Workspace:
    module = f"checked_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text("import headrace as hr\n" + CHECKED)
    ws = hr.open_workspace(tmp_path, project_module=module)
    OPENED.append(ws)
    return ws


def test_checks_added_later_test_the_stored_data(tmp_path: Path) -> None:
    ws = open_project(tmp_path, UNCHECKED)
    assert hr.materialize(workspace=ws).success  # no checks yet: the bad month landed
    checked = _with_checks(tmp_path)
    assert "checks=" in CHECKED
    outcomes = check_asset(checked, "orders")
    by_partition = {o.version.partition: o.report for o in outcomes}
    assert by_partition["good"].success
    assert [r.name for r in by_partition["good"].warnings] == ["row_count"]
    assert not by_partition["bad"].success
    assert by_partition["bad"]["amount_between"].failing_rows == 1
    bad_version = (
        outcomes[0].version if outcomes[0].version.partition == "bad" else outcomes[1].version
    )
    stored = {r.name: r.passed for r in checked.store.quality.results(bad_version.id)}
    assert stored == {"amount_between": False, "id_unique": True, "row_count": True}
    # A stored version with a failed error check cannot be merged anywhere.
    run = check_selection(checked, None)
    assert not run.success and run.errors == 1 and run.checks == 6
    report = tmp_path / "junit.xml"
    write_junit(run, report)
    root = ET.parse(report).getroot()
    assert root.get("failures") == "1" and root.get("tests") == "6"
    failures = root.findall(".//failure")
    assert len(failures) == 1 and failures[0].get("type") == "between"
    assert "1 of 3 rows fail" in (failures[0].get("message") or "")
    with pytest.raises(hr.HeadraceError, match="declares no checks"):
        check_asset(checked, "plain")


@pytest.mark.integration
def test_headrace_test_for_ci(tmp_path: Path) -> None:
    open_project(tmp_path, UNCHECKED)
    assert run_cli(tmp_path, "materialize").returncode == 0
    module = f"checked_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text("import headrace as hr\n" + CHECKED)
    config = tmp_path / "headrace.toml"
    config.write_text(
        "\n".join(
            f'module = "{module}"' if line.startswith("module =") else line
            for line in config.read_text().splitlines()
        )
    )
    failed = run_cli(tmp_path, "test", "--junit-xml", "report.xml")
    assert failed.returncode == 1 and "amount_between" in failed.stdout
    assert (tmp_path / "report.xml").is_file()
    good = run_cli(
        tmp_path, "check", "orders", "--version", failed.stdout.split("orders[good] ")[1].split()[0]
    )
    assert good.returncode == 0 and "passed" in good.stdout

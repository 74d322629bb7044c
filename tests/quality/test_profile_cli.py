"""``headrace profile`` and ``headrace report`` from the command line."""

from __future__ import annotations

from pathlib import Path

import pytest

import headrace as hr
from tests.integration.conftest import run_cli
from tests.projects import write_project

pytestmark = pytest.mark.integration

PROJECT = """
import pandas as pd
from headrace import checks as c

@hr.asset(checks=[c.not_null("id")])
def orders() -> pd.DataFrame:
    return pd.DataFrame({
        "id": [1, 2, 3, 4],
        "amount": [10.5, None, 30.0, 12.0],
        "origin": ["EWR", "JFK", "EWR", "LGA"],
    })

@hr.asset
def settings() -> dict:
    return {"a": 1}
"""


def test_profile_suggest_and_report(tmp_path: Path) -> None:
    write_project(tmp_path, PROJECT)
    run_cli(tmp_path, "materialize", check=True)
    work = tmp_path / "elsewhere"
    work.mkdir()

    shown = run_cli(work, "profile", "orders", check=True)
    assert "orders" in shown.stdout and "4 rows, 3 columns" in shown.stdout
    assert "amount" in shown.stdout and "Float64" in shown.stdout
    assert "EWR (2)" in shown.stdout

    suggested = run_cli(work, "profile", "orders", "--suggest", check=True)
    path = tmp_path / "orders.checks.yaml"  # in the project's folder, not the current one
    assert f"wrote {path}" in suggested.stdout.replace("\n", "")
    text = path.read_text()
    assert "Left out, already declared on the asset: id_not_null." in text
    assert "- in_set: {column: origin, values: [EWR, JFK, LGA]}" in text

    # The project loads with the new suite beside the Python checks, and its data passes.
    checked = run_cli(tmp_path, "check", "orders", check=True)
    assert "passed" in checked.stdout

    refused = run_cli(work, "profile", "orders", "--suggest")
    assert refused.returncode == 1
    assert "already exists; pass --force" in refused.stderr
    assert path.read_text() == text
    path.write_text(text + "# edited\n")
    forced = run_cli(work, "profile", "orders", "--suggest", "--force", check=True)
    assert "wrote" in forced.stdout
    assert path.read_text() == text.replace("# edited\n", "")  # the same checks again

    other = run_cli(work, "profile", "orders", "--suggest", "--output", "more/o.checks.yaml")
    assert other.returncode == 0, other.stderr
    assert (tmp_path / "more" / "o.checks.yaml").exists()

    reported = run_cli(work, "report", "orders", check=True)
    report = work / "orders-report.html"
    assert reported.stdout.strip() == str(report.resolve())
    page = report.read_text()
    assert "<svg" in page and "id_not_null" in page and "<script" not in page


def test_profile_refuses_bad_input(tmp_path: Path) -> None:
    write_project(tmp_path, PROJECT)
    run_cli(tmp_path, "materialize", check=True)

    unknown = run_cli(tmp_path, "profile", "ordrs")
    assert unknown.returncode == 1
    assert "unknown asset 'ordrs' (did you mean 'orders'?)" in unknown.stderr

    not_table = run_cli(tmp_path, "profile", "settings")
    assert not_table.returncode == 1 and "not a table" in not_table.stderr

    with hr.open_workspace(tmp_path) as ws:
        version = ws.store.versions.heads("main", ["settings"])[("settings", None)].id
    wrong = run_cli(tmp_path, "profile", "orders", "--version", version)
    assert wrong.returncode == 1
    assert "belongs to asset 'settings', not 'orders'" in wrong.stderr

    no_branch = run_cli(tmp_path, "report", "orders", "--branch", "nope")
    assert no_branch.returncode == 1 and "no version on branch 'nope'" in no_branch.stderr

    output_alone = run_cli(tmp_path, "profile", "orders", "--output", "x.checks.yaml")
    assert output_alone.returncode != 0 and "add --suggest" in output_alone.stderr
    assert not (tmp_path / "x.checks.yaml").exists()

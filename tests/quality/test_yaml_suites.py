"""Check suites in YAML beside the code."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

import headrace as hr
from headrace.core.checks import CheckDefinitionError
from tests.projects import OPENED, write_project

PROJECT = """
import pandas as pd
from headrace import checks as c

@hr.asset(checks=[c.not_null("id")])
def orders() -> pd.DataFrame:
    return pd.DataFrame({"id": [1, 2, 2], "origin": ["EWR", "JFK", "XXX"], "amount": [1, 2, 3]})
"""


def _project(tmp_path: Path, suite: str) -> hr.Workspace:
    write_project(tmp_path, PROJECT)
    (tmp_path / "orders.checks.yaml").write_text(textwrap.dedent(suite))
    ws = hr.open_workspace(tmp_path)
    OPENED.append(ws)
    return ws


def test_yaml_checks_join_the_python_ones(tmp_path: Path) -> None:
    ws = _project(
        tmp_path,
        """
        asset: orders
        checks:
          - unique: id
          - in_set: {column: origin, values: [EWR, JFK, LGA], severity: warn}
          - between: {column: amount, min: 0, max: 10}
          - row_count: {min: 1}
          - expression: "amount > 0"
          - sql: {query: "SELECT * FROM data WHERE amount > 2", name: big, severity: warn}
        """,
    )
    names = [c.name for c in ws.graph["orders"].checks]
    assert names == [
        "id_not_null",
        "id_unique",
        "origin_in_set",
        "amount_between",
        "row_count",
        "amount_0",
        "big",
    ]
    result = hr.materialize(workspace=ws)
    assert result.steps["orders"].status == "failed"  # id is not unique: quarantined
    assert "id_unique" in (result.steps["orders"].error or "")


@pytest.mark.parametrize(
    ("suite", "message"),
    [
        (
            "asset: orders\nchecks:\n  - not_nul: id\n",
            r"check #1: unknown check 'not_nul' \(did you mean 'not_null'",
        ),
        (
            "asset: orders\nchecks:\n  - between: {column: amount, mn: 0}\n",
            r"check #1: between has no argument 'mn' \(did you mean 'min'",
        ),
        (
            "asset: orders\nchecks:\n  - matches: {column: origin, pattern: '[A-'}\n",
            "check #1: .*does not compile",
        ),
        (
            "asset: ordrs\nchecks:\n  - not_null: id\n",
            r"suite for asset 'ordrs', which is not defined \(did you mean 'orders'",
        ),
        ("asset: orders\nchecks:\n  - not_null: id\n", "two checks are named 'id_not_null'"),
        ("asset: orders\nchecks: [1, 2]\n", "check #1: each check is one 'kind: arguments'"),
        ("asset: orders\nchecks:\n  - between: 3\n", "between takes a column name or a mapping"),
        ("assets: orders\n", "expected 'asset:' and 'checks:'"),
        ("asset: [orders\n", "not valid YAML"),
    ],
)
def test_a_typo_is_named_before_any_data_is_read(tmp_path: Path, suite: str, message: str) -> None:
    ws = _project(tmp_path, suite)
    with pytest.raises(CheckDefinitionError, match=message):
        ws.graph  # noqa: B018

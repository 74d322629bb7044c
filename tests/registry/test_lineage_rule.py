"""``data_checks_passed()`` judges the training data's whole lineage: every version
upstream of the model's input, down to the landed data, checked and passing, with
unchecked and released versions allowed only where the policy says so."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import headrace as hr
from headrace import policies as p
from headrace.core.errors import DefinitionError
from headrace.core.policies import POLICIES
from headrace.data.quarantine import release
from headrace.registry import promotion
from headrace.runtime.workspace import Workspace, open_workspace
from tests.projects import OPENED, close_opened, write_project

PROJECT = """
import pandas as pd
from sklearn.linear_model import LogisticRegression
from headrace import checks as c

@hr.asset
def landed(*, gaps: int = 0) -> pd.DataFrame:  # the landed file: no checks of its own
    x = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    for i in range(int(gaps)):
        x[i] = None
    return pd.DataFrame({"x": x, "y": [0, 1, 0, 1, 0, 1]})

@hr.asset(checks=[c.not_null("x")])
def clean(landed: pd.DataFrame) -> pd.DataFrame:
    return landed

@hr.asset(checks=[c.row_count(min=1)])
def features(clean: pd.DataFrame) -> pd.DataFrame:
    return clean.fillna(0.0)

@hr.model(signature_from="features")
def model(features: pd.DataFrame) -> LogisticRegression:
    return LogisticRegression().fit(features[["x"]], features.y)
"""


@pytest.fixture
def project(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Workspace]:
    root, _ = write_project(tmp_path, PROJECT)
    overrides = {}
    if backend != "sqlite":
        overrides["metadata_url"] = request.getfixturevalue("postgres_url")
    ws = open_workspace(root, **overrides)
    OPENED.append(ws)
    _ = ws.graph  # import the project before the policies are set
    yield ws
    close_opened()


@pytest.fixture(autouse=True)
def _no_policies() -> Iterator[None]:
    POLICIES.clear()
    yield
    POLICIES.clear()


def _verdict(ws: Workspace, version: int | None = None) -> promotion.Verdict:
    [verdict] = promotion.evaluate(ws, "model", "champion", version).verdicts
    return verdict


def test_an_unchecked_landed_version_fails_the_rule_unless_allowed(project: Workspace) -> None:
    assert hr.materialize(workspace=project).success
    landed = project.store.versions.head("landed")
    p.promotion_policy("model", to="champion", rules=[p.data_checks_passed()])
    refused = _verdict(project)
    assert not refused.passed
    # the model read only features; the rule still found clean and landed upstream
    assert refused.explanation == (
        "3 versions in its training data's lineage, 2 checked; 1 never checked (the policy "
        f"does not allow unchecked data): landed {landed.id[:12]}"
    )
    outcome = promotion.promote(project, "model", "champion")
    assert outcome.status == "refused"
    assert [e.kind for e in project.store.registry.events("model")][:1] == ["refused"]
    with pytest.raises(Exception, match="no alias 'champion'"):
        project.store.registry.resolve("model", "champion")

    p.promotion_policy("model", to="champion", rules=[p.data_checks_passed(allow_unchecked=True)])
    allowed = _verdict(project)
    assert allowed.passed
    assert allowed.rule == (
        "its training data's lineage passed every error-severity check (unchecked versions allowed)"
    )
    assert allowed.explanation.endswith(f"1 never checked: landed {landed.id[:12]}")


def test_a_released_version_counts_only_where_the_policy_allows_it(project: Workspace) -> None:
    failed = hr.materialize(workspace=project, params={"gaps": 2})
    assert not failed.success  # clean failed not_null: held, and nothing downstream built
    [held] = project.store.quality.quarantined()
    released = release(project, held.version_id)
    assert hr.materialize(workspace=project, params={"gaps": 2}).success
    [version] = project.store.registry.versions("model")
    p.promotion_policy("model", to="champion", rules=[p.data_checks_passed(allow_unchecked=True)])
    refused = _verdict(project)
    assert not refused.passed
    text = refused.explanation
    assert (
        "1 released from quarantine (the policy does not allow released data): "
        f"clean {held.version_id[:12]} (failed x_not_null; released by {released.decided_by} at "
    ) in text
    assert "1 failed an error check" not in text  # released: not counted twice

    p.promotion_policy(
        "model",
        to="champion",
        rules=[p.data_checks_passed(allow_unchecked=True, allow_released=True)],
    )
    allowed = _verdict(project, version.version)
    assert allowed.passed
    assert f"released by {released.decided_by} at " in allowed.explanation


def test_a_failed_check_upstream_refuses_however_deep(project: Workspace) -> None:
    assert hr.materialize(workspace=project).success
    clean = project.store.versions.head("clean")
    # the check on a version three steps up failed after the fact (re-run on new rules)
    project.store.quality.record(
        clean,
        [
            {
                "name": "x_positive",
                "kind": "between",
                "columns": ["x"],
                "severity": "error",
                "passed": False,
                "observed": 2,
                "threshold": "x > 0",
                "failing_rows": 2,
                "failing_fraction": 1 / 3,
                "sample": [],
                "message": "2 of 6 rows fail",
            }
        ],
        at=1.0,
    )
    p.promotion_policy(
        "model",
        to="champion",
        rules=[p.data_checks_passed(allow_unchecked=True, allow_released=True)],
    )
    verdict = _verdict(project)
    assert not verdict.passed
    assert f"1 failed an error check: clean {clean.id[:12]} failed x_positive" in (
        verdict.explanation
    )


def test_the_rule_options_are_checked() -> None:
    with pytest.raises(DefinitionError, match="allow_unchecked must be True or False"):
        p.data_checks_passed(allow_unchecked="yes")  # type: ignore[arg-type]
    with pytest.raises(DefinitionError, match="allow_released must be True or False"):
        p.data_checks_passed(allow_released=1)  # type: ignore[arg-type]

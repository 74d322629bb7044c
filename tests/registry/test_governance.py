"""Aliases, lifecycle, rollback and promotion by policy, all audited."""

from __future__ import annotations

import time

import pytest

import headrace as hr
from headrace import policies as p
from headrace.core.errors import DefinitionError
from headrace.core.policies import POLICIES
from headrace.registry import promotion
from headrace.registry.service import rollback, set_alias, transition
from headrace.runtime.workspace import Workspace
from headrace.store.registry import RegistryError
from tests.registry.test_models import Rule


@pytest.fixture(autouse=True)
def _no_policies() -> None:
    POLICIES.clear()


def trained(ws: Workspace, auc: float, name: str = "delay") -> int:
    with hr.start_run("delay", workspace=ws):
        hr.log_metric("auc", auc)
        return hr.log_model(Rule(), name).version


def test_aliases_move_and_roll_back_with_an_audit_trail(ws: Workspace) -> None:
    for auc in (0.7, 0.75, 0.8):
        trained(ws, auc)
    assert set_alias(ws, "delay", "champion", 1, reason="first") is None
    assert set_alias(ws, "delay", "champion", 3, reason="better") == 1
    assert ws.store.registry.resolve("delay", "champion").version == 3
    transition(ws, "delay", 1, "approved")
    transition(ws, "delay", 3, "approved")
    transition(ws, "delay", 3, "production")
    assert rollback(ws, "delay", "champion") == (3, 1)
    # The lifecycle follows the champion back.
    assert ws.store.registry.version("delay", 1).status == "production"
    assert ws.store.registry.version("delay", 3).status == "approved"
    assert ws.store.registry.resolve("delay", "champion").aliases == ("champion",)
    assert ws.store.registry.resolve("delay", "champion").version == 1
    moves = [
        (e.kind, e.from_value, e.to_value, e.reason)
        for e in ws.store.registry.events("delay")
        if e.alias == "champion"
    ]
    assert moves == [
        ("rollback", "3", "1", "rollback"),
        ("alias", "1", "3", "better"),
        ("alias", None, "1", "first"),
    ]
    assert all(e.actor for e in ws.store.registry.events("delay"))
    with pytest.raises(RegistryError, match="never been set"):
        rollback(ws, "delay", "challenger")
    with pytest.raises(RegistryError, match="'latest' is reserved"):
        set_alias(ws, "delay", "latest", 2)


def test_the_lifecycle_allows_only_forward_steps(ws: Workspace) -> None:
    trained(ws, 0.7)
    assert transition(ws, "delay", 1, "approved") == "candidate"
    assert transition(ws, "delay", 1, "production") == "approved"
    with pytest.raises(RegistryError, match="is production; it can become retired, approved"):
        transition(ws, "delay", 1, "candidate")
    set_alias(ws, "delay", "champion", 1)
    with pytest.raises(RegistryError, match="still champion; move those aliases first"):
        transition(ws, "delay", 1, "retired")
    with pytest.raises(RegistryError, match="unknown status 'live'"):
        transition(ws, "delay", 1, "live")
    trained(ws, 0.8)
    transition(ws, "delay", 2, "retired")
    with pytest.raises(RegistryError, match="is retired; an alias cannot point at it"):
        set_alias(ws, "delay", "challenger", 2)
    statuses = [
        (e.version, e.from_value, e.to_value)
        for e in ws.store.registry.events("delay")
        if e.kind == "status"
    ]
    assert statuses[0] == (2, "candidate", "retired")


def test_promotion_evaluates_every_rule_and_explains_it(ws: Workspace) -> None:
    p.promotion_policy(
        "delay", to="champion", rules=[p.beats("auc", by=0.005), p.metric_at_least("auc", 0.6)]
    )
    trained(ws, 0.70)
    first = promotion.promote(ws, "delay", "champion")
    assert first.status == "promoted"
    assert "nothing is champion yet" in first.evaluation.verdicts[0].explanation
    champion = ws.store.registry.resolve("delay", "champion")
    assert (champion.version, champion.status) == (1, "production")
    trained(ws, 0.703)  # better, but not by enough
    refused = promotion.promote(ws, "delay", "champion")
    assert refused.status == "refused"
    assert not refused.evaluation.verdicts[0].passed
    assert "0.703 vs 0.7 (version 1): a margin of +0.003, 0.005 needed" in (
        refused.evaluation.verdicts[0].explanation
    )
    assert ws.store.registry.resolve("delay", "champion").version == 1
    trained(ws, 0.72)
    set_alias(ws, "delay", "challenger", 3)
    won = promotion.promote(ws, "delay", "champion")
    assert won.status == "promoted" and won.previous == 1
    assert ws.store.registry.version("delay", 3).status == "production"
    assert ws.store.registry.version("delay", 1).status == "approved"  # superseded
    assert promotion.promote(ws, "delay", "champion").status == "unchanged"
    kinds = [e.kind for e in ws.store.registry.events("delay")]
    assert "refused" in kinds


def test_approval_leaves_a_promotion_pending_until_a_person_decides(ws: Workspace) -> None:
    p.promotion_policy(
        "delay", to="champion", rules=[p.metric_at_least("auc", 0.6)], require_approval=True
    )
    trained(ws, 0.7)
    pending = promotion.promote(ws, "delay", "champion")
    assert pending.status == "pending"
    assert promotion.pending(ws, "delay", "champion") == 1
    assert ws.store.registry.versions("delay")[0].aliases == ()
    rejected = promotion.decide(ws, "delay", "champion", approve=False, reason="not yet")
    assert rejected.status == "refused" and promotion.pending(ws, "delay", "champion") is None
    with pytest.raises(RegistryError, match="waiting for a decision"):
        promotion.decide(ws, "delay", "champion", approve=True)
    promotion.promote(ws, "delay", "champion")
    approved = promotion.decide(ws, "delay", "champion", approve=True, reason="reviewed")
    assert approved.status == "promoted"
    assert ws.store.registry.resolve("delay", "champion").version == 1


def test_data_rules_read_the_training_datas_versions_and_checks(ws: Workspace) -> None:
    p.promotion_policy(
        "delay", to="champion", rules=[p.data_checks_passed(), p.data_newer_than(days=30)]
    )
    trained(ws, 0.7)
    missing = promotion.evaluate(ws, "delay", "champion")
    assert [v.passed for v in missing.verdicts] == [False, False]
    assert "no training data versions" in missing.verdicts[0].explanation


def test_policy_definitions_are_checked() -> None:
    with pytest.raises(DefinitionError, match="not an alias"):
        p.promotion_policy("delay", to="", rules=[p.data_checks_passed()])
    with pytest.raises(DefinitionError, match="non-empty list"):
        p.promotion_policy("delay", to="champion", rules=[])
    with pytest.raises(DefinitionError, match="days must be > 0"):
        p.data_newer_than(days=0)
    with pytest.raises(DefinitionError, match="by must be a number"):
        p.beats("auc", by="a lot")  # type: ignore[arg-type]
    assert time.time() > 0

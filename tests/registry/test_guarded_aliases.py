"""Guarded aliases move only through promotion: a manual move is judged by the alias's
policy, and moving past a refusal takes an override with a reason and the maintainer
role, audited with the rules it overrode. A refusal leaves the store as it was, plus
its record."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from headrace import policies as p
from headrace.core.policies import POLICIES
from headrace.registry.errors import GuardedAliasError, OverrideNotAllowedError
from headrace.registry.service import rollback, set_alias, transition
from headrace.runtime.identity import acting_as
from headrace.runtime.workspace import Workspace
from headrace.store.registry import RegistryError
from tests.registry.test_governance import trained


@pytest.fixture(autouse=True)
def _no_policies() -> Iterator[None]:
    POLICIES.clear()
    yield
    POLICIES.clear()


@pytest.fixture
def refused(ws: Workspace) -> Workspace:
    """delay: version 1 (auc 0.8) is champion; version 2 (auc 0.5) fails the policy."""
    p.promotion_policy("delay", to="champion", rules=[p.metric_at_least("auc", 0.7)])
    trained(ws, 0.8)
    trained(ws, 0.5)
    assert set_alias(ws, "delay", "champion", 1) is None  # it passes: a promotion
    return ws


def _state(ws: Workspace) -> tuple[object, ...]:
    versions = ws.store.registry.versions("delay")
    audit = [(e.action, e.outcome) for e in ws.store.governance.audit(limit=1000)]
    return tuple((v.version, v.status, v.aliases) for v in versions), tuple(audit)


def test_a_manual_move_of_a_guarded_alias_is_judged_by_its_policy(refused: Workspace) -> None:
    ws = refused
    # the move that passed was a promotion: the lifecycle followed
    assert ws.store.registry.version("delay", 1).status == "production"
    before = _state(ws)
    with pytest.raises(GuardedAliasError) as caught:
        set_alias(ws, "delay", "champion", 2, reason="looks fine to me")
    message = str(caught.value)
    assert "\n" not in message
    assert message == (
        "delay@champion is guarded by its promotion policy, which refuses version 2: rule "
        "'auc ≥ 0.7' failed: auc = 0.5; fix that and run `headrace models promote delay "
        "--to champion --version 2`, or move it anyway with --override --reason WHY "
        "(maintainer role)"
    )
    assert (caught.value.model, caught.value.alias, caught.value.version) == (
        "delay",
        "champion",
        2,
    )
    assert caught.value.rules == ("auc ≥ 0.7",)
    # nothing moved: the store is as it was, plus the refusal's record
    assert _state(ws) == before
    last = ws.store.registry.events("delay")[0]
    assert (last.kind, last.alias, last.version) == ("refused", "champion", 2)
    assert last.reason == "FAIL: auc ≥ 0.7 (auc = 0.5)"
    # an alias no policy guards moves freely
    assert set_alias(ws, "delay", "challenger", 2) is None
    assert ws.store.registry.resolve("delay", "challenger").version == 2


def test_the_alias_a_policy_promotes_to_is_guarded_and_approval_is_not_skipped(
    ws: Workspace,
) -> None:
    trained(ws, 0.8)
    p.promotion_policy(
        "delay", to="staging", rules=[p.metric_at_least("auc", 0.9)], require_approval=True
    )
    with pytest.raises(GuardedAliasError, match=r"delay@staging .* refuses version 1: rule"):
        set_alias(ws, "delay", "staging", 1)
    p.promotion_policy(
        "delay", to="staging", rules=[p.metric_at_least("auc", 0.5)], require_approval=True
    )
    with pytest.raises(GuardedAliasError, match="requires approval: version 1 passes its rules"):
        set_alias(ws, "delay", "staging", 1)
    with pytest.raises(RegistryError, match="no alias 'staging'"):
        ws.store.registry.resolve("delay", "staging")
    # champion is guarded with no policy at all: a manual move is a promotion, so the
    # lifecycle follows it
    assert set_alias(ws, "delay", "champion", 1) is None
    assert ws.store.registry.version("delay", 1).status == "production"


def test_an_override_needs_a_reason_and_the_maintainer_role(refused: Workspace) -> None:
    ws = refused
    before = _state(ws)
    with pytest.raises(OverrideNotAllowedError, match=r"needs a reason: pass --reason WHY"):
        set_alias(ws, "delay", "champion", 2, override=True)
    with pytest.raises(OverrideNotAllowedError, match=r"needs a reason"):
        set_alias(ws, "delay", "champion", 2, override=True, reason="  ")
    ws.store.governance.create_principal("ada", role="admin", actor="setup")
    ws.store.governance.create_principal("dev", role="developer", actor="ada")
    before = _state(ws)
    with acting_as("dev"), pytest.raises(OverrideNotAllowedError) as caught:
        set_alias(ws, "delay", "champion", 2, override=True, reason="hotfix")
    assert str(caught.value) == (
        "dev may not override the promotion policy of delay@champion: that needs the "
        "maintainer or admin role (permission 'override_policy'; role developer here); "
        "ask a maintainer, or run `headrace models promote delay --to champion`"
    )
    with acting_as("stranger"), pytest.raises(OverrideNotAllowedError, match="no role here"):
        set_alias(ws, "delay", "champion", 2, override=True, reason="hotfix")
    # a caller's role given by the server is what counts
    with pytest.raises(OverrideNotAllowedError, match="role viewer here"):
        set_alias(ws, "delay", "champion", 2, override=True, reason="hotfix", role="viewer")
    assert _state(ws) == before


def test_an_override_moves_the_alias_and_audits_the_rules_it_overrode(refused: Workspace) -> None:
    ws = refused
    ws.store.governance.create_principal("mia", role="maintainer", actor="setup")
    with acting_as("mia"):
        previous = set_alias(
            ws, "delay", "champion", 2, override=True, reason="the holdout month was broken"
        )
    assert previous == 1
    assert ws.store.registry.resolve("delay", "champion").version == 2
    assert ws.store.registry.version("delay", 2).status == "production"
    assert ws.store.registry.version("delay", 1).status == "approved"
    move = next(e for e in ws.store.registry.events("delay") if e.alias == "champion")
    assert (move.kind, move.actor, move.from_value, move.to_value) == ("override", "mia", "1", "2")
    assert move.reason == "the holdout month was broken; overrode: auc ≥ 0.7 (auc = 0.5)"
    entry = ws.store.governance.audit(limit=1000)[-1]
    assert (entry.actor, entry.action, entry.target, entry.outcome) == (
        "mia",
        "model.override",
        "delay@champion",
        "ok",
    )
    assert entry.details == {
        "version": 2,
        "reason": "the holdout month was broken",
        "overridden": ["auc ≥ 0.7 (auc = 0.5)"],
        "previous": 1,
    }
    assert ws.store.governance.verify()[1] is None  # the audit chain holds
    # an override is a move like any other: one command puts the champion back
    assert rollback(ws, "delay", "champion") == (2, 1)


def test_a_failed_override_writes_nothing(refused: Workspace) -> None:
    ws = refused
    trained(ws, 0.4)
    transition(ws, "delay", 3, "retired")
    before = _state(ws)
    events = len(ws.store.registry.events("delay"))
    with pytest.raises(RegistryError, match="is retired; an alias cannot point at it"):
        set_alias(ws, "delay", "champion", 3, override=True, reason="try it")
    assert _state(ws) == before
    assert len(ws.store.registry.events("delay")) == events


def test_the_python_api_judges_a_guarded_alias_the_same_way(refused: Workspace) -> None:
    import headrace as hr

    ws = refused
    before = _state(ws)
    with pytest.raises(GuardedAliasError, match=r"refuses version 2: rule 'auc ≥ 0.7'"):
        hr.set_alias("delay", "champion", 2, workspace=ws)
    assert _state(ws) == before
    with pytest.raises(OverrideNotAllowedError, match="needs a reason"):
        hr.set_alias("delay", "champion", 2, override=True, workspace=ws)
    assert _state(ws) == before
    previous = hr.set_alias("delay", "champion", 2, override=True, reason="hotfix", workspace=ws)
    assert previous == 1
    assert ws.store.registry.resolve("delay", "champion").version == 2
    overridden = [e for e in ws.store.governance.audit(limit=1000) if e.action == "model.override"]
    assert len(overridden) == 1 and overridden[0].outcome == "ok"
    # an alias no policy guards moves freely
    assert hr.set_alias("delay", "challenger", 1, workspace=ws) is None

"""A retrain's merge into main and its alias move are one transaction: another writer
acting after the policy and the merge gates passed, but before the commit, leaves
main's heads and the alias both where they were (plus the refusal's record), on
SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import headrace as hr
from headrace.core.monitors import MONITORS
from headrace.core.policies import POLICIES, PromotionPolicy, metric_at_least
from headrace.monitoring import retraining
from headrace.registry import promotion
from headrace.registry.errors import GuardedAliasError
from headrace.registry.promotion import (
    COMMIT_RULE,
    MERGE_RULE,
    BeforeMove,
    Evaluation,
    Prepared,
)
from headrace.registry.service import resolve, set_alias
from headrace.runtime.workspace import Workspace, open_workspace
from tests.projects import OPENED, close_opened, write_project

PROJECT = """
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from headrace import monitors as m
from headrace import policies as p


@hr.asset
def features() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"x": rng.normal(0, 1, 400), "season": [1, 2] * 200})
    frame["y"] = (frame.x + rng.normal(0, 0.5, 400) > 0).astype(int)
    return frame


@hr.model(signature_from="features")
def delay_model(features: pd.DataFrame, *, season: int = 1) -> LogisticRegression:
    train = features[features.season == season]
    hr.log_metric("holdout_auc", 0.9)
    return LogisticRegression().fit(train[["x"]], train.y)


p.promotion_policy("delay_model", to="champion", rules=[p.metric_at_least("holdout_auc", 0.5)])

m.monitor(
    "delay_watch",
    model="delay_model",
    window=100,
    target="y",
    limits=[m.performance("accuracy", min=0.6)],
    actions=[m.retrain("delay_model", params={"season": 2})],
)
"""


@pytest.fixture
def served(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Workspace]:
    root, _ = write_project(tmp_path, PROJECT)
    overrides = {}
    if backend != "sqlite":
        overrides["metadata_url"] = request.getfixturevalue("postgres_url")
    ws = open_workspace(root, **overrides)
    OPENED.append(ws)
    assert hr.materialize(workspace=ws).success
    set_alias(ws, "delay_model", "champion", 1)
    yield ws
    close_opened()


def _pending_retrain(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> str:
    """Retrain under a policy that asks for approval: version 2 waits on its branch."""
    reviewed = PromotionPolicy(
        "delay_model", "champion", (metric_at_least("holdout_auc", 0.5),), require_approval=True
    )
    monkeypatch.setitem(POLICIES, ("delay_model", "champion"), reviewed)
    outcome = retraining.retrain(ws, MONITORS["delay_watch"], 1000.0, [])
    assert outcome is not None and outcome["status"] == "version 2: pending"
    branch: str = outcome["branch"]
    return branch


def _retire_meanwhile(ws: Workspace) -> BeforeMove:
    """The real ``before_move``, after which another writer retires the candidate: the
    policy and the merge gates have passed, nothing is committed yet."""
    check = retraining.merge_when_promoted(ws)

    def hook(evaluation: Evaluation) -> Prepared:
        prepared = check(evaluation)
        assert prepared.problem is None and prepared.write is not None
        registry = ws.store.registry
        registry.remove_alias("delay_model", "challenger", actor="someone-else")
        registry.transition("delay_model", 2, "retired", actor="someone-else", reason="bad")
        return prepared

    return hook


def _state(ws: Workspace) -> tuple[str | None, int, int | None]:
    head = ws.store.versions.head("delay_model")
    moves = len(ws.store.branches.log(branch="main", limit=1000))
    return (head.id if head else None, moves, resolve(ws, "delay_model@champion").version)


def test_a_retrain_promotion_merges_and_moves_the_alias(served: Workspace) -> None:
    outcome = retraining.retrain(served, MONITORS["delay_watch"], 1000.0, [])

    assert outcome is not None and outcome["status"] == "version 2: promoted"
    version_2 = resolve(served, "delay_model/2").asset_version_id
    assert served.store.versions.head("delay_model").id == version_2
    assert resolve(served, "delay_model@champion").version == 2
    [merged] = served.store.branches.log(branch="main", limit=1)
    assert (merged.kind, merged.message) == ("merge", f"merge {outcome['branch']}")
    assert served.store.registry.version("delay_model", 2).status == "production"


def test_a_candidate_retired_before_the_commit_moves_neither_main_nor_the_alias(
    served: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    branch = _pending_retrain(served, monkeypatch)
    before = _state(served)

    refused = promotion.promote(
        served,
        "delay_model",
        "champion",
        version=2,
        require_approval=False,
        before_move=_retire_meanwhile(served),
    )

    assert refused.status == "refused"
    [blocked] = [v for v in refused.evaluation.verdicts if not v.passed]
    assert blocked.rule == COMMIT_RULE
    assert blocked.explanation == ("delay_model version 2 is retired; an alias cannot point at it")
    assert _state(served) == before  # main's heads, its log and the champion: untouched
    version_2 = resolve(served, "delay_model/2").asset_version_id
    assert served.store.versions.head("delay_model", branch=branch).id == version_2  # kept
    assert served.store.registry.events("delay_model")[0].kind == "refused"
    # the merge did not half-happen: the branch's base is as before, so it merges later
    plan = served.store.branches.merge(branch, "main", dry_run=True)
    assert [m.new_version_id for m in plan.moves] == [version_2]


def test_an_approval_whose_commit_fails_records_no_approval_and_moves_nothing(
    served: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    _pending_retrain(served, monkeypatch)
    before = _state(served)

    refused = promotion.decide(
        served,
        "delay_model",
        "champion",
        approve=True,
        reason="reviewed",
        before_move=_retire_meanwhile(served),
    )

    assert refused.status == "refused"
    assert refused.evaluation.verdicts[-1].explanation.endswith("an alias cannot point at it")
    assert _state(served) == before
    kinds = [e.kind for e in served.store.registry.events("delay_model")]
    assert kinds[0] == "refused" and "approved" not in kinds  # the approval rolled back too


def test_main_moved_by_another_writer_after_the_gates_refuses_the_promotion(
    served: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    branch = _pending_retrain(served, monkeypatch)
    check = retraining.merge_when_promoted(served)

    def hook(evaluation: Evaluation) -> Prepared:
        prepared = check(evaluation)
        # another writer trains on main meanwhile: main's head is no longer the fork's
        assert hr.materialize("delay_model", workspace=served, params={"season": 2}).success
        return prepared

    approved = promotion.decide(
        served, "delay_model", "champion", approve=True, reason="ok", before_move=hook
    )

    assert approved.status == "refused"
    assert approved.evaluation.verdicts[-1].rule == MERGE_RULE
    explanation = approved.evaluation.verdicts[-1].explanation
    assert explanation.startswith(f"cannot merge {branch!r} into 'main': ")
    assert "run it again" in explanation or "changed on both branches" in explanation
    assert resolve(served, "delay_model@champion").version == 1
    assert served.store.branches.log(branch="main", limit=1)[0].kind != "merge"
    assert promotion.pending(served, "delay_model", "champion") == 2  # still waits


def test_a_guarded_alias_moved_by_hand_is_refused_whole(
    served: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    _pending_retrain(served, monkeypatch)
    lenient = PromotionPolicy("delay_model", "champion", (metric_at_least("holdout_auc", 0.5),))
    monkeypatch.setitem(POLICIES, ("delay_model", "champion"), lenient)
    before = _state(served)
    from headrace.registry.promotion import move_guarded

    with pytest.raises(GuardedAliasError) as caught:
        move_guarded(served, "delay_model", "champion", 2, before_move=_retire_meanwhile(served))

    assert str(caught.value) == (
        "delay_model@champion cannot move to version 2: rule 'nothing it was judged on "
        "changed before it committed' failed: delay_model version 2 is retired; an alias "
        "cannot point at it; main and the alias are unchanged"
    )
    assert caught.value.rules == (COMMIT_RULE,)
    assert _state(served) == before


def test_the_alias_moved_by_another_writer_after_the_policy_refuses_the_promotion(
    served: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    branch = _pending_retrain(served, monkeypatch)
    check = retraining.merge_when_promoted(served)
    main_before = served.store.versions.head("delay_model").id

    def hook(evaluation: Evaluation) -> Prepared:
        prepared = check(evaluation)
        # another writer takes away the champion the policy compared the candidate with
        served.store.registry.remove_alias("delay_model", "champion", actor="someone-else")
        return prepared

    refused = promotion.promote(
        served, "delay_model", "champion", version=2, require_approval=False, before_move=hook
    )

    assert refused.status == "refused"
    assert refused.evaluation.verdicts[-1].rule == COMMIT_RULE
    assert refused.evaluation.verdicts[-1].explanation == (
        "delay_model@champion was moved to nothing by another writer after the policy "
        "judged version 2 against version 1; promote again"
    )
    assert served.store.versions.head("delay_model").id == main_before  # not merged
    assert served.store.branches.exists(branch)
    assert served.store.registry.version("delay_model", 2).aliases == ("challenger",)
    assert served.store.registry.version("delay_model", 1).aliases == ()  # as it was left


def test_a_checked_merge_whose_source_moved_since_is_refused_inside_the_transaction(
    served: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    from headrace.data.branching import merge
    from headrace.store.errors import BranchConflictError

    branch = _pending_retrain(served, monkeypatch)
    plan = merge(served, branch, "main", dry_run=True)  # the gates judge this version
    main_before = served.store.versions.head("delay_model").id
    # the branch gets a newer version the gates never saw
    assert hr.materialize(
        "delay_model", workspace=served, branch=branch, params={"season": 1}
    ).success

    with pytest.raises(BranchConflictError) as caught, served.store.write() as c:
        served.store.branches.merge_planned(c, plan, actor="me")

    assert str(caught.value) == (
        f"cannot merge {branch!r} into 'main': a branch was changed by another writer "
        "after its merge was checked; run it again"
    )
    assert served.store.versions.head("delay_model").id == main_before

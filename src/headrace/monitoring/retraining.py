"""The ``retrain`` action: automation that passes the same gates as a person.

A retrain runs its selection on a branch of its own, ``retrain/<monitor>/<alert>``
(made from ``main``, no data copied), so nothing it builds reaches ``main`` by itself.
For a model monitor, the version the run registered gets the action's alias
(``challenger``) and is put up for ``promote_to`` under the registry's promotion
policy; only a promotion the policy passes merges the branch into ``main`` (through
the same merge gates as ``headrace merge``) and then moves the alias. A refusal leaves
``main`` and the alias where they were, keeps the branch for inspection, and the
retrain's alert, sent through the monitor's delivery actions, says what was refused
and why. An asset monitor's run merges its branch through the merge gates.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from headrace.core.monitors import Monitor
from headrace.store.errors import StoreError
from headrace.store.monitoring import AlertRecord

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from headrace.registry.promotion import BeforeMove, Evaluation, Outcome, Prepared
    from headrace.runtime.workspace import Workspace


def branch_for(monitor: Monitor, alerts: Sequence[AlertRecord], retrain_id: str) -> str:
    """``retrain/<monitor>/<the first alert's key>-<its id>``: one branch per retrain,
    named after what asked for it."""
    sent = [a for a in alerts if not a.suppressed]
    if not sent:
        return f"retrain/{monitor.name}/{retrain_id[:12]}"
    key = re.sub(r"[^A-Za-z0-9._-]+", "-", sent[0].key).strip("-") or "alert"
    return f"retrain/{monitor.name}/{key}-{sent[0].id[:12]}"


#: How a branch made by a retrain describes itself (what marks it as one).
MADE_BY = "retraining, made by monitor"


def merge_when_promoted(ws: Workspace) -> BeforeMove:
    """The ``before_move`` of a promotion (``promote``, ``decide``, a guarded alias moved
    by hand): when the candidate was trained by a retrain, on a branch a monitor made,
    check that branch's merge into main through the merge gates (conflicts and quality
    gates, read before any write transaction opens: a gate may read through other
    connections), and hand the checked merge to the promotion, which carries it out in
    the alias move's transaction. Its head moves are compare-and-swapped there, so a
    branch moved since the check refuses the promotion with nothing moved."""
    from headrace.registry.promotion import Prepared

    def hook(evaluation: Evaluation) -> Prepared:
        run_id = evaluation.candidate.run_id
        if run_id is None:
            return Prepared()
        try:
            branch = ws.store.runs.get(run_id).branch
            record = ws.store.branches.get(branch)
        except StoreError:  # the run or its branch is gone: nothing left to merge
            return Prepared()
        if branch == "main" or not (record.description or "").startswith(MADE_BY):
            return Prepared()
        return _plan_merge(ws, branch)

    return hook


def promote(ws: Workspace, name: str, alias: str, **options: Any) -> Outcome:
    """:func:`headrace.registry.promotion.promote`, merging a retrain's branch into main
    when the promotion passes (what ``headrace models promote`` and the server call)."""
    from headrace.registry import promotion

    return promotion.promote(ws, name, alias, before_move=merge_when_promoted(ws), **options)


def decide(ws: Workspace, name: str, alias: str, **options: Any) -> Outcome:
    """:func:`headrace.registry.promotion.decide`, merging as :func:`promote` does."""
    from headrace.registry import promotion

    return promotion.decide(ws, name, alias, before_move=merge_when_promoted(ws), **options)


def set_alias(ws: Workspace, name: str, alias: str, version: int, **options: Any) -> int | None:
    """:func:`headrace.registry.service.set_alias`; a guarded alias moved by hand is a
    promotion, so it merges a retrain's branch as :func:`promote` does."""
    from headrace.registry import service

    if options.get("override"):
        return service.set_alias(ws, name, alias, version, **options)
    return service.set_alias(
        ws, name, alias, version, before_move=merge_when_promoted(ws), **options
    )


def _merge(ws: Workspace, branch: str) -> str | None:
    """Merge ``branch`` into main through the merge gates (an asset monitor's retrain,
    which moves no alias): None, or why not."""
    from headrace.data.branching import merge

    try:
        merge(ws, branch, "main")
    except StoreError as exc:  # a conflict or a gate's refusal: main stays as it was
        return str(exc)
    return None


def _plan_merge(ws: Workspace, branch: str) -> Prepared:
    """Check ``branch``'s merge into main through the merge gates; the refusal, or the
    checked merge to write with the promotion."""
    from headrace.data.branching import merge
    from headrace.registry.promotion import Prepared
    from headrace.runtime.identity import actor

    try:
        plan = merge(ws, branch, "main", dry_run=True)
    except StoreError as exc:  # a conflict or a gate's refusal: main stays as it was
        return Prepared(problem=str(exc))
    who = actor()

    def write(c: Connection) -> None:
        ws.store.branches.merge_planned(c, plan, actor=who)

    return Prepared(write=write)


def _promote(
    ws: Workspace, monitor: Monitor, options: dict[str, Any], version: int, branch: str
) -> dict[str, Any]:
    from headrace.registry import service
    from headrace.registry.errors import GuardedAliasError
    from headrace.registry.promotion import first_failure

    assert monitor.model is not None
    why = f"retrained by monitor {monitor.name} on branch {branch}"
    outcome: dict[str, Any] = {"version": version}
    try:
        # no merge here: only the promotion below may bring the branch into main
        service.set_alias(ws, monitor.model, options["alias"], version, reason=why)
    except GuardedAliasError as exc:  # the alias has a policy of its own, and it refused
        outcome.update(status=f"version {version}: refused", refused=str(exc))
        return outcome
    target = options.get("promote_to")
    if not target:
        outcome["status"] = f"version {version}: {options['alias']} (no promotion asked)"
        return outcome

    promoted = promote(ws, monitor.model, target, version=version, reason=why)
    outcome["promotion"] = promoted.status
    outcome["status"] = f"version {version}: {promoted.status}"
    outcome["rules"] = [v.__dict__ for v in promoted.evaluation.verdicts]
    if promoted.status == "refused":
        outcome["refused"] = (
            f"the {target} policy refused version {version}: {first_failure(promoted.evaluation)}"
        )
    elif promoted.status == "promoted":
        outcome["merged"] = True
    elif promoted.status == "pending":
        outcome["pending"] = (
            f"the {target} policy passed and waits for a maintainer's approval "
            f"(`headrace models approve {monitor.model} --alias {target}`), which merges "
            f"{branch} into main"
        )
    return outcome


def _describe(monitor: Monitor, options: dict[str, Any], outcome: dict[str, Any]) -> str:
    branch = outcome["branch"]
    lines = [f"retrain {options['selection']} on {branch}: {outcome['status']}"]
    if outcome.get("refused"):
        lines.append(f"refused: {outcome['refused']}")
        lines.append(f"main is untouched; branch {branch} is kept for inspection")
    elif outcome.get("merged"):
        lines.append(f"branch {branch} merged into main")
    elif outcome.get("pending"):
        lines.append(f"pending: {outcome['pending']}")
    for rule in outcome.get("rules", []):
        mark = "pass" if rule["passed"] else "FAIL"
        lines.append(f"- {mark}: {rule['rule']} ({rule['explanation']})")
    return "\n".join(lines)


def retrain(
    ws: Workspace, monitor: Monitor, now: float, alerts: Sequence[AlertRecord]
) -> dict[str, Any] | None:
    """Run the monitor's retrain action (once per cooldown) and record what came of it
    as an alert (key ``retrain``) that the monitor's delivery actions send."""
    from headrace.monitoring.alerts import deliver
    from headrace.orchestration.service import materialize

    action = next((a for a in monitor.actions if a.kind == "retrain"), None)
    if action is None:
        return None
    repository = ws.store.monitoring
    last = repository.last_alert(monitor.name, "retrain")
    if last is not None and now - last < monitor.cooldown:
        return {"status": "cooling down", "since": last}
    options = dict(action.options)
    retrain_id = uuid.uuid4().hex
    branch = options.get("branch") or branch_for(monitor, alerts, retrain_id)
    if not ws.store.branches.exists(branch):
        ws.store.branches.create(branch, description=f"{MADE_BY} {monitor.name}")
    result = materialize(
        ws,
        options["selection"],
        branch=branch,
        params=options.get("params") or None,
        partitions=options.get("partitions"),
        trigger="monitor",
    )
    outcome: dict[str, Any] = {
        "status": "run failed" if not result.success else "trained",
        "run_id": result.run_id,
        "branch": branch,
    }
    if result.success and monitor.model is None:  # an asset monitor: the run is the action
        problem = _merge(ws, branch)
        outcome["status"] = "ran; merged into main" if problem is None else "ran; merge refused"
        if problem is None:
            outcome["merged"] = True
        else:
            outcome["refused"] = problem
    elif result.success and monitor.model is not None:
        versions = [
            v for v in ws.store.registry.versions(monitor.model) if v.run_id == result.run_id
        ]
        if not versions:
            outcome["status"] = "no new version (the model was up to date)"
        else:
            outcome.update(_promote(ws, monitor, options, max(v.version for v in versions), branch))
    message = _describe(monitor, options, outcome)
    title = f"{monitor.name}: retrain {outcome['status']}" + (
        f" ({outcome['refused']})" if outcome.get("refused") else ""
    )
    payload = {
        "id": retrain_id,
        "monitor": monitor.name,
        "key": "retrain",
        "title": title,
        "message": message,
        "severity": "warning" if outcome.get("refused") or not result.success else "info",
        "model": monitor.model,
        "version": outcome.get("version"),
        "action": options,
        "outcome": outcome,
        "created_at": now,
    }
    deliveries = [deliver(a, payload).to_dict() for a in monitor.actions if a.kind != "retrain"]
    repository.add_alert(
        AlertRecord(
            id=retrain_id,
            monitor=monitor.name,
            key="retrain",
            window_id="",
            message=message,
            payload={"action": options, "outcome": outcome, **payload},
            created_at=now or time.time(),
            suppressed=False,
            outcomes=[outcome, *deliveries],
        )
    )
    return outcome

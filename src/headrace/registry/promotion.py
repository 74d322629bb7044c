"""Promotion by policy: evaluate a version against the rules declared for an alias,
explain each verdict, and move the alias only when all pass (after a person's
approval when the policy or the caller asks for one). Every step is audited."""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from headrace.core.policies import POLICIES, PromotionPolicy, Rule
from headrace.runtime.identity import actor
from headrace.store.registry import ModelNotFoundError, ModelVersionRecord, RegistryError

if TYPE_CHECKING:
    from headrace.runtime.workspace import Workspace


@dataclass(frozen=True)
class Verdict:
    rule: str
    passed: bool
    explanation: str


@dataclass(frozen=True)
class Evaluation:
    name: str
    alias: str
    candidate: ModelVersionRecord
    holder: ModelVersionRecord | None
    policy: PromotionPolicy | None
    verdicts: list[Verdict] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(v.passed for v in self.verdicts)

    def summary(self) -> str:
        return (
            "; ".join(
                f"{'pass' if v.passed else 'FAIL'}: {v.rule} ({v.explanation})"
                for v in self.verdicts
            )
            or "no policy declared"
        )


@dataclass(frozen=True)
class Outcome:
    status: str  # promoted | refused | pending | unchanged
    evaluation: Evaluation
    previous: int | None = None


def policy_for(ws: Workspace, name: str, alias: str) -> PromotionPolicy | None:
    from headrace.workspace.project import ProjectMissingError

    # importing the project declares its policies; without one, they come from Python
    with contextlib.suppress(ProjectMissingError):
        _ = ws.graph
    return POLICIES.get((name, alias))


def _metrics(ws: Workspace, version: ModelVersionRecord | None) -> dict[str, float]:
    if version is None or version.run_id is None:
        return {}
    return ws.store.tracking.metrics(version.run_id)


def _judge(
    ws: Workspace,
    rule: Rule,
    candidate: ModelVersionRecord,
    holder: ModelVersionRecord | None,
    mine: dict[str, float],
    theirs: dict[str, float],
) -> Verdict:
    label = rule.describe()
    if rule.kind in ("at_least", "at_most", "beats"):
        metric = rule.metric or ""
        value = mine.get(metric)
        if value is None:
            known = ", ".join(sorted(mine)) or "none"
            return Verdict(
                label,
                False,
                f"version {candidate.version} has no metric {metric!r} (its run logged: {known})",
            )
        if rule.kind == "at_least":
            return Verdict(label, value >= (rule.value or 0), f"{metric} = {value:.6g}")
        if rule.kind == "at_most":
            return Verdict(label, value <= (rule.value or 0), f"{metric} = {value:.6g}")
        if holder is None:
            return Verdict(label, True, f"nothing is {rule.alias} yet; {metric} = {value:.6g}")
        other = theirs.get(metric)
        if other is None:
            return Verdict(
                label,
                True,
                f"the {rule.alias} (version {holder.version}) has no "
                f"{metric}; {metric} = {value:.6g}",
            )
        margin = value - other if rule.higher_is_better else other - value
        needed = rule.value or 0.0
        return Verdict(
            label,
            margin >= needed and margin > 0 if needed == 0 else margin >= needed,
            f"{value:.6g} vs {other:.6g} (version {holder.version}): a margin of "
            f"{margin:+.6g}, {needed:g} needed",
        )
    if rule.kind in ("data_checks", "data_age"):
        if not candidate.data_versions:
            return Verdict(label, False, "no training data versions are recorded for it")
        versions = [ws.store.versions.get(v) for v in candidate.data_versions]
        if rule.kind == "data_checks":
            failed = ws.store.quality.failed_errors(v.id for v in versions)
            if failed:
                version_id, names = next(iter(failed.items()))
                bad = next(v for v in versions if v.id == version_id)
                label_of = bad.asset + (f"[{bad.partition}]" if bad.partition else "")
                return Verdict(
                    label,
                    False,
                    f"{len(failed)} of {len(versions)} data versions "
                    f"failed: {label_of} {version_id[:12]} failed {', '.join(names)}",
                )
            checked = sum(1 for v in versions if ws.store.quality.results(v.id))
            return Verdict(
                label,
                True,
                f"{len(versions)} data versions, {checked} of them "
                "checked, none failed an error check",
            )
        oldest = min(versions, key=lambda v: v.created_at)
        age_days = (time.time() - oldest.created_at) / 86400
        when = dt.datetime.fromtimestamp(oldest.created_at).strftime("%Y-%m-%d %H:%M")
        return Verdict(
            label,
            age_days <= (rule.days or 0),
            f"the oldest, {oldest.asset} {oldest.id[:12]}, is from {when} ({age_days:.1f} days)",
        )
    try:
        returned = rule.function(  # type: ignore[misc]
            candidate=candidate, holder=holder, metrics=mine, holder_metrics=theirs
        )
    except Exception as exc:
        return Verdict(label, False, f"the rule raised {type(exc).__name__}: {exc}")
    if isinstance(returned, tuple):
        return Verdict(label, bool(returned[0]), str(returned[1]))
    return Verdict(label, bool(returned), "")


def candidate_for(ws: Workspace, name: str, version: int | None) -> ModelVersionRecord:
    """The version given, else the ``challenger``, else the newest."""
    if version is not None:
        return ws.store.registry.version(name, version)
    try:
        return ws.store.registry.resolve(name, "challenger")
    except ModelNotFoundError:
        return ws.store.registry.resolve(name, "latest")


def holder_of(ws: Workspace, name: str, alias: str) -> ModelVersionRecord | None:
    try:
        return ws.store.registry.resolve(name, alias)
    except ModelNotFoundError:
        ws.store.registry.versions(name)  # an unknown model still raises
        return None


def evaluate(ws: Workspace, name: str, alias: str, version: int | None = None) -> Evaluation:
    candidate = candidate_for(ws, name, version)
    holder = holder_of(ws, name, alias)
    policy = policy_for(ws, name, alias)
    mine, theirs = _metrics(ws, candidate), _metrics(ws, holder)
    verdicts = [
        _judge(ws, rule, candidate, holder, mine, theirs)
        for rule in (policy.rules if policy else ())
    ]
    if candidate.status == "retired":
        verdicts.append(Verdict("the version is not retired", False, "it is retired"))
    return Evaluation(name, alias, candidate, holder, policy, verdicts)


def _move(ws: Workspace, evaluation: Evaluation, reason: str) -> int | None:
    registry = ws.store.registry
    name, candidate = evaluation.name, evaluation.candidate
    who = actor()
    previous = registry.set_alias(
        name, evaluation.alias, candidate.version, actor=who, reason=reason
    )
    if evaluation.alias == "champion":
        status = registry.version(name, candidate.version).status
        if status == "candidate":
            registry.transition(name, candidate.version, "approved", actor=who, reason=reason)
            status = "approved"
        if status == "approved":
            registry.transition(name, candidate.version, "production", actor=who, reason=reason)
        if previous is not None and previous != candidate.version:
            before = registry.version(name, previous)
            if before.status == "production":
                registry.transition(
                    name,
                    previous,
                    "approved",
                    actor=who,
                    reason=f"superseded by version {candidate.version}",
                )
    return previous


def promote(
    ws: Workspace,
    name: str,
    alias: str,
    *,
    version: int | None = None,
    require_approval: bool | None = None,
    reason: str | None = None,
) -> Outcome:
    evaluation = evaluate(ws, name, alias, version)
    if evaluation.holder is not None and evaluation.holder.version == evaluation.candidate.version:
        return Outcome("unchanged", evaluation)
    registry = ws.store.registry
    if not evaluation.passed:
        registry.record(
            name,
            "refused",
            actor=actor(),
            alias=alias,
            version=evaluation.candidate.version,
            reason=evaluation.summary(),
        )
        return Outcome("refused", evaluation)
    wanted = (
        require_approval
        if require_approval is not None
        else bool(evaluation.policy and evaluation.policy.require_approval)
    )
    if wanted:
        registry.record(
            name,
            "requested",
            actor=actor(),
            alias=alias,
            version=evaluation.candidate.version,
            reason=evaluation.summary(),
        )
        return Outcome("pending", evaluation)
    note = (reason + "; " if reason else "") + evaluation.summary()
    return Outcome("promoted", evaluation, _move(ws, evaluation, note))


def pending(ws: Workspace, name: str, alias: str) -> int | None:
    """The version whose promotion to ``alias`` waits for a decision, if any."""
    for event in ws.store.registry.events(name):
        if event.alias != alias:
            continue
        if event.kind == "requested":
            return event.version
        if event.kind in ("approved", "rejected", "alias", "rollback"):
            return None
    return None


def decide(
    ws: Workspace, name: str, alias: str, *, approve: bool, reason: str | None = None
) -> Outcome:
    """A person approves (the policy is evaluated again, then the alias moves) or rejects
    the pending promotion."""
    version = pending(ws, name, alias)
    if version is None:
        raise RegistryError(
            f"no promotion of model {name!r} to {alias!r} is waiting for a decision"
        )
    registry = ws.store.registry
    evaluation = evaluate(ws, name, alias, version)
    if not approve:
        registry.record(
            name, "rejected", actor=actor(), alias=alias, version=version, reason=reason
        )
        return Outcome("refused", evaluation)
    if not evaluation.passed:
        registry.record(
            name,
            "rejected",
            actor=actor(),
            alias=alias,
            version=version,
            reason="the policy no longer passes: " + evaluation.summary(),
        )
        return Outcome("refused", evaluation)
    registry.record(name, "approved", actor=actor(), alias=alias, version=version, reason=reason)
    note = (reason + "; " if reason else "") + "approved; " + evaluation.summary()
    return Outcome("promoted", evaluation, _move(ws, evaluation, note))


def describe(evaluation: Evaluation) -> list[dict[str, Any]]:
    return [v.__dict__ for v in evaluation.verdicts]

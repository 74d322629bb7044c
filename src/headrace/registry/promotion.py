"""Promotion by policy: evaluate a version against the rules declared for an alias,
explain each verdict, and move the alias only when all pass (after a person's
approval when the policy or the caller asks for one). Every step is audited."""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from headrace.core.governance import EVERYWHERE, allows
from headrace.core.policies import POLICIES, PromotionPolicy, Rule, guarded_aliases
from headrace.registry.errors import GuardedAliasError, OverrideNotAllowedError
from headrace.runtime.identity import actor
from headrace.store.errors import (
    BranchConflictError,
    MergeRefusedError,
    StoreError,
    StoreUnreachableError,
)
from headrace.store.registry import ModelNotFoundError, ModelVersionRecord, RegistryError

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from headrace.runtime.workspace import Workspace
    from headrace.store.records import VersionRecord


@dataclass(frozen=True)
class Prepared:
    """What a promotion's ``before_move`` found once the policy passed: ``problem``
    refuses the promotion; ``write`` runs inside the alias move's own transaction (a
    retrain's merge into main), so the two commit together or not at all."""

    problem: str | None = None
    write: Callable[[Connection], None] | None = None


#: Called once the policy has passed, before anything is written (see :func:`promote`).
BeforeMove = Callable[["Evaluation"], Prepared]

#: The verdict a promotion refused by its ``before_move`` (or by its merge at the
#: commit) adds.
MERGE_RULE = "its branch merges into main"
#: The verdict a promotion whose commit failed otherwise adds (another writer retired
#: the candidate or moved the alias after the policy judged it).
COMMIT_RULE = "nothing it was judged on changed before it committed"


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
        if rule.kind == "data_checks":
            return _judge_lineage(ws, rule, label, candidate)
        versions = [ws.store.versions.get(v) for v in candidate.data_versions]
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


def _named(version: VersionRecord) -> str:
    return (
        f"{version.asset}{f'[{version.partition}]' if version.partition else ''} {version.id[:12]}"
    )


def _listed(names: list[str], limit: int = 5) -> str:
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def _judge_lineage(ws: Workspace, rule: Rule, label: str, candidate: ModelVersionRecord) -> Verdict:
    """The whole lineage of the training data: every version upstream of it, each of
    which must have been checked and must not have failed an error check (a release
    from quarantine counts only where the rule allows it)."""
    versions = ws.store.versions.upstream(candidate.data_versions)
    standings = ws.store.quality.standings(v.id for v in versions)
    failed, released, unchecked = [], [], []
    for version in versions:
        standing = standings[version.id]
        if standing.failed_errors and standing.released:
            when = dt.datetime.fromtimestamp(standing.released_at or 0).strftime("%Y-%m-%d %H:%M")
            released.append(
                f"{_named(version)} (failed {', '.join(standing.failed_errors)}; released by "
                f"{standing.released_by or 'unknown'} at {when})"
            )
        elif standing.failed_errors:
            failed.append(f"{_named(version)} failed {', '.join(standing.failed_errors)}")
        elif standing.checks == 0:
            unchecked.append(_named(version))
    problems: list[str] = []
    notes: list[str] = []
    if failed:
        problems.append(f"{len(failed)} failed an error check: {_listed(failed)}")
    if released:
        (notes if rule.allow_released else problems).append(
            f"{len(released)} released from quarantine"
            + ("" if rule.allow_released else " (the policy does not allow released data)")
            + f": {_listed(released)}"
        )
    if unchecked:
        (notes if rule.allow_unchecked else problems).append(
            f"{len(unchecked)} never checked"
            + ("" if rule.allow_unchecked else " (the policy does not allow unchecked data)")
            + f": {_listed(unchecked)}"
        )
    checked = sum(1 for v in versions if standings[v.id].checks)
    count = f"{len(versions)} version{'' if len(versions) == 1 else 's'}"
    head = f"{count} in its training data's lineage, {checked} checked"
    if problems:
        return Verdict(label, False, f"{head}; " + "; ".join(problems + notes))
    return Verdict(
        label, True, f"{head}, none failed an error check" + "".join(f"; {n}" for n in notes)
    )


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


def _move(
    ws: Workspace,
    evaluation: Evaluation,
    reason: str | None,
    *,
    kind: str = "alias",
    also: Callable[[Connection], None] | None = None,
    first: Callable[[Connection], None] | None = None,
) -> int | None:
    """Move the alias, and for ``champion`` the lifecycle with it, in one transaction."""
    return ws.store.registry.promote(
        evaluation.name,
        evaluation.alias,
        evaluation.candidate.version,
        actor=actor(),
        reason=reason,
        lifecycle=evaluation.alias == "champion",
        kind=kind,
        also=also,
        first=first,
    )


def _refuse(ws: Workspace, evaluation: Evaluation, kind: str = "refused") -> None:
    ws.store.registry.record(
        evaluation.name,
        kind,
        actor=actor(),
        alias=evaluation.alias,
        version=evaluation.candidate.version,
        reason=evaluation.summary(),
    )


def _refused(
    ws: Workspace, evaluation: Evaluation, problem: str, rule: str = MERGE_RULE
) -> Outcome:
    """Refuse the promotion for ``problem`` (recorded, with the rules that passed)."""
    blocked = Evaluation(
        evaluation.name,
        evaluation.alias,
        evaluation.candidate,
        evaluation.holder,
        evaluation.policy,
        [*evaluation.verdicts, Verdict(rule, False, problem)],
    )
    _refuse(ws, blocked)
    return Outcome("refused", blocked)


def _prepare(
    ws: Workspace, evaluation: Evaluation, before_move: BeforeMove | None
) -> Outcome | Prepared:
    """Run ``before_move``: the refusal (recorded) for a problem it returns, else what
    it wants written with the move."""
    prepared = before_move(evaluation) if before_move is not None else Prepared()
    if prepared.problem is not None:
        return _refused(ws, evaluation, prepared.problem)
    return prepared


def _commit(
    ws: Workspace,
    evaluation: Evaluation,
    note: str | None,
    prepared: Prepared,
    *,
    approved: bool = False,
    why: str | None = None,
) -> Outcome:
    """Move the alias in ONE transaction with ``prepared.write`` (a retrain's merge into
    main, written first) and, when ``approved``, the person's approval (``why``): all of
    it commits, or none of it does and the refusal is recorded. Another writer may have
    retired the version, moved the branches or the alias, or the store may fail, after
    the policy and the merge gates passed."""
    who = actor()

    def first(c: Connection) -> None:  # the approval, then the merge, then the move
        judged = evaluation.holder.version if evaluation.holder else None
        holder = ws.store.registry.alias_in(c, evaluation.name, evaluation.alias)
        if holder != judged:  # the policy compared the candidate with another holder
            raise RegistryError(
                f"{evaluation.name}@{evaluation.alias} was moved to "
                f"{'nothing' if holder is None else f'version {holder}'} by another writer "
                f"after the policy judged version {evaluation.candidate.version} against "
                f"{'no holder' if judged is None else f'version {judged}'}; promote again"
            )
        if approved:
            ws.store.registry.record_in(
                c,
                evaluation.name,
                "approved",
                actor=who,
                alias=evaluation.alias,
                version=evaluation.candidate.version,
                reason=why,
            )
        if prepared.write is not None:
            prepared.write(c)

    try:
        previous = _move(ws, evaluation, note, first=first)
    except StoreUnreachableError:
        raise  # nothing committed, and nowhere to record a refusal
    except StoreError as exc:  # the transaction rolled back: main and the alias are as they were
        merging = isinstance(exc, BranchConflictError | MergeRefusedError)
        return _refused(ws, evaluation, str(exc), MERGE_RULE if merging else COMMIT_RULE)
    return Outcome("promoted", evaluation, previous)


def first_failure(evaluation: Evaluation) -> str:
    """The first rule that failed, with its explanation (for one-line refusals)."""
    failed = [v for v in evaluation.verdicts if not v.passed]
    if not failed:
        return "every rule passed"
    more = f" (and {len(failed) - 1} more rule{'s' if len(failed) > 2 else ''})"
    return f"rule {failed[0].rule!r} failed: {failed[0].explanation}" + (
        more if len(failed) > 1 else ""
    )


def promote(
    ws: Workspace,
    name: str,
    alias: str,
    *,
    version: int | None = None,
    require_approval: bool | None = None,
    reason: str | None = None,
    before_move: BeforeMove | None = None,
) -> Outcome:
    """Evaluate the policy of ``alias`` for a version and move the alias when it passes.

    ``before_move`` runs once the policy has passed, before anything is written (the
    retrain action checks its branch's merge into ``main`` there). When it returns a
    problem, the promotion is refused with that problem and the alias stays where it
    was; what it returns to write (the merge) commits in the alias move's transaction,
    and a failure there refuses the promotion with nothing moved.
    """
    evaluation = evaluate(ws, name, alias, version)
    if evaluation.holder is not None and evaluation.holder.version == evaluation.candidate.version:
        return Outcome("unchanged", evaluation)
    registry = ws.store.registry
    if not evaluation.passed:
        _refuse(ws, evaluation)
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
    prepared = _prepare(ws, evaluation, before_move)
    if isinstance(prepared, Outcome):
        return prepared
    note = (reason + "; " if reason else "") + evaluation.summary()
    return _commit(ws, evaluation, note, prepared)


def pending(ws: Workspace, name: str, alias: str) -> int | None:
    """The version whose promotion to ``alias`` waits for a decision, if any."""
    for event in ws.store.registry.events(name):
        if event.alias != alias:
            continue
        if event.kind == "requested":
            return event.version
        if event.kind in ("approved", "rejected", "alias", "rollback", "override"):
            return None
    return None


def decide(
    ws: Workspace,
    name: str,
    alias: str,
    *,
    approve: bool,
    reason: str | None = None,
    before_move: BeforeMove | None = None,
) -> Outcome:
    """A person approves (the policy is evaluated again, ``before_move`` runs, then the
    approval, the alias move and what ``before_move`` asked to write commit together)
    or rejects the pending promotion."""
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
    prepared = _prepare(ws, evaluation, before_move)
    if isinstance(prepared, Outcome):
        return prepared
    note = (reason + "; " if reason else "") + "approved; " + evaluation.summary()
    return _commit(ws, evaluation, note, prepared, approved=True, why=reason)


def describe(evaluation: Evaluation) -> list[dict[str, Any]]:
    return [v.__dict__ for v in evaluation.verdicts]


# -- guarded aliases ---------------------------------------------------------------------


def guarded(ws: Workspace, name: str) -> frozenset[str]:
    """The aliases of ``name`` that move only through promotion (the project's policies
    are loaded first)."""
    policy_for(ws, name, "champion")  # imports the project, which declares its policies
    return guarded_aliases(name)


def local_role(ws: Workspace) -> str | None:
    """The role of whoever acts on an embedded workspace: their principal's role when
    the store has principals, else ``admin`` (a workspace nobody set principals up for
    belongs to the person who made it)."""
    from headrace.store.governance import GovernanceError

    governance = ws.store.governance
    if not governance.principals():
        return "admin"
    try:
        return governance.principal(actor()).role(ws.settings.project_name or EVERYWHERE)
    except GovernanceError:
        return None


def move_guarded(
    ws: Workspace,
    name: str,
    alias: str,
    version: int,
    *,
    reason: str | None = None,
    override: bool = False,
    role: str | None = None,
    before_move: BeforeMove | None = None,
) -> int | None:
    """Move a guarded alias by hand: the alias's policy judges ``version`` as a promotion
    would. A refusal raises :class:`GuardedAliasError` (and is recorded); ``override``
    moves it anyway, with a reason, for a maintainer or admin (``role``: the caller's;
    None means whoever acts on this workspace locally), recording the rules it overrode
    in the model's history and the audit log in the same transaction as the move.
    ``before_move`` runs as in :func:`promote` (not for an override, which merges
    nothing)."""
    evaluation = evaluate(ws, name, alias, version)
    where = f"{name}@{alias}"
    if not override:
        if not evaluation.passed:
            _refuse(ws, evaluation)
            raise GuardedAliasError(
                f"{where} is guarded by its promotion policy, which refuses version {version}: "
                f"{first_failure(evaluation)}; fix that and run `headrace models promote "
                f"{name} --to {alias} --version {version}`, or move it anyway with "
                "--override --reason WHY (maintainer role)",
                model=name,
                alias=alias,
                version=version,
                rules=tuple(v.rule for v in evaluation.verdicts if not v.passed),
            )
        if evaluation.policy is not None and evaluation.policy.require_approval:
            _refuse(ws, evaluation)
            raise GuardedAliasError(
                f"{where} is guarded by a promotion policy that requires approval: version "
                f"{version} passes its rules but cannot move by hand; run `headrace models "
                f"promote {name} --to {alias} --version {version}` and have a maintainer "
                f"approve it (`headrace models approve {name} --alias {alias}`)",
                model=name,
                alias=alias,
                version=version,
                rules=(),
            )
        prepared = _prepare(ws, evaluation, before_move)
        if not isinstance(prepared, Outcome):
            judged = evaluation.summary() if evaluation.verdicts else None
            note = "; ".join(x for x in (reason, judged) if x) or None
            prepared = _commit(ws, evaluation, note, prepared)
        if prepared.status == "refused":
            raise GuardedAliasError(
                f"{where} cannot move to version {version}: "
                f"{first_failure(prepared.evaluation)}; main and the alias are unchanged",
                model=name,
                alias=alias,
                version=version,
                rules=tuple(v.rule for v in prepared.evaluation.verdicts if not v.passed),
            )
        return prepared.previous
    if not reason or not reason.strip():
        raise OverrideNotAllowedError(
            f"overriding the promotion policy of {where} needs a reason: pass --reason WHY "
            "(it is kept in the model's history and the audit log)",
            model=name,
            alias=alias,
            role=role,
        )
    held = local_role(ws) if role is None else role
    if not allows(held, "override_policy"):
        raise OverrideNotAllowedError(
            f"{actor()} may not override the promotion policy of {where}: that needs the "
            f"maintainer or admin role (permission 'override_policy'; "
            f"{'no role' if held is None else f'role {held}'} here); ask a maintainer, or "
            f"run `headrace models promote {name} --to {alias}`",
            model=name,
            alias=alias,
            role=held,
        )
    overridden = [f"{v.rule} ({v.explanation})" for v in evaluation.verdicts if not v.passed]
    note = f"{reason.strip()}; overrode: " + ("; ".join(overridden) or "no failing rule")
    who = actor()

    def audit(c: Connection) -> None:
        ws.store.governance.append(
            c,
            who,
            "model.override",
            where,
            "ok",
            {
                "version": version,
                "reason": reason.strip(),
                "overridden": overridden,
                "previous": evaluation.holder.version if evaluation.holder else None,
            },
        )

    return _move(ws, evaluation, note, kind="override", also=audit)

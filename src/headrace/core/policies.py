"""Promotion policies, declared in code beside the models they govern.

    from headrace import policies as p

    p.promotion_policy(
        "flight_delay",
        to="champion",
        rules=[
            p.beats("holdout_auc", by=0.005),   # than the version now at "champion"
            p.data_checks_passed(),              # its training data's whole lineage was
                                                 # checked and passed every error check
            p.data_newer_than(days=30),          # its training data is at most 30 days old
        ],
        require_approval=False,
    )

``headrace models promote NAME --to champion`` evaluates the policy for the alias and
explains every rule's verdict; the alias moves only when all pass (and, with
``require_approval``, once a person approves).

The alias a policy promotes to (and ``champion`` always) is *guarded*: it moves only
through promotion. ``headrace models alias`` on a guarded alias is judged by the same
policy, and moving it past a refusal takes ``--override`` with a reason and the
maintainer role.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from headrace.core.errors import DefinitionError


@dataclass(frozen=True)
class Rule:
    kind: str
    metric: str | None = None
    value: float | None = None
    alias: str | None = None
    higher_is_better: bool = True
    days: float | None = None
    function: Callable[..., Any] | None = field(default=None, compare=False)
    label: str | None = None
    allow_unchecked: bool = False
    allow_released: bool = False

    def describe(self) -> str:
        if self.label:
            return self.label
        better = "higher" if self.higher_is_better else "lower"
        if self.kind == "beats":
            margin = f" by at least {self.value:g}" if self.value else ""
            return f"{self.metric} beats the {self.alias}'s{margin} ({better} is better)"
        if self.kind == "at_least":
            return f"{self.metric} ≥ {self.value:g}"
        if self.kind == "at_most":
            return f"{self.metric} ≤ {self.value:g}"
        if self.kind == "data_checks":
            allowed = [
                what
                for what, on in (
                    ("unchecked", self.allow_unchecked),
                    ("released", self.allow_released),
                )
                if on
            ]
            return "its training data's lineage passed every error-severity check" + (
                f" ({' and '.join(allowed)} versions allowed)" if allowed else ""
            )
        if self.kind == "data_age":
            return f"its training data is at most {self.days:g} days old"
        return getattr(self.function, "__name__", "custom rule")


def _metric(name: str) -> str:
    if not isinstance(name, str) or not name:
        raise DefinitionError(f"a policy rule needs a metric name, got {name!r}")
    return name


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise DefinitionError(f"{what} must be a number, got {value!r}")
    return float(value)


def beats(
    metric: str, *, by: float = 0.0, alias: str = "champion", higher_is_better: bool = True
) -> Rule:
    """The candidate's ``metric`` beats that of the version at ``alias`` by ``by``
    (passes when nothing holds the alias yet)."""
    return Rule("beats", _metric(metric), _number(by, "by"), alias, higher_is_better)


def metric_at_least(metric: str, value: float) -> Rule:
    return Rule("at_least", _metric(metric), _number(value, "value"))


def metric_at_most(metric: str, value: float) -> Rule:
    return Rule("at_most", _metric(metric), _number(value, "value"), higher_is_better=False)


def data_checks_passed(*, allow_unchecked: bool = False, allow_released: bool = False) -> Rule:
    """Every version upstream of the model's training data (the features, what made
    them, down to the landed files) was checked and failed no error-severity check.

    ``allow_unchecked``: a version no check ever ran on does not fail the rule.
    ``allow_released``: a version that failed a check but that a person released from
    quarantine does not fail the rule (the verdict still names who released it, when).
    """
    for what, value in (("allow_unchecked", allow_unchecked), ("allow_released", allow_released)):
        if not isinstance(value, bool):
            raise DefinitionError(
                f"data_checks_passed(): {what} must be True or False, got {value!r}"
            )
    return Rule("data_checks", allow_unchecked=allow_unchecked, allow_released=allow_released)


def data_newer_than(*, days: float) -> Rule:
    if _number(days, "days") <= 0:
        raise DefinitionError(f"data_newer_than(): days must be > 0, got {days!r}")
    return Rule("data_age", days=float(days))


def rule(function: Callable[..., Any], *, label: str | None = None) -> Rule:
    """A rule that is a function of the evaluation (``candidate``, ``holder``, their
    ``metrics``, ``data``) returning True/False or (verdict, explanation)."""
    if not callable(function):
        raise DefinitionError(f"rule() needs a function, got {function!r}")
    return Rule("custom", function=function, label=label)


@dataclass(frozen=True)
class PromotionPolicy:
    model: str
    alias: str
    rules: tuple[Rule, ...]
    require_approval: bool = False


#: Policies declared by the loaded project, by (model, alias).
POLICIES: dict[tuple[str, str], PromotionPolicy] = {}

#: Aliases guarded for every model, with or without a declared policy.
GUARDED_ALIASES = frozenset({"champion"})


def guarded_aliases(model: str) -> frozenset[str]:
    """The aliases of ``model`` that move only through promotion: ``champion`` and
    every alias a declared policy promotes to."""
    return GUARDED_ALIASES | {alias for name, alias in POLICIES if name == model}


def promotion_policy(
    model: str, *, to: str, rules: Sequence[Rule], require_approval: bool = False
) -> PromotionPolicy:
    """Declare how a version of ``model`` may become ``to`` (re-declaring replaces)."""
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_.\-]*", model or ""):
        raise DefinitionError(f"promotion_policy(): {model!r} is not a model name")
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_\-]*", to or ""):
        raise DefinitionError(f"promotion_policy(): {to!r} is not an alias")
    chosen = tuple(rules)
    if not chosen or not all(isinstance(r, Rule) for r in chosen):
        raise DefinitionError(
            f"promotion_policy({model!r}): rules must be a non-empty list of "
            "headrace.policies rules"
        )
    policy = PromotionPolicy(model, to, chosen, require_approval)
    POLICIES[(model, to)] = policy
    return policy

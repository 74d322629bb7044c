"""Promotion policies for registered models: ``from headrace import policies as p``."""

from headrace.core.policies import (
    PromotionPolicy,
    Rule,
    beats,
    data_checks_passed,
    data_newer_than,
    metric_at_least,
    metric_at_most,
    promotion_policy,
    rule,
)

__all__ = [
    "PromotionPolicy",
    "Rule",
    "beats",
    "data_checks_passed",
    "data_newer_than",
    "metric_at_least",
    "metric_at_most",
    "promotion_policy",
    "rule",
]

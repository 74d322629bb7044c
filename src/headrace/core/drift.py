"""The drift tests headrace knows: their names, the columns they compare, whether they
give a p-value, and their default thresholds (the computations live in
``headrace.drift.methods``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Method:
    name: str
    kinds: frozenset[str]
    p_value: bool  # a p-value test (drifted below the threshold) or a distance
    threshold: float
    description: str


METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("ks", frozenset({"numeric"}), True, 0.05, "Kolmogorov-Smirnov test"),
        Method("chi2", frozenset({"categorical"}), True, 0.05, "chi-squared test"),
        Method("z", frozenset({"categorical"}), True, 0.05, "z-test of two proportions"),
        Method(
            "wasserstein",
            frozenset({"numeric"}),
            False,
            0.1,
            "Wasserstein distance (normed by the reference's std)",
        ),
        Method(
            "jensen_shannon",
            frozenset({"numeric", "categorical"}),
            False,
            0.1,
            "Jensen-Shannon distance",
        ),
        Method(
            "psi", frozenset({"numeric", "categorical"}), False, 0.1, "population stability index"
        ),
    )
}

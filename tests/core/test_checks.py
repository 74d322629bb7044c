from __future__ import annotations

import pytest

import headrace as hr
from headrace import checks as c
from headrace.core.checks import CheckDefinitionError


def test_checks_are_named_and_describe_their_rule() -> None:
    check = c.between("amount", 0, 10_000, mostly=0.99)
    assert check.name == "amount_between" and check.row_level
    assert check.threshold() == "≥ 0 and ≤ 10000 for at least 99.00% of rows"
    assert c.unique("a", "b").name == "a_b_unique"
    assert c.quantile("x", 0.9, max=5).name == "x_q0_9"
    assert c.in_set("k", ["a", "b"]).threshold() == "in {'a', 'b'}"
    assert c.row_count(min=1).threshold() == "≥ 1"


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: c.matches("email", "[a-z"), "does not compile"),
        (lambda: c.between("x"), "give min=, max= or both"),
        (lambda: c.between("x", 5, 1), "min 5 is above max 1"),
        (lambda: c.between("x", "0", 1), "bounds must be numbers"),
        (lambda: c.not_null("x", severity="fatal"), "severity 'fatal' is unknown"),
        (lambda: c.not_null("x", mostly=1.5), "mostly must be in"),
        (lambda: c.row_count(min=1, severity="warn", name="bad name"), "is invalid"),
        (lambda: c.mean("x", min=1, name="m").__class__ and c.in_set("x", []), "is empty"),
        (lambda: c.quantile("x", 2, max=1), "q must be in"),
        (lambda: c.freshness("ts", max_age_seconds=0), "must be > 0"),
        (lambda: c.unique(), "at least one column"),
        (lambda: c.expression("  "), "needs a SQL boolean"),
    ],
)
def test_bad_checks_are_refused_when_built(build: object, message: str) -> None:
    with pytest.raises(CheckDefinitionError, match=message):
        build()  # type: ignore[operator]


def test_a_suite_refuses_duplicates_and_non_checks() -> None:
    with pytest.raises(CheckDefinitionError, match="two checks are named 'id_not_null'"):
        hr.Suite("orders", [c.not_null("id"), c.not_null("id")])
    with pytest.raises(CheckDefinitionError, match="suite 'orders': 'id' is not a check"):
        hr.Suite("orders", ["id"])  # type: ignore[list-item]
    assert len(hr.Suite("orders", [c.not_null("id"), c.not_null("id", name="id2")])) == 2

from __future__ import annotations

import datetime as dt
from typing import Literal

import pytest

import headrace as hr
from headrace.core.errors import ParamValidationError
from headrace.core.params import jsonable, resolve_params


@hr.asset
def report(
    *,
    month: dt.date,
    top: int = 10,
    mode: Literal["fast", "full"] = "fast",
    ids: list[int] = [],  # noqa: B006
) -> int:
    return top


@hr.asset
def other(*, top: int = 5) -> int:
    return top


def test_cli_strings_are_coerced_to_the_declared_types() -> None:
    values = resolve_params([report], {"month": "2013-07-01", "top": "3", "ids": "[1, 2]"})
    assert values == {
        "report": {"month": dt.date(2013, 7, 1), "top": 3, "mode": "fast", "ids": [1, 2]}
    }
    assert jsonable(values["report"])["month"] == "2013-07-01"


def test_a_param_shared_by_several_assets_applies_to_each() -> None:
    values = resolve_params([report, other], {"month": "2013-01-01", "top": "7"})
    assert values["report"]["top"] == 7 and values["other"]["top"] == 7


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"month": "2013-07-01", "top": "many"}, "param 'top' expects int, got 'many'"),
        ({"month": "2013-07-01", "mode": "slow"}, "param 'mode' expects"),
        ({}, "asset 'report' needs param 'month'"),
        ({"month": "2013-07-01", "tpo": 1}, "unknown param 'tpo' \\(did you mean 'top'"),
        ({"month": "2013-13-01"}, "param 'month' expects date"),
    ],
)
def test_bad_params_name_the_param_and_asset(given: dict[str, object], message: str) -> None:
    with pytest.raises(ParamValidationError, match=message):
        resolve_params([report], given)


def test_assets_without_params_reject_any_param() -> None:
    @hr.asset
    def plain() -> int:
        return 1

    with pytest.raises(ParamValidationError, match="take no params"):
        resolve_params([plain], {"x": 1})

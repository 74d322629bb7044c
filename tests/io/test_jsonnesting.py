"""How deep a JSON body nests, found without recursing, whatever the body holds."""

from __future__ import annotations

import json

import pytest

from headrace.io.jsonnesting import nests_deeper, shallow


def nested(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


@pytest.mark.parametrize(
    ("value", "depth"),
    [
        (1, 0),
        ("text", 0),
        ([], 1),
        ({"a": 1}, 1),
        ({"a": [1, {"b": [[]]}]}, 5),
        ([[1], [[2]], 3], 3),
    ],
)
def test_shallow_counts_levels_of_lists_and_objects(value: object, depth: int) -> None:
    assert shallow(value, depth)
    assert not shallow(value, depth - 1) or depth == 0


def test_a_walk_of_a_value_deeper_than_the_interpreter_allows_does_not_recurse() -> None:
    value: object = 1
    for _ in range(50_000):  # built without recursion; json.dumps could not write it
        value = [value]
    assert not shallow(value, 64)
    assert shallow(value, 50_000)


@pytest.mark.parametrize(
    "body",
    [
        nested(65),
        nested(100_000),
        b"[" * 100_000,  # never closed
        b'{"a": ' * 70 + b"1" + b"}" * 70,
        b'[NaN, {"x": ' + nested(500) + b"}]",  # orjson refuses NaN; json reads it
        b"[Infinity, " + nested(100_000) + b"]",  # and recurses too deep: refused
    ],
)
def test_bodies_nested_too_deep_are_found(body: bytes) -> None:
    assert nests_deeper(body, 64)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        nested(64),
        json.dumps({"metrics": [{"key": f"m{i}", "value": i} for i in range(2_000)]}).encode(),
        b'["[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["]',
        b"[NaN, " + nested(10) + b"]",
        b"{" * 100,  # not JSON at all: its parser says so
        b"\xff\xfe" + nested(100),
    ],
)
def test_other_bodies_are_left_to_their_parser(body: bytes) -> None:
    assert not nests_deeper(body, 64)

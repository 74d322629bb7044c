"""Hostile JSON bodies for the fuzz tests: nested deep, huge, holding non-finite numbers
(``NaN``, ``Infinity``, ``1e400``, which JSON has no place for but Python's ``json`` and
pandas write), or not JSON at all; built by hypothesis from a valid body."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

NON_FINITE = [b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1e999", b"1E+309"]
#: A number in a body, replaced by a non-finite one.
MARK = "__number__"


def _deep(levels: int, closed: bool, opener: bytes) -> bytes:
    close = b"]" if opener == b"[" else b"}"
    if opener == b"{":  # objects need keys: {"a":{"a":...}}
        return b'{"a":' * levels + b"1" + (b"}" * levels if closed else b"")
    return opener * levels + (close * levels if closed else b"")


@st.composite
def deep(draw: Any, template: dict[str, Any]) -> bytes:
    """A body nested from 33 to 200,000 levels, alone or as the value of a field."""
    levels = draw(st.one_of(st.integers(33, 2_000), st.integers(2_000, 200_000)))
    nested = _deep(levels, draw(st.booleans()), draw(st.sampled_from([b"[", b"{"])))
    if draw(st.booleans()) or not template:
        return nested
    key = draw(st.sampled_from(sorted(template)))
    return json.dumps({**template, key: MARK}).encode().replace(f'"{MARK}"'.encode(), nested)


@st.composite
def non_finite(draw: Any, template: dict[str, Any], numbers: list[str]) -> bytes:
    """``template`` with one of its numeric fields (dotted paths) made non-finite."""
    path = draw(st.sampled_from(numbers)).split(".")
    body = json.loads(json.dumps(template))
    cursor = body
    for part in path[:-1]:
        cursor = cursor[int(part)] if isinstance(cursor, list) else cursor[part]
    last = path[-1]
    if isinstance(cursor, list):
        cursor[int(last)] = MARK
    else:
        cursor[last] = MARK
    token = draw(st.sampled_from(NON_FINITE))
    return json.dumps(body).encode().replace(f'"{MARK}"'.encode(), token)


@st.composite
def huge(draw: Any, template: dict[str, Any], size: int) -> bytes:
    """``template`` with a string field, or a list of rows, grown past ``size`` bytes."""
    if draw(st.booleans()):
        return json.dumps(
            {**template, "padding": "x" * (size + draw(st.integers(1, 4096)))}
        ).encode()
    rows = size // 7 + draw(st.integers(1, 1000))  # "[1.5], " is 7 bytes
    return json.dumps({**template, "rows": [[1.5]] * rows}).encode()


def garbage() -> st.SearchStrategy[bytes]:
    """Bytes that are not JSON, or barely: truncated, mis-encoded, empty."""
    return st.one_of(
        st.binary(max_size=64),
        st.sampled_from([b"", b"{", b"[1,", b"\xff\xfe{}", b'{"a": 1}}', b"null", b"1e400"]),
    )


def hostile(template: dict[str, Any], numbers: list[str], size: int) -> st.SearchStrategy[bytes]:
    """Any of the above, from a valid ``template`` whose ``numbers`` hold numbers."""
    kinds = [deep(template), huge(template, size), garbage()]
    if numbers:
        kinds.append(non_finite(template, numbers))
    return st.one_of(kinds)

"""How deep a JSON body nests, found without recursing.

Python's ``json`` parser recurses once per level, so a body of 100,000 ``[`` ends in a
``RecursionError`` (and whatever walks a parsed value deeper than the interpreter's
limit does too). orjson parses up to 1,024 levels and refuses deeper nesting cleanly;
below that, a parsed value is walked level by level. A body with no more brackets
than the limit cannot nest deeper, so most bodies cost two ``bytes.count`` calls.
"""

from __future__ import annotations

import json
from typing import Any


def shallow(data: Any, limit: int) -> bool:
    """Whether the parsed JSON value ``data`` nests at most ``limit`` levels (a scalar
    is level 0; ``[1]`` is 1)."""
    level = [data] if type(data) is list or type(data) is dict else []
    depth = 0
    while level:  # the containers at this depth
        depth += 1
        if depth > limit:
            return False
        below = []
        for item in level:
            for child in item.values() if type(item) is dict else item:
                if type(child) is list or type(child) is dict:
                    below.append(child)
        level = below
    return True


def nests_deeper(body: bytes, limit: int) -> bool:
    """Whether the JSON text ``body`` nests deeper than ``limit`` levels. A body that is
    not JSON at all is not judged here (False): its parser reports it."""
    import orjson

    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        refused = str(exc)
        if "depth" in refused or "recursion" in refused:
            return True
        try:  # NaN and Infinity, which orjson refuses and Python's json reads
            data = json.loads(body)
        except RecursionError:
            return True
        except (ValueError, UnicodeDecodeError):
            return False
    return not shallow(data, limit)

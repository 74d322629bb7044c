"""Code versions: a hash of an asset's function and the project code it calls."""

from __future__ import annotations

import inspect
import marshal
import types
from collections.abc import Callable
from typing import Any

from blake3 import blake3

from headrace.core.assets import AssetSpec

_cache: dict[tuple[int, tuple[str, ...]], str] = {}


def _source(obj: Any) -> bytes:
    try:
        return inspect.getsource(obj).encode()
    except (OSError, TypeError):
        code = getattr(obj, "__code__", None)
        if code is not None:
            return marshal.dumps(code)
        return repr(obj).encode()


def _in_project(obj: Any, prefixes: tuple[str, ...]) -> bool:
    module = getattr(obj, "__module__", None) or ""
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def _referenced(fn: Callable[..., Any]) -> list[Any]:
    code = getattr(fn, "__code__", None)
    if code is None:
        return []
    names: set[str] = set()
    stack = [code]
    while stack:
        current = stack.pop()
        names.update(current.co_names)
        stack.extend(c for c in current.co_consts if isinstance(c, types.CodeType))
    globals_ = getattr(fn, "__globals__", {})
    found = [globals_[n] for n in sorted(names) if n in globals_]
    for cell in getattr(fn, "__closure__", None) or ():
        try:
            found.append(cell.cell_contents)
        except ValueError:  # an empty cell
            continue
    return found


def function_version(fn: Callable[..., Any], prefixes: tuple[str, ...]) -> str:
    """Hash ``fn``'s source and, recursively, the project functions and classes it uses."""
    code = getattr(fn, "__code__", None)
    key = (id(code) if code is not None else id(fn), prefixes)
    cached = _cache.get(key)
    if cached is not None:
        return cached
    hasher = blake3(_source(fn))
    seen: set[int] = {id(fn)}
    stack = _referenced(fn)
    while stack:
        obj = stack.pop()
        if isinstance(obj, AssetSpec):
            obj = obj.fn
        if id(obj) in seen or not callable(obj) or not _in_project(obj, prefixes):
            continue
        seen.add(id(obj))
        hasher.update(_source(obj))
        if inspect.isfunction(obj):
            stack.extend(_referenced(obj))
    digest = hasher.hexdigest()[:24]
    if code is not None:
        _cache[key] = digest
    return digest


def code_version(spec: AssetSpec, project_modules: tuple[str, ...] = ()) -> str:
    """The code version of an asset: explicit ``code_version=`` wins over the hash."""
    if spec.code_version is not None:
        return spec.code_version
    prefixes = project_modules or ((spec.module.split(".")[0],) if spec.module else ())
    return function_version(spec.fn, prefixes)

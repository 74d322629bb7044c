"""Typed run params: keyword-only parameters of asset functions, validated per run."""

from __future__ import annotations

import functools
import json
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from headrace.core.assets import AssetSpec, ParamSpec
from headrace.core.errors import ParamValidationError
from headrace.core.graph import suggest


@functools.lru_cache(maxsize=4096)
def type_hints(fn: Any) -> dict[str, Any]:
    try:
        return typing.get_type_hints(fn)
    except Exception:  # unresolvable forward references: fall back to raw annotations
        return dict(getattr(fn, "__annotations__", {}))


def _adapter(annotation: Any) -> Any:
    from pydantic import TypeAdapter  # lazy: pydantic is only needed when params are used

    return TypeAdapter(annotation)


def _coerce(spec: AssetSpec, param: ParamSpec, value: Any) -> Any:
    annotation = type_hints(spec.fn).get(param.name, param.annotation)
    if isinstance(annotation, str):
        raise ParamValidationError(
            f"asset {spec.name!r}: the type of param {param.name!r} ({annotation!r}) cannot be "
            "resolved; import it at module level",
            param=param.name,
            asset=spec.name,
        )
    from pydantic import ValidationError

    adapter = _adapter(annotation)
    try:
        return adapter.validate_python(value)
    except ValidationError as first:
        if isinstance(value, str):
            try:
                return adapter.validate_json(value)
            except (ValidationError, json.JSONDecodeError):
                pass
        detail = "; ".join(e["msg"] for e in first.errors()[:3])
        type_name = getattr(annotation, "__name__", str(annotation))
        raise ParamValidationError(
            f"asset {spec.name!r}: param {param.name!r} expects {type_name}, got {value!r} "
            f"({detail})",
            param=param.name,
            asset=spec.name,
        ) from None


def resolve_params(
    specs: Sequence[AssetSpec], given: Mapping[str, Any]
) -> dict[str, dict[str, Any]]:
    """Validate ``given`` against the params of ``specs``.

    Returns, per asset, the keyword arguments to call it with (defaults filled in).

    Raises:
        ParamValidationError: a param no selected asset takes, a required param that is
            missing, or a value that does not match the declared type.
    """
    known = {p.name for spec in specs for p in spec.params}
    for name in given:
        if name not in known:
            hint = (
                f"; the selected assets take: {', '.join(sorted(known))}"
                if known
                else "; the selected assets take no params"
            )
            raise ParamValidationError(
                f"unknown param {name!r}{suggest(name, known)}{hint}", param=name
            )
    out: dict[str, dict[str, Any]] = {}
    for spec in specs:
        if not spec.params:
            continue
        values: dict[str, Any] = {}
        for param in spec.params:
            if param.name in given:
                values[param.name] = _coerce(spec, param, given[param.name])
            elif param.required:
                raise ParamValidationError(
                    f"asset {spec.name!r} needs param {param.name!r}; give it with "
                    f"--param {param.name}=VALUE",
                    param=param.name,
                    asset=spec.name,
                )
            else:
                values[param.name] = param.default
        out[spec.name] = values
    return out


def jsonable(values: Mapping[str, Any]) -> dict[str, Any]:
    """Params in a JSON-safe form, for recording on the run and hashing."""
    if not values:
        return {}
    from pydantic_core import to_jsonable_python

    return {k: to_jsonable_python(v) for k, v in values.items()}

"""Check suites in YAML beside the code: ``<name>.checks.yaml`` files in the project.

    asset: flights_clean
    checks:
      - not_null: carrier                      # a column
      - unique: [flight_id]                    # columns
      - between: {column: arr_delay, min: -120, max: 1200, severity: warn}
      - in_set: {column: origin, values: [EWR, JFK, LGA]}
      - references: {column: tailnum, asset: planes}
      - anomaly: {metric: row_count, window: 12}
      - custom: {function: "flights.checks:no_time_travel", severity: warn}

Each entry names one check (the functions of ``headrace.checks``) with its column(s)
or its keyword arguments. Every mistake is reported with the file, the check's position
and the problem, when the project loads, before any data is read.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from headrace.core import checks as builders
from headrace.core.checks import Check, CheckDefinitionError
from headrace.core.graph import suggest

KINDS = {
    name: getattr(builders, name)
    for name in (
        "not_null",
        "unique",
        "between",
        "in_set",
        "matches",
        "expression",
        "row_count",
        "mean",
        "stddev",
        "quantile",
        "null_fraction",
        "distinct_count",
        "freshness",
        "schema",
        "sql",
        "references",
        "anomaly",
        "custom",
    )
}


def _function(where: str, path: Any) -> Any:
    """The function a YAML ``custom`` check names as ``module:function``."""
    import importlib

    if not isinstance(path, str) or path.count(":") != 1:
        raise CheckDefinitionError(
            f"{where}: custom needs function: 'module:function', got {path!r}"
        )
    module_name, attribute = path.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise CheckDefinitionError(
            f"{where}: cannot import module {module_name!r} of {path!r}: {exc}"
        ) from exc
    function = getattr(module, attribute, None)
    if not callable(function):
        raise CheckDefinitionError(
            f"{where}: module {module_name!r} has no function {attribute!r}"
            + suggest(attribute, [n for n in vars(module) if not n.startswith("_")])
        )
    return function


def _build(where: str, kind: str, value: Any) -> Check:
    builder = KINDS.get(kind)
    if builder is None:
        raise CheckDefinitionError(
            f"{where}: unknown check {kind!r}{suggest(kind, KINDS)}; known: {', '.join(KINDS)}"
        )
    if kind == "unique":
        columns = value if isinstance(value, list) else [value] if isinstance(value, str) else None
        if isinstance(value, Mapping):
            columns = value.get("columns")
            extra = {k: v for k, v in value.items() if k != "columns"}
        else:
            extra = {}
        if not columns or not all(isinstance(c, str) for c in columns):
            raise CheckDefinitionError(f"{where}: unique needs a column or a list of columns")
        made: Check = builder(*columns, **_kwargs(where, builder, extra, skip={"columns"}))
        return made
    if kind == "custom":
        if isinstance(value, str):
            value = {"function": value}
        if not isinstance(value, Mapping) or "function" not in value:
            raise CheckDefinitionError(f"{where}: custom needs function: 'module:function'")
        value = {**value, "function": _function(where, value["function"])}
    if isinstance(value, str):  # a column, or the SQL of expression / sql
        single: Check = builder(value)
        return single
    if not isinstance(value, Mapping):
        raise CheckDefinitionError(
            f"{where}: {kind} takes a column name or a mapping of its arguments, got {value!r}"
        )
    args = dict(value)
    positional = [
        p
        for p in inspect.signature(builder).parameters.values()
        if p.kind is p.POSITIONAL_OR_KEYWORD
    ]
    call_args = []
    for parameter in positional:
        key = "sql" if parameter.name == "sql" and "sql" not in args else parameter.name
        if key in args:
            call_args.append(args.pop(key))
        elif parameter.default is parameter.empty:
            raise CheckDefinitionError(f"{where}: {kind} needs {parameter.name!r}")
    built: Check = builder(*call_args, **_kwargs(where, builder, args))
    return built


def _kwargs(
    where: str, builder: Any, args: Mapping[str, Any], *, skip: set[str] | None = None
) -> dict[str, Any]:
    parameters = list(inspect.signature(builder).parameters.values())
    allowed = {p.name for p in parameters if p.kind is p.KEYWORD_ONLY}
    known = {p.name for p in parameters if p.kind is not p.VAR_POSITIONAL} | (skip or set())
    for key in args:
        if key not in allowed:
            raise CheckDefinitionError(
                f"{where}: {builder.__name__} has no argument {key!r}{suggest(key, known)}; "
                f"it takes {', '.join(sorted(known))}"
            )
    out = dict(args)
    if "inclusive" in out and isinstance(out["inclusive"], list):
        out["inclusive"] = tuple(out["inclusive"])
    return out


def load_suite_file(path: Path) -> tuple[str, list[Check]]:
    """The asset a YAML suite file is for, and its checks."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise CheckDefinitionError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, Mapping) or "asset" not in data or "checks" not in data:
        raise CheckDefinitionError(f"{path}: expected 'asset:' and 'checks:' at the top")
    unknown = set(data) - {"asset", "checks"}
    if unknown:
        raise CheckDefinitionError(f"{path}: unknown key(s) {', '.join(sorted(map(str, unknown)))}")
    asset, entries = data["asset"], data["checks"]
    if not isinstance(asset, str) or not isinstance(entries, list):
        raise CheckDefinitionError(f"{path}: 'asset' must be a name and 'checks' a list")
    built: list[Check] = []
    for index, entry in enumerate(entries, start=1):
        where = f"{path.name}, suite {asset!r}, check #{index}"
        if not isinstance(entry, Mapping) or len(entry) != 1:
            raise CheckDefinitionError(f"{where}: each check is one 'kind: arguments' entry")
        ((kind, value),) = entry.items()
        try:
            built.append(_build(where, str(kind), value))
        except CheckDefinitionError as exc:
            if str(exc).startswith(where):
                raise
            raise CheckDefinitionError(f"{where}: {exc}", suite=asset) from exc
        except TypeError as exc:
            raise CheckDefinitionError(f"{where}: {exc}", suite=asset) from exc
    return asset, built


def find_suite_files(folder: Path) -> list[Path]:
    return sorted({*folder.rglob("*.checks.yaml"), *folder.rglob("*.checks.yml")})

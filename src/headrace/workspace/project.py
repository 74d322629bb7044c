"""Load a project's asset definitions from the module or package the settings name."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from types import ModuleType
from typing import Any

from headrace.core.assets import AssetSpec
from headrace.core.errors import DefinitionError
from headrace.core.graph import AssetGraph
from headrace.workspace.settings import Settings


class ProjectLoadError(DefinitionError):
    """The project's module cannot be imported."""


class ProjectMissingError(ProjectLoadError):
    """No project module is set, or it does not exist (a workspace without pipelines)."""


def _collect(module: ModuleType, out: list[AssetSpec], seen: set[int]) -> None:
    for value in vars(module).values():
        candidates: list[Any]
        if isinstance(value, AssetSpec):
            candidates = [value]
        elif isinstance(value, list | tuple):
            candidates = [v for v in value if isinstance(v, AssetSpec)]
        elif isinstance(value, dict):
            candidates = [v for v in value.values() if isinstance(v, AssetSpec)]
        else:
            continue
        for spec in candidates:
            if id(spec) not in seen:
                seen.add(id(spec))
                out.append(spec)


def _import(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and name.startswith(exc.name):
            raise ProjectMissingError(
                f"project module {name!r} cannot be found (is [project] path right?)"
            ) from exc
        raise ProjectLoadError(f"importing project module {name!r} failed: {exc}") from exc
    except DefinitionError:
        raise
    except Exception as exc:
        raise ProjectLoadError(
            f"importing project module {name!r} failed: {type(exc).__name__}: {exc}"
        ) from exc


def load_specs(module_name: str) -> list[AssetSpec]:
    """Every asset defined in a module, or in a package and all its submodules.

    Assets are found as module globals, or inside lists, tuples and dicts held by them
    (so assets made in a loop can be collected in a list). A module-level
    ``definitions`` list, when present, is used as is.
    """
    module = _import(module_name)
    explicit = getattr(module, "definitions", None)
    if isinstance(explicit, list | tuple):
        return list(explicit)
    specs: list[AssetSpec] = []
    seen: set[int] = set()
    _collect(module, specs, seen)
    path = getattr(module, "__path__", None)
    if path is not None:
        for info in sorted(pkgutil.walk_packages(path, module_name + "."), key=lambda i: i.name):
            _collect(_import(info.name), specs, seen)
    return specs


def _with_yaml_suites(specs: list[AssetSpec], settings: Settings) -> list[AssetSpec]:
    """Add the checks of ``*.checks.yaml`` files beside the code to their assets."""
    from dataclasses import replace

    from headrace.core.checks import CheckDefinitionError, Suite
    from headrace.core.graph import suggest
    from headrace.workspace.suites import find_suite_files, load_suite_file

    files = find_suite_files(settings.project_dir)
    if not files:
        return specs
    by_name = {spec.name: spec for spec in specs}
    for path in files:
        asset, checks = load_suite_file(path)
        spec = by_name.get(asset)
        if spec is None:
            raise CheckDefinitionError(
                f"{path.name}: suite for asset {asset!r}, which is not defined"
                + suggest(asset, by_name)
            )
        merged = Suite(asset, [*spec.checks, *checks])  # refuses a name used twice
        by_name[asset] = replace(spec, checks=merged.checks)
    return [by_name[spec.name] for spec in specs]


def load_graph(settings: Settings) -> AssetGraph:
    """Import the project named by the settings and validate its asset graph."""
    if not settings.project_module:
        raise ProjectMissingError(
            'no project module is set: add module = "..." under [project] in headrace.toml '
            "or set HEADRACE_PROJECT_MODULE"
        )
    project_dir = str(settings.project_dir)
    if project_dir not in sys.path:
        sys.path.insert(0, project_dir)
    return AssetGraph.build(_with_yaml_suites(load_specs(settings.project_module), settings))

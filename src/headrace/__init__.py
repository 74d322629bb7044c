"""headrace: one platform for the DataOps + MLOps loop.

``import headrace`` stays light: the names below load their modules on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "asset": "headrace.core.assets",
    "model": "headrace.core.assets",
    "policies": "headrace.policies",
    "monitors": "headrace.monitors",
    "drift": "headrace.drift",
    "upstream": "headrace.core.assets",
    "AssetSpec": "headrace.core.assets",
    "RetryPolicy": "headrace.core.assets",
    "static": "headrace.core.partitions",
    "daily": "headrace.core.partitions",
    "monthly": "headrace.core.partitions",
    "materialize": "headrace.api",
    "backfill": "headrace.api",
    "resume": "headrace.api",
    "read": "headrace.api",
    "Workspace": "headrace.runtime.workspace",
    "open_workspace": "headrace.runtime.workspace",
    "RunResult": "headrace.orchestration.runner",
    "StepContext": "headrace.orchestration.step",
    "HeadraceError": "headrace.errors",
    "Suite": "headrace.core.checks",
    "validate": "headrace.api",
    "checks": "headrace.checks",
    "start_run": "headrace.tracking.runs",
    "active_run": "headrace.tracking.runs",
    "log_param": "headrace.tracking.runs",
    "log_params": "headrace.tracking.runs",
    "log_metric": "headrace.tracking.runs",
    "log_metrics": "headrace.tracking.runs",
    "set_tag": "headrace.tracking.runs",
    "set_tags": "headrace.tracking.runs",
    "log_artifact": "headrace.tracking.runs",
    "log_model": "headrace.api",
    "load_model": "headrace.api",
    "set_alias": "headrace.api",
    "search_runs": "headrace.api",
}

__all__ = sorted([*_EXPORTS, "__version__"])

if TYPE_CHECKING:
    from headrace import checks as checks
    from headrace import drift as drift
    from headrace import monitors as monitors
    from headrace import policies as policies
    from headrace.api import backfill as backfill
    from headrace.api import load_model as load_model
    from headrace.api import log_model as log_model
    from headrace.api import materialize as materialize
    from headrace.api import read as read
    from headrace.api import resume as resume
    from headrace.api import search_runs as search_runs
    from headrace.api import set_alias as set_alias
    from headrace.api import validate as validate
    from headrace.core.assets import AssetSpec as AssetSpec
    from headrace.core.assets import RetryPolicy as RetryPolicy
    from headrace.core.assets import asset as asset
    from headrace.core.assets import model as model
    from headrace.core.assets import upstream as upstream
    from headrace.core.checks import Suite as Suite
    from headrace.core.partitions import daily as daily
    from headrace.core.partitions import monthly as monthly
    from headrace.core.partitions import static as static
    from headrace.errors import HeadraceError as HeadraceError
    from headrace.orchestration.runner import RunResult as RunResult
    from headrace.orchestration.step import StepContext as StepContext
    from headrace.runtime.workspace import Workspace as Workspace
    from headrace.runtime.workspace import open_workspace as open_workspace
    from headrace.tracking.runs import active_run as active_run
    from headrace.tracking.runs import log_artifact as log_artifact
    from headrace.tracking.runs import log_metric as log_metric
    from headrace.tracking.runs import log_metrics as log_metrics
    from headrace.tracking.runs import log_param as log_param
    from headrace.tracking.runs import log_params as log_params
    from headrace.tracking.runs import set_tag as set_tag
    from headrace.tracking.runs import set_tags as set_tags
    from headrace.tracking.runs import start_run as start_run


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'headrace' has no attribute {name!r}")
    if module == f"headrace.{name}":  # a submodule, e.g. headrace.checks
        value = importlib.import_module(module)
    else:
        value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__

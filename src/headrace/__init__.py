"""headrace: one platform for the DataOps + MLOps loop.

``import headrace`` stays light: the names below load their modules on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "asset": "headrace.core.assets",
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
}

__all__ = sorted([*_EXPORTS, "__version__"])

if TYPE_CHECKING:
    from headrace.api import backfill, materialize, read, resume
    from headrace.core.assets import AssetSpec, RetryPolicy, asset, upstream
    from headrace.core.partitions import daily, monthly, static
    from headrace.errors import HeadraceError
    from headrace.orchestration.runner import RunResult
    from headrace.orchestration.step import StepContext
    from headrace.runtime.workspace import Workspace, open_workspace


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'headrace' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__

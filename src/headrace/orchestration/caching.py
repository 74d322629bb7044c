"""Cache keys: a step is skipped when nothing that could change its output changed."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from blake3 import blake3

from headrace.store.records import VersionRecord


def cache_key(
    *,
    code_version: str,
    partition: str | None,
    io: str | None,
    params: dict[str, Any],
    inputs: Sequence[tuple[str, Sequence[str]]],
    source: str | None = None,
) -> str:
    """Hash of the code version, params, partition and exact input versions."""
    payload = json.dumps(
        [code_version, partition, io, params, [[p, list(v)] for p, v in inputs], source],
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return blake3(payload.encode()).hexdigest()[:32]


def why_run(
    head: VersionRecord | None,
    *,
    code_version: str,
    params: dict[str, Any],
    force: bool,
    observed: bool = False,
    has_inputs: bool = True,
) -> str:
    """Why a step runs instead of reusing the branch's current version."""
    if force:
        return "forced"
    if head is None:
        return "no previous version"
    if head.code_version != code_version:
        return "code changed"
    if head.params != params:
        return "params changed"
    if observed and not has_inputs:
        return "source changed"
    return "inputs changed" if not observed else "inputs or source changed"

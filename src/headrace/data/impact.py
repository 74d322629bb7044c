"""Impact analysis: what a change touches before it is merged (dbt's ``state:modified+``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from headrace.core.codeversion import code_version
from headrace.runtime.workspace import Workspace


@dataclass(frozen=True, kw_only=True)
class ImpactReport:
    compared: str  # "working tree" or "branch dev"
    changed: dict[str, str] = field(default_factory=dict)  # asset -> why
    downstream: dict[str, list[str]] = field(default_factory=dict)  # asset -> changed roots

    @property
    def assets(self) -> list[str]:
        return sorted(set(self.changed) | set(self.downstream))


def _code_versions(ws: Workspace, branch: str) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for (asset, _), version in ws.store.versions.heads(branch).items():
        out.setdefault(asset, version.code_version)
    return out


def impact(ws: Workspace, *, branch: str | None = None, base: str = "main") -> ImpactReport:
    """Assets changed on ``branch`` (or in the working tree) against ``base``, and all
    that is downstream of them in the current definitions."""
    graph = ws.graph
    main = _code_versions(ws, base)
    changed: dict[str, str] = {}
    if branch is None:
        compared = "working tree"
        for name, spec in graph.specs.items():
            current = code_version(spec, ws.project_modules)
            if name not in main:
                changed[name] = f"not materialized on {base}"
            elif main[name] != current:
                changed[name] = "code changed"
    else:
        compared = f"branch {branch}"
        if not ws.store.branches.exists(branch):
            from headrace.store.errors import BranchNotFoundError

            raise BranchNotFoundError(branch)
        theirs = ws.store.versions.heads(branch)
        ours = ws.store.versions.heads(base)
        for key, version in theirs.items():
            asset = key[0]
            mine = ours.get(key)
            if mine is None:
                changed.setdefault(asset, f"new on {branch}")
            elif mine.code_version != version.code_version:
                changed[asset] = "code changed"
            elif mine.id != version.id:
                changed.setdefault(asset, "data changed")
    downstream: dict[str, list[str]] = {}
    for root in sorted(changed):
        if root not in graph:
            continue
        for name in graph.downstream_closure([root]) - {root}:
            if name not in changed:
                downstream.setdefault(name, []).append(root)
    return ImpactReport(compared=compared, changed=changed, downstream=downstream)

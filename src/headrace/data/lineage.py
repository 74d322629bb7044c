"""Version-level lineage: which versions made a version, and what was made from it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import select

from headrace.runtime.workspace import Workspace
from headrace.store.records import VersionRecord
from headrace.store.schema import asset_versions, version_inputs


@dataclass
class LineageNode:
    version: VersionRecord
    parameter: str | None = None  # how the parent (downstream) read it, upstream trees only
    children: list[LineageNode] = field(default_factory=list)
    repeated: bool = False  # already shown elsewhere in the tree


def _versions(ws: Workspace, ids: Iterable[str]) -> dict[str, VersionRecord]:
    wanted = list(set(ids))
    out: dict[str, VersionRecord] = {}
    with ws.store.read() as c:
        for i in range(0, len(wanted), 5000):
            rows = c.execute(
                select(asset_versions).where(asset_versions.c.id.in_(wanted[i : i + 5000]))
            ).all()
            out.update({r.id: VersionRecord.from_row(r) for r in rows})
    return out


def _edges(ws: Workspace, ids: list[str], *, upstream: bool) -> list[tuple[str, str, str]]:
    """(from, to, parameter) edges one level away from ``ids``."""
    mine = version_inputs.c.version_id if upstream else version_inputs.c.input_version_id
    out: list[tuple[str, str, str]] = []
    with ws.store.read() as c:
        for i in range(0, len(ids), 5000):
            rows = c.execute(
                select(
                    version_inputs.c.version_id,
                    version_inputs.c.input_version_id,
                    version_inputs.c.parameter,
                ).where(mine.in_(ids[i : i + 5000]))
            ).all()
            for made, used, parameter in rows:
                out.append((made, used, parameter) if upstream else (used, made, parameter))
    return out


def lineage_tree(
    ws: Workspace, root: VersionRecord, *, upstream: bool = True, depth: int = 20
) -> LineageNode:
    """The tree of versions upstream (what made ``root``) or downstream (what it made)."""
    top = LineageNode(version=root)
    frontier = [top]
    seen = {root.id}
    for _ in range(depth):
        if not frontier:
            break
        edges = _edges(ws, [n.version.id for n in frontier], upstream=upstream)
        records = _versions(ws, [e[1] for e in edges])
        by_source: dict[str, list[tuple[str, str]]] = {}
        for source, target, parameter in edges:
            by_source.setdefault(source, []).append((target, parameter))
        next_frontier: list[LineageNode] = []
        for node in frontier:
            for target, parameter in sorted(
                by_source.get(node.version.id, []),
                key=lambda e: (
                    (records[e[0]].asset, records[e[0]].partition or "")
                    if e[0] in records
                    else ("", "")
                ),
            ):
                record = records.get(target)
                if record is None:
                    continue
                child = LineageNode(version=record, parameter=parameter, repeated=target in seen)
                node.children.append(child)
                if target not in seen:
                    seen.add(target)
                    next_frontier.append(child)
        frontier = next_frontier
    return top

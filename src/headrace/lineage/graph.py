"""One lineage graph: headrace's own assets (each asset a job reading its upstream
assets' datasets and writing its own) joined with the external jobs and datasets other
producers reported (``POST /api/v1/lineage``), walked from any node."""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from headrace.lineage.events import dataset_name, namespace
from headrace.store.lineage import Node

if TYPE_CHECKING:
    from headrace.runtime.workspace import Workspace


def asset_edges(ws: Workspace, branch: str = "main") -> list[tuple[Node, Node]]:
    """headrace's assets as OpenLineage names them: ``<project>.<asset>`` jobs and
    ``<branch>/<asset>`` datasets in namespace ``headrace://<project>``."""
    project = ws.settings.project_name
    space = namespace(project)
    out = []
    for name, spec in ws.graph.specs.items():
        job = Node("job", space, f"{project}.{name}")
        for up in spec.upstream_names:
            out.append((Node("dataset", space, dataset_name(branch, up)), job))
        out.append((job, Node("dataset", space, dataset_name(branch, name))))
    return out


def lineage_graph(
    ws: Workspace,
    start: Node,
    *,
    depth: int = 5,
    branch: str = "main",
    direction: str = "both",
) -> dict[str, Any]:
    """The nodes within ``depth`` steps of ``start`` (``upstream``, ``downstream`` or
    ``both``), and the edges among them. Raises KeyError when ``start`` is in no edge."""
    edges = ws.store.lineage.io()
    problems = []
    try:
        edges += asset_edges(ws, branch)
    except Exception as exc:  # the project does not load: external lineage still answers
        problems.append(f"headrace's own assets are left out: the project did not load ({exc})")
    after: dict[Node, set[Node]] = {}
    before: dict[Node, set[Node]] = {}
    for a, b in edges:
        after.setdefault(a, set()).add(b)
        before.setdefault(b, set()).add(a)
    if start not in after and start not in before:
        raise KeyError(start.key)
    seen = {start: 0}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        if seen[node] >= depth:
            continue
        nearby: set[Node] = set()
        if direction in ("both", "downstream"):
            nearby |= after.get(node, set())
        if direction in ("both", "upstream"):
            nearby |= before.get(node, set())
        for other in nearby:
            if other not in seen:
                seen[other] = seen[node] + 1
                queue.append(other)
    own = namespace(ws.settings.project_name)
    nodes = sorted(seen, key=lambda n: (seen[n], n.key))
    return {
        "start": start.key,
        "depth": depth,
        "direction": direction,
        "nodes": [
            {
                "id": n.key,
                "kind": n.kind,
                "namespace": n.namespace,
                "name": n.name,
                "headrace": n.namespace == own,
                "distance": seen[n],
            }
            for n in nodes
        ],
        "edges": [
            {"from": a, "to": b}
            for a, b in sorted({(a.key, b.key) for a, b in edges if a in seen and b in seen})
        ],
        "problems": problems,
    }

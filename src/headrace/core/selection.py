"""dbt-like selection: ``asset``, ``+asset``, ``asset+``, ``tag:x``, ``group:y``, ``*``.

Terms separated by spaces are united; parts joined by a comma inside one term are
intersected (``tag:daily,group:flights``). A leading ``+`` adds everything upstream, a
trailing ``+`` everything downstream.
"""

from __future__ import annotations

from headrace.core.errors import SelectionError
from headrace.core.graph import AssetGraph, suggest


def _atom(graph: AssetGraph, text: str) -> set[str]:
    up = text.startswith("+")
    down = text.endswith("+") and len(text) > 1
    core = text[1 if up else 0 : len(text) - 1 if down else len(text)]
    if not core:
        raise SelectionError(f"selection term {text!r} names nothing")
    if core == "*":
        base = set(graph.specs)
    elif core.startswith("tag:"):
        tag = core[4:]
        base = {n for n, s in graph.specs.items() if tag in s.tags}
        if not base:
            known = sorted({t for s in graph.specs.values() for t in s.tags})
            raise SelectionError(f"no asset has tag {tag!r}" + suggest(tag, known))
    elif core.startswith("group:"):
        group = core[6:]
        base = {n for n, s in graph.specs.items() if s.group == group}
        if not base:
            known = sorted({s.group for s in graph.specs.values()})
            raise SelectionError(f"no asset is in group {group!r}" + suggest(group, known))
    else:
        if core not in graph.specs:
            raise SelectionError(f"unknown asset {core!r}" + suggest(core, graph.specs))
        base = {core}
    out = set(base)
    if up:
        out |= graph.upstream_closure(base)
    if down:
        out |= graph.downstream_closure(base)
    return out


def select(graph: AssetGraph, expression: str | None, *, exclude: str | None = None) -> list[str]:
    """Resolve a selection expression to asset names, in dependency order."""
    text = (expression or "*").strip()
    if not text:
        raise SelectionError("empty selection; name an asset, tag:NAME, group:NAME or *")
    chosen: set[str] = set()
    for term in text.split():
        parts = [p for p in term.split(",")]
        if any(not p for p in parts):
            raise SelectionError(f"selection term {term!r} has an empty part around a comma")
        current = _atom(graph, parts[0])
        for part in parts[1:]:
            current &= _atom(graph, part)
        chosen |= current
    if exclude:
        chosen -= set(select(graph, exclude))
    return [name for name in graph.order if name in chosen]

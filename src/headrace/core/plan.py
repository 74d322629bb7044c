"""Planning: the steps (asset + partition) of a run and their dependencies."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from headrace.core.errors import PartitionError
from headrace.core.graph import AssetGraph


def step_key(asset: str, partition: str | None) -> str:
    """``asset`` or ``asset[partition]``: how a step is named everywhere."""
    return asset if partition is None else f"{asset}[{partition}]"


def parse_step_key(key: str) -> tuple[str, str | None]:
    if key.endswith("]") and "[" in key:
        asset, _, rest = key.partition("[")
        return asset, rest[:-1]
    return key, None


@dataclass(frozen=True, slots=True)
class Step:
    key: str
    asset: str
    partition: str | None
    deps: tuple[str, ...]


@dataclass(frozen=True)
class Plan:
    """Steps in an order where each comes after its dependencies."""

    steps: dict[str, Step]

    def __len__(self) -> int:
        return len(self.steps)

    def to_json(self) -> list[list[object]]:
        return [[s.key, list(s.deps)] for s in self.steps.values()]

    @classmethod
    def from_json(cls, data: list[list[object]]) -> Plan:
        steps: dict[str, Step] = {}
        for key, deps in data:
            assert isinstance(key, str) and isinstance(deps, list)
            asset, partition = parse_step_key(key)
            steps[key] = Step(key=key, asset=asset, partition=partition, deps=tuple(deps))
        return cls(steps=steps)


def _partitions_for(graph: AssetGraph, name: str, requested: Sequence[str] | None) -> list[str]:
    definition = graph[name].partitions
    assert definition is not None
    if requested is None:
        return definition.keys()
    keys: list[str] = []
    errors: list[str] = []
    for key in requested:
        try:
            keys.append(definition.validate_key(key))
        except PartitionError as exc:
            errors.append(str(exc))
    if not keys:
        raise PartitionError(f"asset {name!r}: " + "; ".join(errors), asset=name)
    return keys


def build_plan(
    graph: AssetGraph, names: Sequence[str], partitions: Sequence[str] | None = None
) -> Plan:
    """Plan the selected assets; partitioned ones get a step per requested partition.

    ``partitions=None`` means every partition of each partitioned asset.
    """
    selected = set(names)
    planned: dict[str, list[str | None]] = {}
    steps: dict[str, Step] = {}
    for name in graph.order:
        if name not in selected:
            continue
        spec = graph[name]
        keys: list[str | None] = (
            [None] if spec.partitions is None else list(_partitions_for(graph, name, partitions))
        )
        planned[name] = keys
        for partition in keys:
            deps: list[str] = []
            for item in spec.inputs:
                if item.asset not in planned:
                    continue
                wanted = graph.upstream_partitions(spec, item, partition)
                if wanted is None:
                    deps.append(step_key(item.asset, None))
                else:
                    have = set(planned[item.asset])
                    deps.extend(step_key(item.asset, k) for k in wanted if k in have)
            for dep in (*spec.deps, *spec.check_references):
                if dep in planned:
                    deps.extend(step_key(dep, k) for k in planned[dep])
            key = step_key(name, partition)
            steps[key] = Step(
                key=key, asset=name, partition=partition, deps=tuple(dict.fromkeys(deps))
            )
    return Plan(steps=steps)

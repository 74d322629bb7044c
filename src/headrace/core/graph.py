"""The asset graph: validation, dependency order and partition mapping."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from difflib import get_close_matches

from headrace.core.assets import AssetInput, AssetSpec
from headrace.core.errors import (
    AssetCycleError,
    DefinitionError,
    DuplicateAssetError,
    MissingUpstreamError,
    PartitionError,
)
from headrace.core.partitions import PartitionsDefinition, StaticPartitions, TimePartitions


def suggest(name: str, known: Iterable[str]) -> str:
    """A ``did you mean`` suffix for an unknown name, or an empty string."""
    close = get_close_matches(name, list(known), n=3)
    return f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""


def closure(start: Iterable[str], neighbours: Callable[[str], Iterable[str]]) -> set[str]:
    """``start`` and every node reachable from it through ``neighbours``."""
    out: set[str] = set()
    stack = list(start)
    while stack:
        node = stack.pop()
        if node not in out:
            out.add(node)
            stack.extend(neighbours(node))
    return out


def _compatible(down: PartitionsDefinition, up: PartitionsDefinition) -> bool:
    if down == up:
        return True
    if isinstance(down, TimePartitions) and isinstance(up, TimePartitions):
        return True
    return (
        isinstance(down, StaticPartitions)
        and isinstance(up, StaticPartitions)
        and set(down.values) == set(up.values)
    )


@dataclass(frozen=True)
class AssetGraph:
    """A validated set of asset definitions.

    Building one checks every rule that can be checked without running anything: unique
    names, known upstream assets, no cycles, compatible partitions. ``order`` lists the
    assets so that each comes after everything it depends on.
    """

    specs: dict[str, AssetSpec]
    order: tuple[str, ...]
    downstream: dict[str, tuple[str, ...]] = field(repr=False)

    @classmethod
    def build(cls, specs: Sequence[AssetSpec]) -> AssetGraph:
        by_name: dict[str, AssetSpec] = {}
        for spec in specs:
            if not isinstance(spec, AssetSpec):
                raise DefinitionError(f"expected an @asset, got {spec!r}")
            previous = by_name.get(spec.name)
            if previous is not None and previous is not spec:
                raise DuplicateAssetError(
                    f"asset {spec.name!r} is defined twice: in {previous.module or '?'} "
                    f"({previous.fn.__qualname__}) and in {spec.module or '?'} "
                    f"({spec.fn.__qualname__})",
                    asset=spec.name,
                )
            by_name[spec.name] = spec
        downstream: dict[str, list[str]] = {name: [] for name in by_name}
        for spec in by_name.values():
            for up in spec.upstream_names:
                if up not in by_name:
                    raise MissingUpstreamError(
                        f"asset {spec.name!r} reads {up!r}, which is not defined"
                        + suggest(up, by_name),
                        asset=spec.name,
                        upstream=up,
                    )
                downstream[up].append(spec.name)
            for item in spec.inputs:
                cls._check_input_partitions(spec, item, by_name[item.asset])
        order = cls._toposort(by_name, downstream)
        return cls(
            specs=by_name,
            order=order,
            downstream={name: tuple(v) for name, v in downstream.items()},
        )

    @staticmethod
    def _check_input_partitions(spec: AssetSpec, item: AssetInput, up: AssetSpec) -> None:
        if item.partition_offset and up.partitions is None:
            raise PartitionError(
                f"asset {spec.name!r}: parameter {item.parameter!r} reads {up.name!r} with a "
                "partition offset, but that asset has no partitions",
                asset=spec.name,
            )
        if (
            spec.partitions is not None
            and up.partitions is not None
            and not _compatible(spec.partitions, up.partitions)
        ):
            raise PartitionError(
                f"asset {spec.name!r} and its upstream {up.name!r} have partitions that "
                "cannot be mapped onto each other (static keys differ, or static vs time)",
                asset=spec.name,
            )

    @staticmethod
    def _toposort(specs: dict[str, AssetSpec], downstream: dict[str, list[str]]) -> tuple[str, ...]:
        indegree = {name: len(spec.upstream_names) for name, spec in specs.items()}
        ready = [name for name, n in indegree.items() if n == 0]
        order: list[str] = []
        i = 0
        while i < len(ready):
            name = ready[i]
            i += 1
            order.append(name)
            for child in downstream[name]:
                indegree[child] -= 1
                if indegree[child] == 0:
                    ready.append(child)
        if len(order) != len(specs):
            remaining = {n for n, d in indegree.items() if d > 0}
            raise AssetCycleError(AssetGraph._find_cycle(specs, remaining))
        return tuple(order)

    @staticmethod
    def _find_cycle(specs: dict[str, AssetSpec], remaining: set[str]) -> list[str]:
        start = min(remaining)
        path: list[str] = []
        seen: dict[str, int] = {}
        node = start
        while node not in seen:
            seen[node] = len(path)
            path.append(node)
            node = next(u for u in specs[node].upstream_names if u in remaining)
        cycle = path[seen[node] :]
        cycle.reverse()
        return [*cycle, cycle[0]]

    def __contains__(self, name: object) -> bool:
        return name in self.specs

    def __getitem__(self, name: str) -> AssetSpec:
        return self.specs[name]

    def __len__(self) -> int:
        return len(self.specs)

    def upstream_closure(self, names: Iterable[str]) -> set[str]:
        """The assets named and everything they depend on, transitively."""
        return closure(names, lambda name: self.specs[name].upstream_names)

    def downstream_closure(self, names: Iterable[str]) -> set[str]:
        """The assets named and everything that depends on them, transitively."""
        return closure(names, self.downstream.__getitem__)

    def upstream_partitions(
        self, spec: AssetSpec, item: AssetInput, partition: str | None
    ) -> list[str] | None:
        """The upstream partitions a step reads through one input.

        Returns None when the upstream asset is not partitioned (read it whole), and a
        list of keys (possibly empty, past the start) when it is.
        """
        up = self.specs[item.asset].partitions
        if up is None:
            return None
        if partition is None or spec.partitions is None:
            return up.keys()
        key: str | None = partition
        if item.partition_offset:
            key = spec.partitions.offset(partition, item.partition_offset)
            if key is None:
                return []
        assert key is not None
        if spec.partitions == up or isinstance(up, StaticPartitions):
            return [key]
        assert isinstance(up, TimePartitions)
        window = spec.partitions.window(key)
        assert window is not None
        start, end = window
        keys: list[str] = []
        current: str | None = up._key(max(start, up.start))
        while current is not None:
            first = up.window(current)[0]
            if first >= end:
                break
            keys.append(current)
            current = up.offset(current, 1)
        return keys

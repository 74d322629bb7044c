from __future__ import annotations

import pytest

import headrace as hr
from headrace.core.errors import (
    AssetCycleError,
    DuplicateAssetError,
    MissingUpstreamError,
    PartitionError,
    SelectionError,
)
from headrace.core.graph import AssetGraph
from headrace.core.plan import build_plan, parse_step_key
from headrace.core.selection import select


def _chain() -> list[hr.AssetSpec]:
    @hr.asset(group="ingest", tags=["raw"])
    def raw() -> int:
        return 1

    @hr.asset(group="ingest")
    def clean(raw: int) -> int:
        return raw

    @hr.asset(group="features", tags=["ml"])
    def features(clean: int) -> int:
        return clean

    @hr.asset(group="features", tags=["ml"])
    def model(features: int) -> int:
        return features

    @hr.asset
    def other() -> int:
        return 2

    return [model, features, other, clean, raw]


def test_order_puts_upstream_first() -> None:
    graph = AssetGraph.build(_chain())
    order = list(graph.order)
    assert (
        order.index("raw") < order.index("clean") < order.index("features") < order.index("model")
    )
    assert graph.upstream_closure(["features"]) == {"raw", "clean", "features"}
    assert graph.downstream_closure(["clean"]) == {"clean", "features", "model"}


def test_missing_upstream_names_both_assets_and_suggests() -> None:
    @hr.asset
    def clean(raww: int) -> int:
        return raww

    @hr.asset
    def raw() -> int:
        return 1

    with pytest.raises(MissingUpstreamError, match=r"'clean' reads 'raww'.*did you mean 'raw'"):
        AssetGraph.build([clean, raw])


def test_cycle_is_named_in_order() -> None:
    @hr.asset
    def a(c: int) -> int:
        return c

    @hr.asset
    def b(a: int) -> int:
        return a

    @hr.asset
    def c(b: int) -> int:
        return b

    with pytest.raises(AssetCycleError) as info:
        AssetGraph.build([a, b, c])
    cycle = info.value.cycle
    assert cycle[0] == cycle[-1] and set(cycle) == {"a", "b", "c"}
    assert " -> " in str(info.value)


def test_duplicate_names_are_refused_but_the_same_object_twice_is_fine() -> None:
    @hr.asset(name="x")
    def first() -> int:
        return 1

    @hr.asset(name="x")
    def second() -> int:
        return 2

    AssetGraph.build([first, first])
    with pytest.raises(DuplicateAssetError, match="asset 'x' is defined twice"):
        AssetGraph.build([first, second])


def test_incompatible_partitions_are_refused() -> None:
    @hr.asset(partitions=hr.static(["a", "b"]))
    def up(partition: str) -> int:
        return 1

    @hr.asset(partitions=hr.monthly("2013-01"))
    def down(up: int) -> int:
        return up

    with pytest.raises(PartitionError, match="cannot be mapped"):
        AssetGraph.build([up, down])


def test_selection_syntax() -> None:
    graph = AssetGraph.build(_chain())
    assert select(graph, "features") == ["features"]
    assert select(graph, "+features") == ["raw", "clean", "features"]
    assert select(graph, "clean+") == ["clean", "features", "model"]
    assert select(graph, "tag:ml") == ["features", "model"]
    assert select(graph, "group:ingest") == ["raw", "clean"]
    assert select(graph, "group:features,tag:ml") == ["features", "model"]
    assert select(graph, "raw other") == ["raw", "other"] or set(select(graph, "raw other")) == {
        "raw",
        "other",
    }
    assert set(select(graph, None)) == {"raw", "clean", "features", "model", "other"}
    assert select(graph, "+model", exclude="raw") == ["clean", "features", "model"]


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("featurs", "unknown asset 'featurs' \\(did you mean 'features'"),
        ("tag:nope", "no asset has tag 'nope'"),
        ("group:nope", "no asset is in group 'nope'"),
        ("+", "names nothing"),
        ("raw,", "empty part"),
        ("   ", "empty selection"),
    ],
)
def test_bad_selections(expression: str, message: str) -> None:
    with pytest.raises(SelectionError, match=message):
        select(AssetGraph.build(_chain()), expression)


def test_plan_maps_partitions() -> None:
    months = hr.monthly("2013-01", "2013-03")

    @hr.asset(partitions=hr.daily("2013-01-01", "2013-03-31"))
    def daily_raw(partition: str) -> int:
        return 1

    @hr.asset(partitions=months)
    def monthly_sum(daily_raw: dict[str, int]) -> int:
        return 1

    @hr.asset(partitions=months, ins={"prev": hr.upstream("running", partition_offset=-1)})
    def running(monthly_sum: int, prev: int | None = None) -> int:
        return 1

    @hr.asset
    def overall(running: int) -> int:
        return 1

    graph = AssetGraph.build([daily_raw, monthly_sum, running, overall])
    plan = build_plan(graph, list(graph.order), None)
    assert len([k for k in plan.steps if k.startswith("daily_raw[")]) == 90
    feb = plan.steps["monthly_sum[2013-02]"]
    assert len(feb.deps) == 28 and all(d.startswith("daily_raw[2013-02-") for d in feb.deps)
    assert plan.steps["running[2013-02]"].deps == ("monthly_sum[2013-02]", "running[2013-01]")
    assert plan.steps["running[2013-01]"].deps == ("monthly_sum[2013-01]",)
    assert set(plan.steps["overall"].deps) == {f"running[2013-0{m}]" for m in (1, 2, 3)}
    only = build_plan(graph, ["running"], ["2013-02"])
    assert list(only.steps) == ["running[2013-02]"] and only.steps["running[2013-02]"].deps == ()
    assert parse_step_key("a[2013-01]") == ("a", "2013-01") and parse_step_key("a") == ("a", None)
    with pytest.raises(PartitionError, match="asset 'running'"):
        build_plan(graph, ["running"], ["2014-05"])

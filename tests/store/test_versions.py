"""Asset versions and branch heads, one suite over SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from headrace.store import MetadataStore
from headrace.store.errors import StoreError, VersionNotFoundError
from headrace.store.records import VersionRecord
from headrace.store.runs import NewVersion

from .builders import make_run, make_version, new_id, success


@pytest.fixture
def run_id(store: MetadataStore) -> str:
    run = make_run()
    store.runs.create(run, [])
    return run.id


def record(
    store: MetadataStore,
    run_id: str,
    asset: str,
    *,
    at: float,
    partition: str | None = None,
    branch: str = "main",
    **overrides: Any,
) -> NewVersion:
    version = make_version(asset, partition=partition, **overrides)
    key = asset if partition is None else f"{asset}[{partition}]"
    store.runs.step_finished(success(run_id, key, version, at=at), branch=branch)
    return version


# --- get -----------------------------------------------------------------------------


def test_get_returns_every_field_and_the_inputs_grouped_by_parameter(
    store: MetadataStore, run_id: str
) -> None:
    a = record(store, run_id, "src", partition="a", at=1.0)
    b = record(store, run_id, "src", partition="b", at=2.0)
    lookup = record(store, run_id, "lookup", at=3.0, kind="object", schema=None, row_count=None)
    merged = record(
        store,
        run_id,
        "merged",
        at=4.0,
        inputs=[("parts", a.id), ("parts", b.id), ("lookup", lookup.id)],
        params={"how": "inner", "n": [1, 2]},
        size=2**40,
    )

    got = store.versions.get(merged.id)
    in_any_order = {parameter: sorted(ids) for parameter, ids in got.inputs.items()}
    assert dataclasses.replace(got, inputs=in_any_order) == VersionRecord(
        id=merged.id,
        asset="merged",
        partition=None,
        kind="table",
        format="parquet",
        flavor="pandas",
        blob=merged.blob,
        size=2**40,
        row_count=10,
        schema=[["x", "int64"], ["y", "string"]],
        run_id=run_id,
        step_key="merged",
        code_version=merged.code_version,
        params={"how": "inner", "n": [1, 2]},
        cache_key=merged.cache_key,
        created_at=4.0,
        inputs={"parts": sorted([a.id, b.id]), "lookup": [lookup.id]},
    )

    plain = store.versions.get(lookup.id)
    assert (plain.kind, plain.schema, plain.row_count, plain.inputs) == ("object", None, None, {})
    assert store.versions.get(a.id).partition == "a"


def test_get_accepts_a_unique_prefix(store: MetadataStore, run_id: str) -> None:
    first = record(store, run_id, "x", at=1.0, version_id=new_id("fedcba1"))
    second = record(store, run_id, "x", at=2.0, version_id=new_id("fedcba2"))
    assert store.versions.get(first.id[:7]).id == first.id
    assert store.versions.get(second.id[:12]).id == second.id


def test_a_prefix_lookup_also_returns_the_inputs(store: MetadataStore, run_id: str) -> None:
    upstream = record(store, run_id, "up", at=1.0)
    down = record(store, run_id, "down", at=2.0, inputs=[("up", upstream.id)])
    assert store.versions.get(down.id[:10]).inputs == {"up": [upstream.id]}


def test_an_ambiguous_version_prefix_is_an_error(store: MetadataStore, run_id: str) -> None:
    record(store, run_id, "x", at=1.0, version_id=new_id("fedcba1"))
    record(store, run_id, "x", at=2.0, version_id=new_id("fedcba2"))
    with pytest.raises(StoreError, match="'fedcba' is ambiguous") as caught:
        store.versions.get("fedcba")
    assert not isinstance(caught.value, VersionNotFoundError)


@pytest.mark.parametrize(
    "query", ["fedcb", "000000", "fedcba1z", "", "%%%%%%", "______", "fedcb_", "FEDCBA1"]
)
def test_unknown_version_ids_raise_version_not_found(
    store: MetadataStore, run_id: str, query: str
) -> None:
    record(store, run_id, "x", at=1.0, version_id=new_id("fedcba1"))
    with pytest.raises(VersionNotFoundError, match=f"no asset version with id {query!r}"):
        store.versions.get(query)


# --- list ----------------------------------------------------------------------------


def test_list_is_newest_first_for_one_asset(store: MetadataStore, run_id: str) -> None:
    ids = {
        name: record(store, run_id, asset, at=at, version_id=name * 8).id
        for name, asset, at in [
            ("v1", "x", 1.0),
            ("v2", "x", 3.0),
            ("v3", "x", 3.0),  # same time as v2: the larger id comes first
            ("v4", "y", 5.0),
            ("v5", "x", 2.0),
        ]
    }
    assert [v.id for v in store.versions.list("x")] == [ids[n] for n in ("v3", "v2", "v5", "v1")]
    assert [v.id for v in store.versions.list("x", limit=2)] == [ids["v3"], ids["v2"]]
    assert [v.id for v in store.versions.list("y")] == [ids["v4"]]
    assert store.versions.list("nope") == []
    assert store.versions.list("x", limit=0) == []


def test_list_filters_by_partition(store: MetadataStore, run_id: str) -> None:
    a1 = record(store, run_id, "p", partition="a", at=1.0)
    b1 = record(store, run_id, "p", partition="b", at=2.0)
    a2 = record(store, run_id, "p", partition="a", at=3.0)
    assert [v.id for v in store.versions.list("p", partition="a")] == [a2.id, a1.id]
    assert [v.id for v in store.versions.list("p", partition="b")] == [b1.id]
    assert [v.id for v in store.versions.list("p")] == [a2.id, b1.id, a1.id]
    assert store.versions.list("p", partition="c") == []


def test_list_returns_records_without_inputs(store: MetadataStore, run_id: str) -> None:
    up = record(store, run_id, "up", at=1.0)
    down = record(store, run_id, "down", at=2.0, inputs=[("up", up.id)])
    [listed] = store.versions.list("down")
    assert listed == dataclasses.replace(store.versions.get(down.id), inputs={})


# --- heads ---------------------------------------------------------------------------


def test_head_is_the_latest_version_recorded_on_the_branch(
    store: MetadataStore, run_id: str
) -> None:
    first = record(store, run_id, "x", at=1.0)
    assert store.versions.head("x").id == first.id
    second = record(store, run_id, "x", at=2.0)
    assert store.versions.head("x").id == second.id
    # The head follows what was recorded last, not the newest timestamp.
    third = record(store, run_id, "x", at=0.5)
    assert store.versions.head("x").id == third.id
    assert store.versions.head("x", branch="main") == dataclasses.replace(
        store.versions.get(third.id), inputs={}
    )


def test_heads_are_per_branch(store: MetadataStore, run_id: str) -> None:
    main = record(store, run_id, "x", at=1.0)
    dev = record(store, run_id, "x", at=2.0, branch="dev")
    assert store.versions.head("x").id == main.id
    assert store.versions.head("x", branch="dev").id == dev.id
    assert set(store.versions.heads("main")) == {("x", None)}
    assert store.versions.heads("main")[("x", None)].id == main.id
    assert store.versions.heads("dev")[("x", None)].id == dev.id
    assert store.versions.heads("no-such-branch") == {}


def test_heads_are_per_partition(store: MetadataStore, run_id: str) -> None:
    a = record(store, run_id, "p", partition="a", at=1.0)
    b = record(store, run_id, "p", partition="b", at=2.0)
    whole = record(store, run_id, "q", at=3.0)
    a2 = record(store, run_id, "p", partition="a", at=4.0)
    heads = store.versions.heads("main")
    assert {key: v.id for key, v in heads.items()} == {
        ("p", "a"): a2.id,
        ("p", "b"): b.id,
        ("q", None): whole.id,
    }
    assert store.versions.head("p", partition="b").id == b.id
    assert a.id not in {v.id for v in heads.values()}


def test_heads_filter_by_asset_names(store: MetadataStore, run_id: str) -> None:
    x = record(store, run_id, "x", at=1.0)
    y = record(store, run_id, "y", at=2.0)
    record(store, run_id, "z", at=3.0)
    assert {k: v.id for k, v in store.versions.heads("main", ["x", "y", "nope"]).items()} == {
        ("x", None): x.id,
        ("y", None): y.id,
    }
    assert store.versions.heads("main", []) == {}
    assert store.versions.heads("main", iter(["y"])).keys() == {("y", None)}
    # Long name lists are filtered too (beyond the size of one SQL IN list).
    many = [f"asset_{i}" for i in range(600)] + ["x"]
    assert set(store.versions.heads("main", many)) == {("x", None)}
    assert set(store.versions.heads("main", {"x", "z"})) == {("x", None), ("z", None)}


def test_head_of_an_unknown_asset_names_asset_and_branch(store: MetadataStore) -> None:
    with pytest.raises(VersionNotFoundError) as caught:
        store.versions.head("clean_orders", branch="dev")
    assert caught.value.asset == "clean_orders"
    assert "'clean_orders'" in str(caught.value)
    assert "'dev'" in str(caught.value)


def test_head_of_a_missing_partition_names_the_partition(store: MetadataStore, run_id: str) -> None:
    record(store, run_id, "p", partition="a", at=1.0)
    with pytest.raises(VersionNotFoundError, match=r"'p' partition '2024-01-02'.*'main'"):
        store.versions.head("p", partition="2024-01-02")
    # An unpartitioned head is not any partition's head, and the other way round.
    with pytest.raises(VersionNotFoundError):
        store.versions.head("p")
    record(store, run_id, "q", at=2.0)
    with pytest.raises(VersionNotFoundError):
        store.versions.head("q", partition="a")


def test_a_head_elsewhere_does_not_answer_for_another_branch(
    store: MetadataStore, run_id: str
) -> None:
    record(store, run_id, "x", at=1.0, branch="dev")
    with pytest.raises(VersionNotFoundError, match="'x' has no version on branch 'main'"):
        store.versions.head("x")


def test_new_version_record_predicts_what_the_store_returns(
    store: MetadataStore, run_id: str
) -> None:
    up = record(store, run_id, "up", at=1.0)
    other = record(store, run_id, "other", at=1.5)
    new = make_version(
        "down",
        partition="p1",
        inputs=[("xs", up.id), ("xs", other.id), ("y", up.id)],
        params={"b": 2, "a": [1, {"c": None}]},
    )
    store.runs.step_finished(success(run_id, "down[p1]", new, at=2.0), branch="main")

    predicted = new.record(run_id=run_id, step_key="down[p1]", created_at=2.0)
    got = store.versions.get(new.id)
    assert got.inputs.keys() == predicted.inputs.keys()
    assert {k: sorted(v) for k, v in got.inputs.items()} == {
        k: sorted(v) for k, v in predicted.inputs.items()
    }
    assert dataclasses.replace(got, inputs={}) == dataclasses.replace(predicted, inputs={})


# --- upstream: the whole lineage of a set of versions -------------------------------------


def test_upstream_is_every_version_that_fed_the_given_ones_each_once(
    store: MetadataStore, run_id: str
) -> None:
    landed_a = record(store, run_id, "landed", partition="a", at=1.0)
    landed_b = record(store, run_id, "landed", partition="b", at=2.0)
    lookup = record(store, run_id, "lookup", at=3.0)
    clean = record(
        store, run_id, "clean", at=4.0, inputs=[("landed", landed_a.id), ("landed", landed_b.id)]
    )
    # a diamond: features reads clean and lookup, and clean's parent too
    features = record(
        store,
        run_id,
        "features",
        at=5.0,
        inputs=[("clean", clean.id), ("lookup", lookup.id), ("raw", landed_a.id)],
    )
    unrelated = record(store, run_id, "other", at=6.0)

    found = store.versions.upstream([features.id])

    assert [(v.asset, v.partition) for v in found] == [
        ("clean", None),
        ("features", None),
        ("landed", "a"),
        ("landed", "b"),
        ("lookup", None),
    ]
    assert unrelated.id not in {v.id for v in found}
    assert store.versions.upstream([]) == []
    assert store.versions.upstream(["f" * 32]) == []  # an unknown id has no lineage
    assert [v.id for v in store.versions.upstream([landed_b.id, landed_b.id])] == [landed_b.id]


def test_standings_count_checks_and_name_failures_and_releases(
    store: MetadataStore, run_id: str
) -> None:
    from headrace.store.schema import quarantine

    checked = record(store, run_id, "clean", at=1.0)
    failed = record(store, run_id, "clean", partition="b", at=2.0)
    released = record(store, run_id, "clean", partition="c", at=3.0)
    bare = record(store, run_id, "landed", at=4.0)

    def result(name: str, passed: bool, severity: str = "error") -> dict[str, Any]:
        return {
            "name": name,
            "kind": "not_null",
            "columns": ["x"],
            "severity": severity,
            "passed": passed,
            "observed": 0,
            "threshold": "0",
            "failing_rows": 0 if passed else 2,
            "failing_fraction": 0.0 if passed else 0.2,
            "sample": [],
            "message": "",
        }

    store.quality.record(checked, [result("x_not_null", True), result("w", False, "warn")], at=5)
    store.quality.record(failed, [result("x_not_null", False), result("y_ok", True)], at=6)
    store.quality.record(released, [result("x_not_null", False)], at=7)
    with store.write() as c:
        c.execute(
            quarantine.insert().values(
                version_id=released.id,
                branch="main",
                asset="clean",
                partition="c",
                run_id=run_id,
                reason="x_not_null failed",
                status="released",
                created_at=7.0,
                decided_at=8.0,
                decided_by="ada",
            )
        )

    got = store.quality.standings([checked.id, failed.id, released.id, bare.id])

    assert (got[checked.id].checks, got[checked.id].failed_errors) == (2, ())
    assert (got[failed.id].checks, got[failed.id].failed_errors) == (2, ("x_not_null",))
    assert not got[failed.id].released
    assert got[released.id].failed_errors == ("x_not_null",)
    assert (got[released.id].released_by, got[released.id].released_at) == ("ada", 8.0)
    assert got[released.id].released
    assert (got[bare.id].checks, got[bare.id].failed_errors) == (0, ())
    assert store.quality.standings([]) == {}

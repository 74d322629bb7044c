from __future__ import annotations

import time
from pathlib import Path

import pytest

import headrace as hr
from headrace.data.branching import create_branch, delete_branch, merge
from headrace.store.branches import HeadMove
from headrace.store.errors import (
    BranchConflictError,
    BranchExistsError,
    BranchNotFoundError,
    MergeRefusedError,
    StoreError,
)
from tests.conftest import RunProcesses
from tests.projects import OPENED, open_project, write_project

PIPELINE = """
import pandas as pd

@hr.asset(primary_key="id")
def people(*, grow: int = 0) -> pd.DataFrame:
    return pd.DataFrame({"id": range(3 + grow), "age": [30 + i for i in range(3 + grow)]})

@hr.asset
def count(people: pd.DataFrame) -> int:
    return len(people)

@hr.asset
def other() -> int:
    return 7
"""


def test_a_branch_copies_no_data_and_isolates_writes(tmp_path: Path) -> None:
    ws = open_project(tmp_path, PIPELINE)
    assert hr.materialize(workspace=ws).success
    blobs_before = sorted(d for d, _, _ in ws.blobs.iter_blobs())
    record = create_branch(ws, "dev")
    assert record.heads == 3 and record.from_branch == "main"
    assert sorted(d for d, _, _ in ws.blobs.iter_blobs()) == blobs_before
    # A run on dev reads and writes dev only.
    result = hr.materialize(workspace=ws, branch="dev", params={"grow": "2"})
    assert result.steps["people"].status == "success"
    assert result.steps["other"].status == "skipped"  # same version as on main: cached
    assert hr.read("count", workspace=ws, branch="dev") == 5
    assert hr.read("count", workspace=ws) == 3
    main_heads = {k: v.id for k, v in ws.store.versions.heads("main").items()}
    dev_heads = {k: v.id for k, v in ws.store.versions.heads("dev").items()}
    assert main_heads[("other", None)] == dev_heads[("other", None)]
    assert main_heads[("people", None)] != dev_heads[("people", None)]


def test_merge_moves_the_branch_changes_atomically(tmp_path: Path) -> None:
    ws = open_project(tmp_path, PIPELINE)
    hr.materialize(workspace=ws)
    create_branch(ws, "dev")
    hr.materialize(workspace=ws, branch="dev", params={"grow": "1"})
    planned = merge(ws, "dev", dry_run=True)
    assert planned.dry_run and sorted(m.asset for m in planned.moves) == ["count", "people"]
    assert hr.read("count", workspace=ws) == 3  # a dry run moves nothing
    done = merge(ws, "dev")
    assert sorted(m.asset for m in done.moves) == ["count", "people"]
    assert hr.read("count", workspace=ws) == 4
    again = merge(ws, "dev")
    assert again.moves == []  # nothing new since the last merge
    log = ws.store.branches.log(branch="main", limit=5)
    assert [e.kind for e in log[:2]] == ["merge", "merge"]
    assert log[0].message == "merge dev" and log[0].actor


def test_merge_refuses_an_asset_changed_on_both_branches(tmp_path: Path) -> None:
    ws = open_project(tmp_path, PIPELINE)
    hr.materialize(workspace=ws)
    create_branch(ws, "dev")
    hr.materialize("people", workspace=ws, branch="dev", params={"grow": "1"})
    hr.materialize("people", workspace=ws, params={"grow": "2"})
    main_before = {k: v.id for k, v in ws.store.versions.heads("main").items()}
    with pytest.raises(BranchConflictError, match=r"changed on both branches.*people") as info:
        merge(ws, "dev")
    assert info.value.assets == ["people"]
    assert {k: v.id for k, v in ws.store.versions.heads("main").items()} == main_before


def test_merge_gates_can_refuse_and_nothing_moves(tmp_path: Path) -> None:
    ws = open_project(tmp_path, PIPELINE)
    hr.materialize(workspace=ws)
    create_branch(ws, "dev")
    hr.materialize(workspace=ws, branch="dev", params={"grow": "1"})
    seen: list[list[str]] = []

    def failing_checks(moves: list[HeadMove]) -> list[str]:
        seen.append([m.asset for m in moves])
        return [
            f"version {m.new_version_id[:12]} of {m.asset} failed check not_null"
            for m in moves
            if m.asset == "people"
        ]

    with pytest.raises(MergeRefusedError, match="of people failed check not_null"):
        merge(ws, "dev", gates=[failing_checks])
    assert seen == [["count", "people"]]
    assert hr.read("count", workspace=ws) == 3
    assert merge(ws, "dev", gates=[lambda moves: []]).moves


def test_branch_errors_are_clear(tmp_path: Path) -> None:
    ws = open_project(tmp_path, PIPELINE)
    create_branch(ws, "dev")
    with pytest.raises(BranchExistsError, match="branch 'dev' already exists"):
        create_branch(ws, "dev")
    with pytest.raises(BranchNotFoundError, match="no branch named 'nope'"):
        create_branch(ws, "x", from_branch="nope")
    with pytest.raises(BranchNotFoundError, match="headrace branch create ghost"):
        hr.materialize(workspace=ws, branch="ghost")
    with pytest.raises(StoreError, match="cannot be deleted"):
        delete_branch(ws, "main")
    with pytest.raises(StoreError, match="invalid"):
        create_branch(ws, "bad name")
    with pytest.raises(StoreError, match="into itself"):
        merge(ws, "dev", "dev")
    delete_branch(ws, "dev")
    assert [b.name for b in ws.store.branches.list()] == ["main"]
    with pytest.raises(BranchNotFoundError):
        merge(ws, "dev")


def test_reads_as_of_a_time_and_by_version(tmp_path: Path) -> None:
    ws = open_project(tmp_path, PIPELINE)
    hr.materialize(workspace=ws)
    first = ws.store.versions.head("count").id
    time.sleep(0.05)
    middle = time.time()
    time.sleep(0.05)
    hr.materialize(workspace=ws, params={"grow": "4"})
    assert hr.read("count", workspace=ws) == 7
    assert hr.read("count", workspace=ws, as_of=middle) == 3
    assert hr.read("count", workspace=ws, version=first[:20]) == 3
    iso = __import__("datetime").datetime.fromtimestamp(middle).isoformat()
    assert len(hr.read("people", workspace=ws, as_of=iso)) == 3
    with pytest.raises(hr.HeadraceError, match="had no version on branch 'main' as of"):
        hr.read("count", workspace=ws, as_of="2001-01-01")
    with pytest.raises(hr.HeadraceError, match="not a time"):
        hr.read("count", workspace=ws, as_of="yesterday-ish")
    # A branch created later still answers for the time it existed.
    create_branch(ws, "dev")
    assert hr.read("count", workspace=ws, branch="dev", as_of=time.time()) == 7


@pytest.fixture
def race_project(tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> tuple[Path, str]:
    source = """
    import os, time

    @hr.asset
    def base() -> int:
        return 1

    @hr.asset
    def slow_value(base: int) -> str:
        time.sleep(0.5)
        return os.environ.get("HR_TAG", "none")
    """
    root, _ = write_project(tmp_path, source)
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / '.headrace' / 'headrace.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    return root, url


def test_two_merges_of_one_asset_at_once_one_wins_nothing_mixed(
    race_project: tuple[Path, str], run_processes: RunProcesses
) -> None:
    root, url = race_project
    ws = hr.open_workspace(root, metadata_url=url)
    OPENED.append(ws)
    hr.materialize("base", workspace=ws)
    from headrace.store.branches import move_heads

    for name, extra in (("left", "only_left"), ("right", "only_right")):
        create_branch(ws, name)
        base_head = ws.store.versions.head("base").id
        with ws.store.write() as c:
            move_heads(
                c,
                ws.store.dialect,
                name,
                [
                    (("base", ""), base_head, f"{name:0<32}"[:32], time.time()),
                    ((extra, ""), None, f"{extra:0<32}"[:32], time.time()),
                ],
                kind="materialize",
                run_id=None,
                actor=None,
                message=None,
            )
    results = run_processes(
        __import__("tests.data.workers", fromlist=["merge_worker"]).merge_worker,
        [(str(root), url, "left"), (str(root), url, "right")],
    )
    outcomes = {source: status for source, status, _ in results}
    assert sorted(outcomes.values()) == ["conflict", "merged"], results
    winner = next(s for s, status in outcomes.items() if status == "merged")
    loser = next(s for s, status in outcomes.items() if status == "conflict")
    heads = {k[0]: v for k, v in ws.store.branches.heads_as_of("main", time.time()).items()}
    assert heads["base"].startswith(winner)
    assert f"only_{winner}" in heads and f"only_{loser}" not in heads


def test_two_runs_writing_one_asset_at_once_one_wins(
    race_project: tuple[Path, str], run_processes: RunProcesses
) -> None:
    root, url = race_project
    ws = hr.open_workspace(root, metadata_url=url)
    OPENED.append(ws)
    hr.materialize("base", workspace=ws)
    results = run_processes(
        __import__("tests.data.workers", fromlist=["materialize_worker"]).materialize_worker,
        [(str(root), url, "one"), (str(root), url, "two")],
    )
    statuses = sorted(status for _, status, _, _ in results)
    assert statuses == ["failed", "success"], results
    winner = next(tag for tag, status, _, _ in results if status == "success")
    loser_error = next(error for _, status, error, _ in results if status == "failed")
    assert "branch conflict: slow_value on branch 'main' was moved" in loser_error
    assert hr.read("slow_value", workspace=ws) == winner
    # The losing run's version is kept, off the branch, for inspection.
    assert len(ws.store.versions.list("slow_value")) == 2

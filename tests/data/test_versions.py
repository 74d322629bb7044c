from __future__ import annotations

import os
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import headrace as hr
from headrace.data.branching import create_branch
from headrace.data.errors import DataError
from headrace.data.gc import collect
from headrace.data.impact import impact
from headrace.data.lineage import lineage_tree
from headrace.data.versions import import_table
from headrace.store.errors import BranchNotFoundError
from tests.integration.conftest import run_cli
from tests.projects import OPENED, open_project

PIPELINE = """
import pandas as pd

@hr.asset(partitions=hr.static(["a", "b"]))
def raw(partition: str, *, n: int = 3) -> pd.DataFrame:
    return pd.DataFrame({"p": [partition] * n, "x": list(range(n))})

@hr.asset
def total(raw: pd.DataFrame) -> int:
    return int(raw.x.sum())

@hr.asset
def report(total: int) -> dict:
    return {"total": total}

@hr.asset
def unrelated() -> int:
    return 1
"""


def _parquet(path: Path, rows: int, seed: int = 0) -> Path:
    table = pa.table({"id": list(range(rows)), "v": [float(i * seed) for i in range(rows)]})
    pq.write_table(table, path)
    return path


def test_import_is_content_addressed_and_recommits_cost_nothing(tmp_path: Path) -> None:
    ws = open_project(tmp_path / "ws", PIPELINE)
    source = _parquet(tmp_path / "data.parquet", 1000, seed=2)
    first = import_table(ws, "landed", source, primary_key=("id",))
    assert first.created and first.version.row_count == 1000
    assert first.version.schema == [["id", "int64"], ["v", "double"]]
    assert first.version.stats is not None and first.version.stats["id"]["max"] == 999
    blobs = sorted(d for d, _, _ in ws.blobs.iter_blobs())
    again = import_table(ws, "landed", source)
    assert not again.created and again.version.id == first.version.id
    assert sorted(d for d, _, _ in ws.blobs.iter_blobs()) == blobs
    assert len(hr.read("landed", workspace=ws)) == 1000
    changed = import_table(ws, "landed", _parquet(tmp_path / "v2.parquet", 10, seed=3))
    assert changed.created and changed.version.id != first.version.id
    log = ws.store.branches.log(asset="landed")
    assert [e.kind for e in log] == ["import", "import"]
    assert log[0].old_version_id == first.version.id


def test_import_refuses_bad_input(tmp_path: Path) -> None:
    ws = open_project(tmp_path / "ws", PIPELINE)
    with pytest.raises(DataError, match="no such file"):
        import_table(ws, "x", tmp_path / "missing.parquet")
    (tmp_path / "not.parquet").write_text("hello")
    with pytest.raises(DataError, match="not a readable Parquet file"):
        import_table(ws, "x", tmp_path / "not.parquet")
    good = _parquet(tmp_path / "good.parquet", 5)
    with pytest.raises(DataError, match="primary key column 'nope' is missing"):
        import_table(ws, "x", good, primary_key=("nope",))
    with pytest.raises(BranchNotFoundError):
        import_table(ws, "x", good, branch="ghost")


def test_version_lineage_upstream_and_downstream(tmp_path: Path) -> None:
    ws = open_project(tmp_path, PIPELINE)
    hr.materialize(workspace=ws)
    report = ws.store.versions.head("report")
    tree = lineage_tree(ws, report, upstream=True)
    assert [c.version.asset for c in tree.children] == ["total"]
    raws = tree.children[0].children
    assert sorted((c.version.asset, c.version.partition) for c in raws) == [
        ("raw", "a"),
        ("raw", "b"),
    ]
    raw_a = ws.store.versions.head("raw", partition="a")
    down = lineage_tree(ws, raw_a, upstream=False)
    assert [c.version.asset for c in down.children] == ["total"]
    assert [c.version.asset for c in down.children[0].children] == ["report"]


def test_impact_of_code_and_branch_changes(tmp_path: Path) -> None:
    ws = open_project(tmp_path, PIPELINE)
    hr.materialize(workspace=ws)
    assert impact(ws).changed == {}
    changed_module = f"proj_changed_{tmp_path.name[-12:].replace('-', '_')}"
    (tmp_path / f"{changed_module}.py").write_text(
        "import headrace as hr\n" + PIPELINE.replace("int(raw.x.sum())", "int(raw.x.sum()) + 1")
    )
    changed_ws = hr.open_workspace(tmp_path, project_module=changed_module)
    OPENED.append(changed_ws)
    working = impact(changed_ws)
    assert working.changed == {"total": "code changed"}
    assert working.downstream == {"report": ["total"]}
    create_branch(ws, "dev")
    hr.materialize("raw", workspace=ws, branch="dev", params={"n": "5"})
    on_branch = impact(ws, branch="dev")
    assert on_branch.changed == {"raw": "data changed"}
    assert sorted(on_branch.downstream) == ["report", "total"]


def test_gc_keeps_what_branches_and_history_need(tmp_path: Path) -> None:
    ws = open_project(tmp_path, PIPELINE)
    for n in (1, 2, 3, 4):
        hr.materialize("raw", workspace=ws, params={"n": str(n)})
    all_blobs = {d for d, _, _ in ws.blobs.iter_blobs()}
    assert len(all_blobs) == 8  # 2 partitions x 4 runs
    dry = collect(ws, keep_last=2, grace_seconds=0, dry_run=True)
    assert len(dry.deleted_blobs) == 4 and dry.dry_run
    assert {d for d, _, _ in ws.blobs.iter_blobs()} == all_blobs
    report = collect(ws, keep_last=2, grace_seconds=0)
    assert len(report.deleted_blobs) == 4 and report.freed_bytes > 0
    assert len(hr.read("raw", workspace=ws)) == 8  # the heads still read
    # Recent blobs are never touched (a run may be writing them).
    hr.materialize("raw", workspace=ws, params={"n": "9"})
    assert collect(ws, keep_last=1, grace_seconds=3600).deleted_blobs == []
    # A branch keeps its versions alive.
    create_branch(ws, "keep")
    hr.materialize("raw", workspace=ws, params={"n": "10"})
    kept = collect(ws, keep_last=1, grace_seconds=0)
    assert len(hr.read("raw", workspace=ws, branch="keep")) == 18
    assert len(hr.read("raw", workspace=ws)) == 20
    assert kept.retained_versions >= 4
    with pytest.raises(DataError, match="keep_last must be at least 1"):
        collect(ws, keep_last=0)
    old = ws.blobs.root / ".tmp" / "dead.part"
    old.parent.mkdir(exist_ok=True)
    old.write_text("left by a killed writer")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    collect(ws, keep_last=1)
    assert not old.exists()


def test_gc_never_deletes_run_artifacts_or_model_versions(tmp_path: Path) -> None:
    from sklearn.linear_model import LinearRegression

    from headrace.registry.service import load_model, register_model
    from headrace.tracking.runs import start_run

    ws = open_project(tmp_path, PIPELINE)
    note = tmp_path / "note.txt"
    note.write_text("kept")
    with start_run(workspace=ws) as run:
        run.log_artifact(note)
    model = LinearRegression().fit([[0.0], [1.0]], [0.0, 1.0])
    register_model(ws, model, "kept")
    hr.materialize("raw", workspace=ws, params={"n": "1"})
    hr.materialize("raw", workspace=ws, params={"n": "2"})
    report = collect(ws, keep_last=1, grace_seconds=0)
    assert len(report.deleted_blobs) == 2  # the first version's two partitions only
    ((_, blob, _),) = ws.store.tracking.artifacts(run.id)
    assert ws.blobs.get_bytes(blob) == b"kept"
    assert load_model(ws, "kept/1").predict([[2.0]])[0] == pytest.approx(2.0)


@pytest.mark.integration
def test_versioning_cli(tmp_path: Path) -> None:
    open_project(tmp_path, PIPELINE.replace("@hr.asset\ndef unrelated", "@hr.asset\ndef unrel"))
    assert run_cli(tmp_path, "materialize").returncode == 0
    created = run_cli(tmp_path, "branch", "create", "dev", check=True)
    assert "no data copied" in created.stdout
    assert run_cli(tmp_path, "materialize", "raw+", "--branch", "dev", "-p", "n=5").returncode == 0
    listed = run_cli(tmp_path, "branch", "list", check=True)
    assert "dev" in listed.stdout and "main" in listed.stdout
    imp = run_cli(tmp_path, "impact", "--branch", "dev", check=True)
    assert "raw" in imp.stdout and "data changed" in imp.stdout
    dry = run_cli(tmp_path, "merge", "dev", "--dry-run", check=True)
    assert "would move" in dry.stdout
    done = run_cli(tmp_path, "merge", "dev", check=True)
    assert "moved 4 versions from dev into main" in done.stdout
    log = run_cli(tmp_path, "log", "--branch", "main", check=True)
    assert "merge" in log.stdout
    versions = run_cli(tmp_path, "versions", "raw", check=True)
    assert "main, dev" in versions.stdout or "dev, main" in versions.stdout
    tree = run_cli(tmp_path, "lineage", "report", check=True)
    assert "total" in tree.stdout and "raw[a]" in tree.stdout
    diff = run_cli(tmp_path, "diff", "raw", "main", "dev", check=True)
    assert "rows" in diff.stdout
    conflict = run_cli(tmp_path, "merge", "dev", "--into", "nope")
    assert conflict.returncode == 1 and "no branch named 'nope'" in conflict.stderr
    gc = run_cli(tmp_path, "gc", "--dry-run", "--keep-last", "1", "--grace", "0", check=True)
    assert "to delete" in gc.stdout
    _parquet(tmp_path / "in.parquet", 50)
    imported = run_cli(tmp_path, "import", "landed", "in.parquet", "--key", "id", check=True)
    assert "imported in.parquet as landed" in imported.stdout
    again = run_cli(tmp_path, "import", "landed", "in.parquet", check=True)
    assert "unchanged" in again.stdout


@pytest.mark.integration
def test_show_reads_any_version_from_the_cli(tmp_path: Path) -> None:
    open_project(tmp_path, PIPELINE)
    assert run_cli(tmp_path, "materialize", "raw", "-p", "n=2").returncode == 0
    middle = time.time()
    time.sleep(0.05)
    assert run_cli(tmp_path, "materialize", "raw", "-p", "n=6").returncode == 0
    now = run_cli(tmp_path, "show", "raw", "--limit", "20", check=True)
    assert "12 of 12 rows" in now.stdout
    iso = __import__("datetime").datetime.fromtimestamp(middle).isoformat()
    then = run_cli(tmp_path, "show", "raw", "--as-of", iso, check=True)
    assert "4 of 4 rows" in then.stdout
    part = run_cli(tmp_path, "show", "raw", "--partition", "b", "--limit", "1", check=True)
    assert "1 of 6 rows" in part.stdout
    assert run_cli(tmp_path, "materialize", "total").returncode == 0
    assert run_cli(tmp_path, "show", "total", check=True).stdout.strip() == "30"
    missing = run_cli(tmp_path, "show", "report")
    assert missing.returncode == 1 and "asset 'report' has no version" in missing.stderr


def test_recommitting_an_unchanged_file_skips_hashing_but_edits_are_seen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from headrace.objects import blobs as blob_module

    ws = open_project(tmp_path / "ws", PIPELINE)
    source = _parquet(tmp_path / "data.parquet", 2000, seed=1)
    first = import_table(ws, "landed", source)
    hashed: list[str] = []
    real = blob_module.hash_file
    monkeypatch.setattr(blob_module, "hash_file", lambda p: hashed.append(str(p)) or real(p))
    again = import_table(ws, "landed", source)
    assert not again.created and hashed == []  # a stat, not a read
    # Same size and modification time, different bytes: the change is still seen.
    stat = source.stat()
    data = bytearray(source.read_bytes())
    edited = pa.table({"id": list(range(2000)), "v": [float(i * 9) for i in range(2000)]})
    pq.write_table(edited, source)
    if source.stat().st_size == stat.st_size:
        os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    changed = import_table(ws, "landed", source)
    assert hashed == [str(source.resolve())]
    assert changed.created and changed.version.blob != first.version.blob
    assert bytes(data) != source.read_bytes()

"""The run repository: runs, their steps and logs, one suite over SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import Table, func, select
from sqlalchemy.exc import IntegrityError, StatementError

from headrace.store import MetadataStore
from headrace.store.errors import RunNotFoundError, StoreError, VersionNotFoundError
from headrace.store.records import LogRecord, StepRecord
from headrace.store.runs import StepBatch, StepOutcome
from headrace.store.schema import asset_versions, branch_heads, step_logs, version_inputs

from .builders import make_run, make_version, new_id, success

PLAN = [("raw", "raw", None), ("clean[a]", "clean", "a"), ("clean[b]", "clean", "b")]


def count(store: MetadataStore, table: Table) -> int:
    with store.read() as c:
        return int(c.execute(select(func.count()).select_from(table)).scalar_one())


# --- create and get ------------------------------------------------------------------


def test_a_created_run_reads_back_field_for_field(store: MetadataStore) -> None:
    run = make_run(force=True, partitions=None, params={"nested": {"k": [1, 2.5, None]}})
    store.runs.create(run, PLAN)
    assert store.runs.get(run.id) == run


@pytest.mark.parametrize("partitions", [None, [], ["2024-01-01"]])
def test_partitions_keep_the_difference_between_none_and_empty(
    store: MetadataStore, partitions: list[str] | None
) -> None:
    run = make_run(partitions=partitions)
    store.runs.create(run, [])
    assert store.runs.get(run.id).partitions == partitions


def test_create_inserts_every_step_pending_in_plan_order(store: MetadataStore) -> None:
    run = make_run()
    store.runs.create(run, PLAN)
    assert store.runs.steps(run.id) == [
        StepRecord(run_id=run.id, key=k, asset=a, partition=p, position=i, status="pending")
        for i, (k, a, p) in enumerate(PLAN)
    ]


def test_a_run_without_steps_has_none(store: MetadataStore) -> None:
    run = make_run()
    store.runs.create(run, [])
    assert store.runs.get(run.id) == run
    assert store.runs.steps(run.id) == []


def test_creating_a_run_twice_fails_and_keeps_the_first(store: MetadataStore) -> None:
    run = make_run()
    store.runs.create(run, PLAN[:1])
    with pytest.raises(IntegrityError):
        store.runs.create(dataclasses.replace(run, selection="other"), PLAN[1:])
    assert store.runs.get(run.id).selection == run.selection
    assert [s.key for s in store.runs.steps(run.id)] == ["raw"]


def test_a_run_with_duplicate_step_keys_is_not_created_at_all(store: MetadataStore) -> None:
    run = make_run()
    with pytest.raises(IntegrityError):
        store.runs.create(run, [("raw", "raw", None), ("raw", "raw", None)])
    with pytest.raises(RunNotFoundError):
        store.runs.get(run.id)
    assert store.runs.steps(run.id) == []


def test_get_accepts_a_unique_prefix_of_six_or_more_characters(store: MetadataStore) -> None:
    first, second = make_run(new_id("abcdef1")), make_run(new_id("abcdef2"))
    for run in (first, second):
        store.runs.create(run, [])
    assert store.runs.get(first.id[:7]) == first
    assert store.runs.get(second.id[:20]) == second
    assert store.runs.get(second.id) == second


def test_an_ambiguous_prefix_is_an_error_naming_it(store: MetadataStore) -> None:
    for prefix in ("abcdef1", "abcdef2"):
        store.runs.create(make_run(new_id(prefix)), [])
    with pytest.raises(StoreError, match="'abcdef' is ambiguous") as caught:
        store.runs.get("abcdef")
    assert not isinstance(caught.value, RunNotFoundError)


def test_an_exact_id_wins_over_longer_ids_it_prefixes(store: MetadataStore) -> None:
    short, longer = make_run("abcdef12"), make_run("abcdef123456")
    for run in (short, longer):
        store.runs.create(run, [])
    assert store.runs.get("abcdef12") == short


@pytest.mark.parametrize(
    "query",
    [
        "abcde",  # a prefix, but shorter than six characters
        "zzzzzzzz",
        "abcdef1x",
        "",
        "%%%%%%",  # LIKE wildcards are literal characters, not patterns
        "______",
        "abc%ef",
        "abcde_",
        "ABCDEF1",  # ids are case-sensitive
    ],
)
def test_unknown_ids_raise_run_not_found(store: MetadataStore, query: str) -> None:
    store.runs.create(make_run(new_id("abcdef1")), [])
    with pytest.raises(RunNotFoundError) as caught:
        store.runs.get(query)
    assert caught.value.run_id == query
    assert repr(query) in str(caught.value)


# --- list, status, counts ------------------------------------------------------------


@pytest.fixture
def listed(store: MetadataStore) -> list[str]:
    """Seven runs; returns their ids newest first (ties on time broken by id, descending)."""
    specs = [
        ("run-a", 10.0, "success"),
        ("run-b", 30.0, "failed"),
        ("run-c", 20.0, "success"),
        ("run-d", 30.0, "running"),
        ("run-e", 5.0, "success"),
        ("run-f", 30.0, "success"),
        ("run-g", 40.0, "canceled"),
    ]
    for run_id, created, status in specs:
        store.runs.create(make_run(run_id, created_at=created, status=status), [])
    return ["run-g", "run-f", "run-d", "run-b", "run-c", "run-a", "run-e"]


def test_list_is_newest_first(store: MetadataStore, listed: list[str]) -> None:
    assert [r.id for r in store.runs.list()] == listed


def test_list_pages_with_limit_and_offset(store: MetadataStore, listed: list[str]) -> None:
    pages = [[r.id for r in store.runs.list(limit=3, offset=o)] for o in (0, 3, 6, 9)]
    assert pages == [listed[0:3], listed[3:6], listed[6:], []]
    assert store.runs.list(limit=0) == []


def test_list_filters_by_status(store: MetadataStore, listed: list[str]) -> None:
    assert [r.id for r in store.runs.list(status="success")] == ["run-f", "run-c", "run-a", "run-e"]
    assert [r.id for r in store.runs.list(status="success", limit=2, offset=1)] == [
        "run-c",
        "run-a",
    ]
    assert store.runs.list(status="no-such-status") == []


def test_list_of_an_empty_store_is_empty(store: MetadataStore) -> None:
    assert store.runs.list() == []


def test_set_status_changes_only_that_run(store: MetadataStore) -> None:
    run, other = make_run(), make_run()
    store.runs.create(run, [])
    store.runs.create(other, [])
    store.runs.set_status(run.id, "failed", ended_at=99.5, error="boom")
    got = store.runs.get(run.id)
    assert (got.status, got.ended_at, got.error) == ("failed", 99.5, "boom")
    assert got.duration_s == 99.5 - run.started_at  # type: ignore[operator]
    assert store.runs.get(other.id) == other


def test_step_counts_group_by_run_and_status(store: MetadataStore) -> None:
    run, other, empty = make_run(), make_run(), make_run()
    store.runs.create(run, PLAN)
    store.runs.create(other, PLAN[:1])
    store.runs.create(empty, [])
    store.runs.step_finished(success(run.id, "raw", None), branch="main")
    assert store.runs.step_counts([run.id, other.id, empty.id, "missing"]) == {
        run.id: {"success": 1, "pending": 2},
        other.id: {"pending": 1},
        empty.id: {},
        "missing": {},
    }
    assert store.runs.step_counts([]) == {}


# --- steps starting and finishing ----------------------------------------------------


def step(store: MetadataStore, run_id: str, key: str) -> StepRecord:
    return next(s for s in store.runs.steps(run_id) if s.key == key)


def test_step_started_marks_the_attempt_running(store: MetadataStore) -> None:
    run = make_run()
    store.runs.create(run, PLAN)
    store.runs.step_started(run.id, "raw", 1, 100.0)
    got = step(store, run.id, "raw")
    assert (got.status, got.attempts, got.started_at, got.ended_at) == ("running", 1, 100.0, None)
    assert step(store, run.id, "clean[a]").status == "pending"


def test_a_retry_clears_the_previous_attempts_end(store: MetadataStore) -> None:
    run = make_run()
    store.runs.create(run, PLAN)
    store.runs.step_started(run.id, "raw", 1, 100.0)
    failed = StepOutcome(
        run_id=run.id, key="raw", status="failed", attempt=1, ended_at=101.0, error="E"
    )
    store.runs.step_finished(failed, branch="main")
    store.runs.step_started(run.id, "raw", 2, 102.0)
    got = step(store, run.id, "raw")
    assert (got.status, got.attempts, got.started_at, got.ended_at) == ("running", 2, 102.0, None)


def test_step_finished_writes_version_inputs_head_step_and_logs(store: MetadataStore) -> None:
    run = make_run()
    store.runs.create(run, PLAN)
    raw = make_version("raw")
    store.runs.step_finished(success(run.id, "raw", raw, at=200.0), branch="main")
    clean = make_version(
        "clean",
        partition="a",
        inputs=[("source", raw.id), ("source", raw.id), ("other", raw.id)],
        params={"threshold": 3},
    )
    logs = [("stdout", 201.0, "hello\n"), ("stderr", 201.5, "warn\n"), ("log", 202.0, "done")]
    store.runs.step_started(run.id, "clean[a]", 1, 200.5)
    store.runs.step_finished(
        success(
            run.id, "clean[a]", clean, at=203.0, duration_s=2.5, reason="new inputs", logs=logs
        ),
        branch="main",
    )

    version = store.versions.get(clean.id)
    assert (version.asset, version.partition, version.blob, version.size) == (
        "clean",
        "a",
        clean.blob,
        clean.size,
    )
    assert (version.run_id, version.step_key, version.created_at) == (run.id, "clean[a]", 203.0)
    assert version.params == {"threshold": 3}
    assert version.schema == clean.schema
    assert version.inputs == {"source": [raw.id], "other": [raw.id]}
    assert store.versions.head("clean", partition="a") == dataclasses.replace(version, inputs={})

    got = step(store, run.id, "clean[a]")
    assert (got.status, got.attempts, got.ended_at, got.duration_s) == ("success", 1, 203.0, 2.5)
    assert (got.version_id, got.cache_key, got.reason) == (clean.id, clean.cache_key, "new inputs")
    assert store.runs.logs(run.id, "clean[a]") == [
        LogRecord(step_key="clean[a]", attempt=1, stream=s, created_at=t, text=x)
        for s, t, x in logs
    ]


def test_a_cached_step_keeps_no_new_version(store: MetadataStore) -> None:
    run = make_run()
    store.runs.create(run, PLAN)
    outcome = StepOutcome(
        run_id=run.id,
        key="raw",
        status="skipped",
        attempt=0,
        ended_at=5.0,
        duration_s=0.0,
        version_id="v" * 32,
        cache_key="k" * 64,
        reason="cached",
    )
    store.runs.step_finished(outcome, branch="main")
    got = step(store, run.id, "raw")
    assert (got.status, got.version_id, got.cache_key, got.reason) == (
        "skipped",
        "v" * 32,
        "k" * 64,
        "cached",
    )
    assert count(store, asset_versions) == 0
    assert count(store, branch_heads) == 0


def test_a_failed_attempt_keeps_the_version_and_cache_key_it_had(store: MetadataStore) -> None:
    run = make_run()
    store.runs.create(run, PLAN)
    version = make_version("raw")
    store.runs.step_finished(success(run.id, "raw", version), branch="main")
    failed = StepOutcome(
        run_id=run.id,
        key="raw",
        status="failed",
        attempt=2,
        ended_at=300.0,
        error="ValueError: x",
        traceback="Traceback ...",
    )
    store.runs.step_finished(failed, branch="main")
    got = step(store, run.id, "raw")
    assert (got.status, got.attempts, got.error, got.traceback) == (
        "failed",
        2,
        "ValueError: x",
        "Traceback ...",
    )
    assert (got.version_id, got.cache_key) == (version.id, version.cache_key)


def snapshot(store: MetadataStore, run_id: str) -> tuple[object, ...]:
    return (
        store.runs.steps(run_id),
        store.runs.logs(run_id),
        count(store, asset_versions),
        count(store, version_inputs),
        count(store, step_logs),
        store.versions.heads("main"),
    )


def test_a_duplicate_version_id_leaves_nothing_of_the_outcome(store: MetadataStore) -> None:
    run = make_run()
    store.runs.create(run, PLAN)
    first = make_version("raw")
    store.runs.step_finished(success(run.id, "raw", first), branch="main")
    store.runs.step_started(run.id, "clean[a]", 1, 10.0)
    before = snapshot(store, run.id)

    clash = make_version("clean", version_id=first.id, partition="a", inputs=[("x", first.id)])
    with pytest.raises(IntegrityError):
        store.runs.step_finished(
            success(run.id, "clean[a]", clash, logs=[("stdout", 1.0, "x")]), branch="main"
        )
    assert snapshot(store, run.id) == before
    with pytest.raises(VersionNotFoundError):
        store.versions.head("clean", partition="a")


def test_a_failure_at_the_last_statement_rolls_back_everything_before_it(
    store: MetadataStore,
) -> None:
    """The log insert runs last; when it fails, version, inputs, head and step roll back."""
    run = make_run()
    store.runs.create(run, PLAN)
    raw = make_version("raw")
    store.runs.step_finished(success(run.id, "raw", raw), branch="main")
    store.runs.step_started(run.id, "clean[a]", 1, 10.0)
    before = snapshot(store, run.id)

    clean = make_version("clean", partition="a", inputs=[("source", raw.id)])
    broken_logs = [("stdout", 1.0, "fine"), ("stdout", 2.0, None)]  # text is NOT NULL
    with pytest.raises(IntegrityError):
        store.runs.step_finished(
            success(run.id, "clean[a]", clean, logs=broken_logs),  # type: ignore[arg-type]
            branch="main",
        )
    assert snapshot(store, run.id) == before
    with pytest.raises(VersionNotFoundError):
        store.versions.get(clean.id)
    assert step(store, run.id, "clean[a]").status == "running"


def test_steps_blocked_marks_only_the_given_steps(store: MetadataStore) -> None:
    run, other = make_run(), make_run()
    store.runs.create(run, PLAN)
    store.runs.create(other, PLAN)
    store.runs.steps_blocked(run.id, ["clean[a]", "clean[b]"], "raw failed", 50.0)
    got = {s.key: (s.status, s.reason, s.ended_at) for s in store.runs.steps(run.id)}
    assert got == {
        "raw": ("pending", None, None),
        "clean[a]": ("upstream_failed", "raw failed", 50.0),
        "clean[b]": ("upstream_failed", "raw failed", 50.0),
    }
    assert {s.status for s in store.runs.steps(other.id)} == {"pending"}


def test_steps_blocked_with_no_keys_changes_nothing(store: MetadataStore) -> None:
    run = make_run()
    store.runs.create(run, PLAN)
    before = store.runs.steps(run.id)
    store.runs.steps_blocked(run.id, [], "nothing", 1.0)
    assert store.runs.steps(run.id) == before


# --- resume --------------------------------------------------------------------------

STATUSES = ["success", "skipped", "failed", "running", "pending", "upstream_failed", "canceled"]


def test_claim_for_resume_resets_only_unfinished_steps(store: MetadataStore) -> None:
    run = make_run(status="failed", host="old-host", pid=1)
    store.runs.create(run, [(s, s, None) for s in STATUSES])
    other = make_run()
    store.runs.create(other, [("failed", "failed", None)])
    for key in STATUSES:
        outcome = StepOutcome(
            run_id=run.id,
            key=key,
            status=key,
            attempt=1,
            ended_at=7.0,
            version_id=f"{key:v<32}"[:32],
            reason=f"why {key}",
            error=f"error {key}",
            traceback=f"tb {key}",
        )
        store.runs.step_finished(outcome, branch="main")
    store.runs.step_finished(
        StepOutcome(run_id=other.id, key="failed", status="failed", attempt=1, ended_at=1.0),
        branch="main",
    )
    store.runs.set_status(run.id, "failed", ended_at=8.0, error="run failed")
    before = {s.key: s for s in store.runs.steps(run.id)}
    other_before = store.runs.steps(other.id)

    store.runs.claim_for_resume(run.id, host="new-host", pid=777, started_at=9.0)

    after = {s.key: s for s in store.runs.steps(run.id)}
    assert after["success"] == before["success"]
    assert after["skipped"] == before["skipped"]
    for key in ("failed", "running", "pending", "upstream_failed", "canceled"):
        assert (after[key].status, after[key].error, after[key].traceback, after[key].reason) == (
            "pending",
            None,
            None,
            None,
        ), key
    resumed = store.runs.get(run.id)
    assert (resumed.status, resumed.host, resumed.pid, resumed.ended_at, resumed.error) == (
        "running",
        "new-host",
        777,
        None,
        None,
    )
    assert store.runs.steps(other.id) == other_before


# --- logs ----------------------------------------------------------------------------


def test_logs_filter_by_step_and_keep_their_order(store: MetadataStore) -> None:
    run, other = make_run(), make_run()
    store.runs.create(run, PLAN)
    store.runs.create(other, PLAN)
    # Written out of time order: logs come back in the order they were recorded.
    first = [("stdout", 5.0, "raw 1"), ("stderr", 1.0, "raw 2")]
    store.runs.step_finished(success(run.id, "raw", None, logs=first), branch="main")
    retry = StepOutcome(
        run_id=run.id,
        key="clean[a]",
        status="failed",
        attempt=1,
        ended_at=3.0,
        logs=[("stdout", 2.0, "a try 1")],
    )
    store.runs.step_finished(retry, branch="main")
    again = success(run.id, "clean[a]", None, attempt=2, logs=[("stdout", 4.0, "a try 2")])
    store.runs.step_finished(again, branch="main")
    store.runs.step_finished(
        success(other.id, "raw", None, logs=[("stdout", 0.0, "other")]), branch="main"
    )

    assert [(r.step_key, r.attempt, r.text) for r in store.runs.logs(run.id)] == [
        ("raw", 1, "raw 1"),
        ("raw", 1, "raw 2"),
        ("clean[a]", 1, "a try 1"),
        ("clean[a]", 2, "a try 2"),
    ]
    assert [r.text for r in store.runs.logs(run.id, "clean[a]")] == ["a try 1", "a try 2"]
    assert store.runs.logs(run.id, "clean[b]") == []
    assert store.runs.logs("no-such-run") == []
    assert [r.text for r in store.runs.logs(other.id)] == ["other"]


def test_log_text_round_trips_unicode_and_large_text(store: MetadataStore) -> None:
    run = make_run()
    store.runs.create(run, PLAN)
    texts = ["héllo wörld ✓ 日本\n", "", "x" * 200_000, "tab\tand\r\nnewline", "quote ' \" ;"]
    logs = [("stdout", float(i), t) for i, t in enumerate(texts)]
    store.runs.step_finished(success(run.id, "raw", None, logs=logs), branch="main")
    assert [r.text for r in store.runs.logs(run.id)] == texts


# --- batches -------------------------------------------------------------------------


def row(key: str, status: str, **values: object) -> dict[str, object]:
    """A whole step row as ``StepBatch.steps`` carries it."""
    base: dict[str, object] = {
        "key": key,
        "status": status,
        "attempts": 1,
        "started_at": 10.0,
        "ended_at": None,
        "duration_s": None,
        "reason": None,
        "error": None,
        "traceback": None,
        "version_id": None,
        "cache_key": None,
    }
    return base | values


def test_a_batch_writes_step_rows_versions_heads_and_logs(store: MetadataStore) -> None:
    run = make_run()
    store.runs.create(run, PLAN)
    raw = make_version("raw")
    clean = make_version("clean", partition="a", inputs=[("source", raw.id)])
    done = {"ended_at": 12.0, "duration_s": 2.0}
    store.runs.write_batch(
        StepBatch(
            run_id=run.id,
            branch="dev",
            steps=[
                row("raw", "success", version_id=raw.id, cache_key=raw.cache_key, **done),
                row("clean[a]", "success", version_id=clean.id, **done),
                row("clean[b]", "running"),
            ],
            versions=[(raw, "raw", 11.0), (clean, "clean[a]", 12.0)],
            logs=[("raw", 1, "stdout", 10.5, "raw out"), ("clean[a]", 1, "stderr", 11.5, "err")],
        )
    )
    got = {s.key: s for s in store.runs.steps(run.id)}
    assert (got["raw"].status, got["raw"].version_id, got["raw"].ended_at) == (
        "success",
        raw.id,
        12.0,
    )
    assert (got["clean[b]"].status, got["clean[b]"].started_at) == ("running", 10.0)
    assert store.versions.get(clean.id).inputs == {"source": [raw.id]}
    assert store.versions.get(raw.id).created_at == 11.0
    assert store.versions.head("clean", branch="dev", partition="a").id == clean.id
    assert set(store.versions.heads("dev")) == {("raw", None), ("clean", "a")}
    assert store.versions.heads("main") == {}
    assert [(r.step_key, r.stream, r.text) for r in store.runs.logs(run.id)] == [
        ("raw", "stdout", "raw out"),
        ("clean[a]", "stderr", "err"),
    ]


def test_a_batch_row_replaces_the_whole_step_row(store: MetadataStore) -> None:
    run = make_run()
    store.runs.create(run, PLAN)
    store.runs.step_finished(success(run.id, "raw", make_version("raw")), branch="main")
    store.runs.write_batch(StepBatch(run_id=run.id, branch="main", steps=[row("raw", "running")]))
    got = step(store, run.id, "raw")
    assert (got.status, got.version_id, got.cache_key, got.ended_at) == (
        "running",
        None,
        None,
        None,
    )


def test_an_empty_batch_changes_nothing(store: MetadataStore) -> None:
    run = make_run()
    store.runs.create(run, PLAN)
    before = snapshot(store, run.id)
    store.runs.write_batch(StepBatch(run_id=run.id, branch="main"))
    assert snapshot(store, run.id) == before


@pytest.mark.parametrize("failure", ["duplicate version", "null log text", "incomplete row"])
def test_a_failing_batch_writes_nothing_at_all(store: MetadataStore, failure: str) -> None:
    run = make_run()
    store.runs.create(run, PLAN)
    existing = make_version("raw")
    store.runs.step_finished(success(run.id, "raw", existing), branch="main")
    before = snapshot(store, run.id)

    fresh = make_version("clean", partition="a", inputs=[("source", existing.id)])
    versions = [(fresh, "clean[a]", 20.0)]
    steps = [row("clean[a]", "success", version_id=fresh.id), row("clean[b]", "running")]
    logs: list[tuple[str, int, str, float, str | None]] = [("clean[a]", 1, "stdout", 1.0, "x")]
    if failure == "duplicate version":
        versions.append((make_version("clean", version_id=existing.id), "clean[b]", 21.0))
    elif failure == "null log text":
        logs.append(("clean[a]", 1, "stdout", 2.0, None))  # text is NOT NULL
    else:
        del steps[1]["error"]  # every column of a step row is required
    with pytest.raises(StatementError):
        store.runs.write_batch(
            StepBatch(run_id=run.id, branch="main", steps=steps, versions=versions, logs=logs)  # type: ignore[arg-type]
        )
    assert snapshot(store, run.id) == before
    with pytest.raises(VersionNotFoundError):
        store.versions.get(fresh.id)


def test_two_versions_of_one_asset_in_a_batch_leave_the_last_as_head(
    store: MetadataStore,
) -> None:
    run = make_run()
    store.runs.create(run, PLAN)
    first = make_version("raw")
    second = make_version("raw", replaces=first.id)
    refused = store.runs.write_batch(
        StepBatch(
            run_id=run.id,
            branch="main",
            versions=[(first, "raw", 1.0), (second, "raw", 2.0)],
        )
    )
    assert refused == {}
    assert store.versions.head("raw").id == second.id
    assert {v.id for v in store.versions.list("raw")} == {first.id, second.id}


def test_a_version_whose_head_moved_meanwhile_is_refused_and_so_is_what_it_made(
    store: MetadataStore,
) -> None:
    run = make_run()
    store.runs.create(run, PLAN)
    first = make_version("raw")
    store.runs.write_batch(StepBatch(run_id=run.id, branch="main", versions=[(first, "raw", 1.0)]))
    stale = make_version("raw")  # made by a writer that never saw ``first``
    child = make_version("clean", inputs=[("raw", stale.id)])
    refused_ids: set[str] = set()
    refused = store.runs.write_batch(
        StepBatch(
            run_id=run.id,
            branch="main",
            versions=[(stale, "raw", 2.0), (child, "clean", 3.0)],
        ),
        refused_versions=refused_ids,
    )
    assert set(refused) == {"raw", "clean"}
    assert "branch conflict: raw on branch 'main' was moved" in refused["raw"]
    assert "was refused" in refused["clean"]
    assert refused_ids == {stale.id, child.id}
    assert store.versions.head("raw").id == first.id
    with pytest.raises(VersionNotFoundError):
        store.versions.head("clean")
    # The refused versions are kept for inspection, off the branch.
    assert store.versions.get(stale.id).id == stale.id
    # A later batch building on a refused version is refused too.
    grandchild = make_version("report", inputs=[("clean", child.id)])
    later = store.runs.write_batch(
        StepBatch(run_id=run.id, branch="main", versions=[(grandchild, "report", 4.0)]),
        refused_versions=refused_ids,
    )
    assert set(later) == {"report"}

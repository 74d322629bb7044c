"""Rows the database refuses are isolated and dead-lettered, the rest written; a store
that cannot be reached keeps every row for later. On SQLite and on PostgreSQL, which
enforces lengths and bytes that SQLite ignores."""

from __future__ import annotations

import socket
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from headrace.store import MetadataStore
from headrace.store.deadletters import IsolatingWriter
from headrace.store.engine import create_store_engine
from headrace.store.failures import is_transient


def prediction(i: int, **changes: Any) -> dict[str, Any]:
    row = {
        "id": f"req-{i}:0",
        "request_id": f"req-{i}",
        "model": "delay",
        "version": 1,
        "role": "served",
        "row": 0,
        "key": None,
        "inputs": '{"distance": 1.0}',
        "output": "1",
        "latency_ms": 0.5,
        "created_at": 1_700_000_000.0 + i,
        "label": None,
        "labeled_at": None,
        "score": None,
    }
    row.update(changes)
    return row


class Counted:
    """A repository's write, counting the transactions it was asked for."""

    def __init__(self, write: Any) -> None:
        self._write = write
        self.calls = 0

    def __call__(self, rows: list[dict[str, Any]]) -> None:
        self.calls += 1
        self._write(rows)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def unreachable_store() -> MetadataStore:
    """A PostgreSQL store on a port where nothing listens: every connection is refused."""
    return MetadataStore(
        create_store_engine(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/x")
    )


def test_refused_rows_are_dead_lettered_and_the_rest_written(
    store: MetadataStore, backend: str
) -> None:
    rows = [prediction(i) for i in range(40)]
    rows[7]["version"] = None  # NOT NULL on both databases
    rows[30] = prediction(3)  # the primary key of row 3 again
    bad = {7, 30}
    if backend == "postgresql":  # what only PostgreSQL refuses
        rows[12]["request_id"] = "r" * 65  # longer than VARCHAR(64)
        rows[20]["inputs"] = '{"note": "a\x00b"}'  # a NUL byte in TEXT
        bad |= {12, 20}
    write = Counted(store.predictions.write)
    outcome = IsolatingWriter(store, "predictions", write, lambda row: row).write(rows)

    assert outcome.error is None and outcome.unwritten == []
    assert outcome.written == 40 - len(bad) == store.predictions.count()
    positions = {id(row): i for i, row in enumerate(rows)}
    assert sorted(positions[id(row)] for row, _ in outcome.dead_lettered) == sorted(bad)
    letters = store.deadletters.list(writer="predictions")
    assert [letter.payload for letter in letters] == [row for row, _ in outcome.dead_lettered]
    reasons = {letter.payload["id"]: letter.reason.lower() for letter in letters}
    assert "null" in reasons["req-7:0"]
    assert "unique" in reasons["req-3:0"] or "duplicate" in reasons["req-3:0"]
    if backend == "postgresql":
        assert "too long" in reasons["req-12:0"]
        assert "nul" in reasons["req-20:0"]
    # a refused row is not in the log; each good one is, once
    logged = {r.id for r in store.predictions.list("delay", limit=100)}
    assert logged == {row["id"] for i, row in enumerate(rows) if i not in bad}
    # isolating 2-4 rows of 40 costs a few dozen small transactions, not one per row
    assert write.calls < 40


def test_a_batch_the_database_takes_is_one_transaction_and_no_letter(
    store: MetadataStore,
) -> None:
    write = Counted(store.predictions.write)
    writer = IsolatingWriter(store, "predictions", write, lambda row: row)
    outcome = writer.write([prediction(i) for i in range(10)])
    assert (outcome.written, write.calls, store.deadletters.count()) == (10, 1, 0)
    assert writer.write([]).written == 0 and write.calls == 1


def test_an_unreachable_store_keeps_every_row_without_splitting() -> None:
    down = unreachable_store()
    try:
        write = Counted(down.predictions.write)
        rows = [prediction(i) for i in range(16)]
        outcome = IsolatingWriter(down, "predictions", write, lambda row: row).write(rows)
    finally:
        down.close()
    assert outcome.unwritten == rows and outcome.written == 0
    assert outcome.dead_lettered == [] and write.calls == 1
    assert outcome.error is not None and is_transient(outcome.error)


def test_dead_letters_are_listed_by_writer_and_after_an_id(store: MetadataStore) -> None:
    store.deadletters.add("predictions", [("ValueError: bad", {"id": "a"})])
    store.deadletters.add("tracking", [("DataError: long", {"run_id": "r", "tag": ["k", "v"]})])
    store.deadletters.add("predictions", [("IntegrityError: twice", {"id": "b", "n": 2})])
    everything = store.deadletters.list()
    assert [letter.writer for letter in everything] == ["predictions", "tracking", "predictions"]
    assert [letter.payload["id"] for letter in store.deadletters.list(writer="predictions")] == [
        "a",
        "b",
    ]
    assert store.deadletters.list(after=everything[1].id)[0].reason == "IntegrityError: twice"
    assert (store.deadletters.count(), store.deadletters.count("tracking")) == (3, 1)


# -- which errors mean "retry later" and which "this row is refused" --------------------


def test_a_locked_sqlite_file_is_transient_not_a_refusal(tmp_path: Path) -> None:
    path = tmp_path / "locked.sqlite"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x INTEGER NOT NULL)")
    holder.execute("BEGIN IMMEDIATE")
    engine = sa.create_engine(f"sqlite:///{path}", connect_args={"timeout": 0})
    try:
        with pytest.raises(sa.exc.OperationalError) as locked, engine.begin() as c:
            c.execute(sa.text("INSERT INTO t VALUES (1)"))
        holder.execute("ROLLBACK")
        with pytest.raises(sa.exc.IntegrityError) as refused, engine.begin() as c:
            c.execute(sa.text("INSERT INTO t VALUES (NULL)"))
    finally:
        engine.dispose()
        holder.close()
    assert "locked" in str(locked.value)
    assert is_transient(locked.value)
    assert not is_transient(refused.value)


@pytest.mark.postgres
def test_postgresql_refusals_and_a_refused_connection_are_told_apart(postgres_url: str) -> None:
    engine = sa.create_engine(postgres_url)
    errors: list[BaseException] = []
    try:
        with engine.begin() as c:
            c.execute(sa.text("CREATE TABLE t (x VARCHAR(4) NOT NULL UNIQUE, n INTEGER)"))
        for statement, params in [
            ("INSERT INTO t (x) VALUES (:x)", {"x": "too long"}),
            ("INSERT INTO t (x) VALUES (:x)", {"x": None}),
            ("INSERT INTO t (x) VALUES (:x)", {"x": "a\x00"}),
            ("INSERT INTO t (x, n) VALUES ('a', :n)", {"n": "not a number"}),
            ("INSERT INTO t (x, n) VALUES ('b', :n)", {"n": 2**40}),
        ]:
            with pytest.raises(sa.exc.StatementError) as caught, engine.begin() as c:
                c.execute(sa.text(statement), params)
            errors.append(caught.value)
    finally:
        engine.dispose()
    assert [is_transient(e) for e in errors] == [False] * 5
    down = sa.create_engine(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/x")
    with pytest.raises(sa.exc.OperationalError) as refused:
        down.connect()
    down.dispose()
    assert is_transient(refused.value)


def test_labels_the_database_refuses_are_dead_lettered_and_the_rest_attached(
    store: MetadataStore, backend: str
) -> None:
    store.predictions.write([prediction(i) for i in range(4)])
    labels: list[tuple[str, Any]] = [
        ("req-0", 1),
        ("req-1", {1, 2}),  # JSON cannot hold a set
        ("req-2", 0),
        ("req-3:x", 1),  # not request:row, so a whole request id (none such)
    ]
    if backend == "postgresql":
        labels.append(("req-\x003", 1))  # a NUL byte in the id
    assert store.predictions.label("delay", labels) == 2
    labeled = {p.request_id: p.label for p in store.predictions.list("delay")}
    assert labeled == {"req-0": 1, "req-1": None, "req-2": 0, "req-3": None}
    letters = store.deadletters.list(writer="labels")
    assert [letter.payload["id"] for letter in letters] == ["req-1"] + (
        ["req-\x003"] if backend == "postgresql" else []
    )
    assert letters[0].payload == {
        "model": "delay",
        "by": "request_id",
        "id": "req-1",
        "label": "{1, 2}",
    }
    assert "TypeError" in letters[0].reason and "set" in letters[0].reason


def test_client_text_in_audit_entries_and_notifications_is_bounded_not_refused(
    store: MetadataStore,
) -> None:
    """Names and paths clients send end up in these writers; PostgreSQL would refuse a
    NUL byte or an over-long actor, failing the action or losing the notification."""
    entry = store.governance.record("a" * 300, "asset.read", "/api/x\x00y", "denied", {"n": 1})
    assert len(entry.actor) == 200 and entry.actor.endswith("\u2026")
    assert entry.target == "/api/x\\x00y"
    assert store.governance.verify() == (1, None)
    (kept,) = store.governance.audit()
    assert (kept.actor, kept.target) == (entry.actor, entry.target)
    made = store.notifications.add(
        "run_failed",
        "run failed: " + "e\x00" * 400,
        {"error": "x\x00y"},
        [{"kind": "log", "options": {}}],
        dedupe_key="k" * 600,
    )
    assert made is not None
    (due,) = store.notifications.due()
    assert len(due.subject) == 500 and "\x00" not in due.subject
    assert due.payload["error"] == "x\x00y"  # JSON keeps it escaped

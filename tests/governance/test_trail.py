"""The audit trail against a writer of the metadata store: keyed seals, checkpoints kept
in the object store or by a witness, and key rotation, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import delete, select, update

import headrace as hr
from headrace.core.audit_chain import AuditKeyError, ChainVerdict, parse_checkpoint
from headrace.runtime.audit import (
    ANCHOR,
    CheckpointRefusedError,
    rotate_key,
    take_checkpoint,
    verify_trail,
)
from headrace.runtime.workspace import Workspace
from headrace.store.governance import entry_hash
from headrace.store.schema import audit_checkpoints, audit_head, audit_log
from tests.projects import write_project


@pytest.fixture
def ws(tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Workspace]:
    monkeypatch.delenv("HEADRACE_AUDIT_KEY", raising=False)
    write_project(tmp_path, "")
    opened = hr.open_workspace(tmp_path, metadata_url=store_url)
    try:
        yield opened
    finally:
        opened.close()


def _entries(ws: Workspace, count: int) -> None:
    for index in range(count):
        ws.store.governance.record("ana", "model.promote", f"churn/{index}", "ok")


def _truncate(ws: Workspace, keep: int) -> None:
    """Remove the entries after ``keep``, their checkpoints' records, and move the head
    back: everything a writer of the store can do to hide the newest history."""
    with ws.store.write() as c:
        c.execute(delete(audit_log).where(audit_log.c.seq > keep))
        c.execute(delete(audit_checkpoints).where(audit_checkpoints.c.seq > keep))
        seal = c.execute(select(audit_log.c.hash).where(audit_log.c.seq == keep)).scalar_one()
        c.execute(update(audit_head).values(seq=keep, hash=seal))


def test_a_checkpoint_is_kept_in_the_object_store_and_matched(ws: Workspace) -> None:
    with pytest.raises(CheckpointRefusedError, match="the audit log is empty"):
        take_checkpoint(ws)
    _entries(ws, 3)
    point, blob = take_checkpoint(ws)
    assert point.seq == 3 and ws.blobs.get_bytes(blob).decode() == point.line()
    assert point.key_id == ws.store.governance.audit()[0].key_id
    _entries(ws, 2)
    verdict = verify_trail(ws)
    assert (verdict.checked, verdict.problem, verdict.checkpoints) == (5, None, 1)


def test_history_cut_short_shows_against_a_witnessed_checkpoint(ws: Workspace) -> None:
    _entries(ws, 6)
    witnessed, _ = take_checkpoint(ws)
    line = witnessed.line()  # printed, kept by someone outside the store
    _truncate(ws, 4)
    cut = (
        f"a checkpoint signed with key {witnessed.key_id!r} vouches for 6 entries but the "
        "log ends at entry 4: entries were removed from its end"
    )
    assert verify_trail(ws).problem == cut  # the object store's anchor still vouches for 6
    (Path(ws.settings.resolved_objects_url) / ANCHOR).unlink()  # the object store too
    assert verify_trail(ws).problem is None  # the stores alone cannot tell
    verdict = verify_trail(ws, witnessed=[parse_checkpoint(line)])
    assert verdict.problem == cut
    with ws.store.write() as c:  # everything gone: the log, its head, the records
        c.execute(delete(audit_log))
        c.execute(delete(audit_head))
        c.execute(delete(audit_checkpoints))
    assert verify_trail(ws) == ChainVerdict(0, None)
    gone = verify_trail(ws, witnessed=[parse_checkpoint(line)]).problem
    assert gone is not None and "vouches for 6 entries but the log ends at entry 0" in gone


def test_a_checkpoint_record_edited_in_the_store_shows(ws: Workspace) -> None:
    _entries(ws, 3)
    take_checkpoint(ws)
    with ws.store.write() as c:
        c.execute(update(audit_checkpoints).values(seq=2))
    assert verify_trail(ws).problem == (
        "the checkpoint of entry 2: its record differs from its copy in the object store: edited"
    )
    with ws.store.write() as c:
        c.execute(update(audit_checkpoints).values(seq=3, blob="0" * 64))
    assert verify_trail(ws).problem == (
        "the checkpoint of entry 3: its copy in the object store (blob 000000000000) is missing"
    )


def test_a_log_rewritten_wholesale_without_the_key_shows(ws: Workspace) -> None:
    """The tampering the issue names: rewrite an entry with SQL, recompute the chain
    and its head with headrace's old unkeyed function, and ask verify."""
    _entries(ws, 4)
    take_checkpoint(ws)
    _entries(ws, 1)
    with ws.store.write() as c:
        c.execute(update(audit_log).where(audit_log.c.seq == 2).values(actor="mallory"))
        prev = "0" * 64
        for r in c.execute(select(audit_log).order_by(audit_log.c.seq)).all():
            seal = entry_hash(r.seq, r.at, r.actor, r.action, r.target, r.outcome, r.details, prev)
            c.execute(
                update(audit_log)
                .where(audit_log.c.seq == r.seq)
                .values(prev_hash=prev, hash=seal, key_id=None)
            )
            prev = seal
        c.execute(update(audit_head).values(hash=prev))
    verdict = verify_trail(ws)
    assert verdict.problem is not None and verdict.problem.startswith(
        "entry 4 does not match the checkpoint signed with key"
    )
    assert verdict.legacy == 3  # every entry before it now looks unkeyed


def test_checkpointing_a_broken_log_is_refused(ws: Workspace) -> None:
    _entries(ws, 2)
    with ws.store.write() as c:
        c.execute(update(audit_log).where(audit_log.c.seq == 1).values(outcome="denied"))
    with pytest.raises(CheckpointRefusedError, match="does not verify, so it is not checkpo"):
        take_checkpoint(ws)
    with pytest.raises(AuditKeyError, match="does not verify, so its key is not rotated"):
        rotate_key(ws)
    assert ws.store.governance.checkpoints() == []


def test_a_rotated_key_continues_the_chain(ws: Workspace) -> None:
    _entries(ws, 2)
    first = ws.store.governance.audit()[0].key_id
    done = rotate_key(ws)
    assert done.old == first and done.new != first
    _entries(ws, 1)
    entries = ws.store.governance.audit()
    assert [e.key_id for e in entries] == [first, first, done.new, done.new]
    assert entries[2].action == "audit.key.rotate" and entries[2].details["from"] == first
    verdict = verify_trail(ws)
    assert verdict.problem is None and verdict.keys == (first, done.new)
    # without the old key the older entries cannot be vouched for
    path = Path(done.file)
    path.write_text("".join(line + "\n" for line in path.read_text().splitlines()[-1:]))
    assert f"entry 1 is sealed with audit key {first!r}, which was not given" in (
        verify_trail(ws).problem or ""
    )

"""Audit checkpoints taken without anyone asking: by the daemon at ``[audit]
checkpoint_every`` when the log grew, and by ``audit rotate-key`` under the new key; and a
cut of the newest entries and their checkpoint records caught by the object store's
anchor or the ``[audit] checkpoint_log`` witness file, on SQLite and PostgreSQL."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import delete, select, update

import headrace as hr
from headrace.errors import SettingsError
from headrace.runtime.audit import (
    ANCHOR,
    CheckpointLogUnusableError,
    anchored,
    rotate_key,
    take_checkpoint,
    verify_trail,
)
from headrace.runtime.workspace import Workspace
from headrace.scheduling.daemon import Daemon
from headrace.store.schema import audit_checkpoints, audit_head, audit_log
from headrace.workspace.settings import load_settings
from tests.integration.conftest import run_cli
from tests.projects import write_project

HOUR = 3600.0
T0 = 1_800_000_000.0  # the daemon's clock, driven by hand


def _open(root: Path, store_url: str, **overrides: object) -> Workspace:
    write_project(root, "")
    return hr.open_workspace(root, metadata_url=store_url, **overrides)


@pytest.fixture
def ws(tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Workspace]:
    monkeypatch.delenv("HEADRACE_AUDIT_KEY", raising=False)
    opened = _open(tmp_path / "ws", store_url)
    try:
        yield opened
    finally:
        opened.close()


def _entries(ws: Workspace, count: int) -> None:
    for index in range(count):
        ws.store.governance.record("ana", "model.promote", f"churn/{index}", "ok")


def _seqs(ws: Workspace) -> list[int]:
    return [point.seq for point, _ in ws.store.governance.checkpoints()]


def _cut(ws: Workspace, keep: int) -> None:
    """What a writer of the database does to hide the newest history: remove the entries
    after ``keep`` and every checkpoint record, and move the head back."""
    with ws.store.write() as c:
        c.execute(delete(audit_log).where(audit_log.c.seq > keep))
        c.execute(delete(audit_checkpoints))
        seal = c.execute(select(audit_log.c.hash).where(audit_log.c.seq == keep)).scalar_one()
        c.execute(update(audit_head).values(seq=keep, hash=seal))


def test_the_daemon_checkpoints_a_grown_log_once_per_interval(
    ws: Workspace, caplog: pytest.LogCaptureFixture
) -> None:
    assert ws.settings.audit_checkpoint_every == HOUR  # the default
    daemon = Daemon(ws, workers=0, reload=False)
    daemon.step(now=T0)  # an empty log: nothing to vouch for
    assert _seqs(ws) == [] and anchored(ws) is None

    _entries(ws, 3)
    daemon.step(now=T0 + 1)  # the interval has not passed since the last look
    assert _seqs(ws) == []
    with caplog.at_level(logging.INFO, logger="headrace.scheduling"):
        daemon.step(now=T0 + HOUR)
    assert _seqs(ws) == [3]
    point = anchored(ws)
    assert point is not None and point.seq == 3
    said = [r.getMessage() for r in caplog.records if "audit checkpoint" in r.getMessage()]
    assert said == [f"audit checkpoint of entry 3 signed with key {point.key_id}"]

    daemon.step(now=T0 + 2 * HOUR)  # nothing appended since: no new checkpoint
    assert _seqs(ws) == [3]
    _entries(ws, 2)
    daemon.step(now=T0 + 2 * HOUR + 60)  # appended, but within the interval
    assert _seqs(ws) == [3]
    daemon.step(now=T0 + 3 * HOUR)
    assert _seqs(ws) == [3, 5]
    assert verify_trail(ws).checkpoints == 2


def test_a_daemon_whose_checkpoint_fails_warns_and_goes_on(
    ws: Workspace, caplog: pytest.LogCaptureFixture
) -> None:
    _entries(ws, 2)
    with ws.store.write() as c:  # a broken log is never checkpointed
        c.execute(update(audit_log).where(audit_log.c.seq == 1).values(outcome="denied"))
    daemon = Daemon(ws, workers=0, reload=False)
    with caplog.at_level(logging.WARNING, logger="headrace.scheduling"):
        daemon.step(now=T0)
        daemon.step(now=T0 + HOUR)
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 2 and all(
        m.startswith(
            "the audit checkpoint failed: CheckpointRefusedError: the audit log does "
            "not verify, so it is not checkpointed: entry 1 was changed"
        )
        for m in warned
    )
    assert _seqs(ws) == [] and daemon.retry_in is None  # not an outage: the daemon goes on


def test_checkpoints_off_takes_none(tmp_path: Path, store_url: str) -> None:
    with _open(tmp_path / "ws", store_url, audit_checkpoint_every=0.0) as ws:
        _entries(ws, 2)
        daemon = Daemon(ws, workers=0, reload=False)
        for hours in range(3):
            daemon.step(now=T0 + hours * HOUR)
        assert _seqs(ws) == [] and anchored(ws) is None


def test_rotating_the_key_leaves_a_checkpoint_under_the_new_key(ws: Workspace) -> None:
    _entries(ws, 2)
    done = rotate_key(ws)
    assert done.checkpoint.key_id == done.new and done.checkpoint.seq == 3  # the rotation
    assert _seqs(ws) == [3] and anchored(ws) == done.checkpoint
    assert ws.store.governance.audit()[2].key_id == done.new


def test_a_cut_with_the_checkpoint_records_deleted_still_shows(ws: Workspace) -> None:
    _entries(ws, 6)
    daemon = Daemon(ws, workers=0, reload=False)
    daemon.step(now=T0)
    assert _seqs(ws) == [6]
    _cut(ws, 4)
    problem = verify_trail(ws).problem or ""
    assert "vouches for 6 entries but the log ends at entry 4" in problem
    daemon.step(now=T0 + HOUR)  # the daemon does not vouch for the cut log
    assert _seqs(ws) == []


def test_the_checkpoint_log_witnesses_a_cut_the_stores_cannot_show(
    tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HEADRACE_AUDIT_KEY", raising=False)
    witness = tmp_path / "witness" / "audit-checkpoints.txt"
    witness.parent.mkdir()
    with _open(tmp_path / "ws", store_url, audit_checkpoint_log=str(witness)) as ws:
        _entries(ws, 5)
        daemon = Daemon(ws, workers=0, reload=False)
        daemon.step(now=T0)
        _entries(ws, 1)
        daemon.step(now=T0 + HOUR)
        lines = witness.read_text().splitlines()
        assert [line.count('"seq":') for line in lines] == [1, 1]
        assert '"seq":5,' in lines[0] and '"seq":6,' in lines[1]
        # a writer of the database AND of the object store
        _cut(ws, 3)
        (Path(ws.settings.resolved_objects_url) / ANCHOR).unlink()
        problem = verify_trail(ws).problem or ""
        assert "vouches for 6 entries but the log ends at entry 3" in problem

        witness.write_text("not a checkpoint\n")
        with pytest.raises(hr.HeadraceError, match=r"audit-checkpoints.txt line 1: "):
            verify_trail(ws)


def test_a_checkpoint_log_that_cannot_be_written_is_one_clear_line(
    tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HEADRACE_AUDIT_KEY", raising=False)
    nowhere = tmp_path / "missing-folder" / "witness.txt"
    with _open(tmp_path / "ws", store_url, audit_checkpoint_log=str(nowhere)) as ws:
        _entries(ws, 1)
        keys = (ws.settings.state_dir / "audit.key").read_text()
        with pytest.raises(CheckpointLogUnusableError) as raised:
            rotate_key(ws)
        # refused before anything changed: the same key, no rotation entry, no checkpoint
        assert (ws.settings.state_dir / "audit.key").read_text() == keys
        assert len(ws.store.governance.audit()) == 1 and _seqs(ws) == []
        assert anchored(ws) is None
        with pytest.raises(CheckpointLogUnusableError):
            take_checkpoint(ws)
        assert _seqs(ws) == [] and anchored(ws) is None
    message = str(raised.value)
    assert message.startswith(f"audit checkpoint_log {nowhere}: cannot append checkpoints to it")
    assert "[audit] checkpoint_log (HEADRACE_AUDIT_CHECKPOINT_LOG)" in message


@pytest.mark.parametrize("value", ["soon", "-5m", "1x", ""])
def test_a_bad_checkpoint_interval_names_the_setting(
    tmp_path: Path, value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_project(tmp_path, "")
    monkeypatch.setenv("HEADRACE_AUDIT_CHECKPOINT_EVERY", value)
    with pytest.raises(SettingsError) as raised:
        load_settings(tmp_path)
    assert str(raised.value) == (
        "HEADRACE_AUDIT_CHECKPOINT_EVERY: checkpoint_every must be a duration such as '1h' "
        f"or '30m', or 0 / 'off' to take no checkpoints automatically, got {value!r}"
    )


def test_checkpoint_settings_in_headrace_toml(tmp_path: Path) -> None:
    write_project(tmp_path, "")
    config = tmp_path / "headrace.toml"
    base = config.read_text()
    for given, seconds in (('"30m"', 1800.0), ('"off"', 0.0), ("0", 0.0), ("90", 90.0)):
        config.write_text(base + f"\n[audit]\ncheckpoint_every = {given}\n")
        assert load_settings(tmp_path).audit_checkpoint_every == seconds
    config.write_text(base + '\n[audit]\ncheckpoint_every = true\ncheckpoint_log = "w.txt"\n')
    with pytest.raises(SettingsError, match=r"^headrace.toml audit.checkpoint_every: .* got True$"):
        load_settings(tmp_path)


def test_rotate_key_prints_the_new_keys_checkpoint(tmp_path: Path) -> None:
    write_project(tmp_path, "")
    run_cli(tmp_path, "admin", "create", "root", check=True)
    out = run_cli(tmp_path, "audit", "rotate-key", check=True).stdout
    assert "checkpoint of entry 3 signed with the new key and kept in the object store" in out
    line = out.strip().splitlines()[-1]
    assert line.startswith('{"kind":"headrace-audit-checkpoint","seq":3,')
    assert "1 checkpoint matched" in run_cli(tmp_path, "audit", "verify", check=True).stdout


def test_the_documented_checkpoint_settings_load(tmp_path: Path) -> None:
    doc = Path(__file__).parents[2] / "docs" / "audit.md"
    block = doc.read_text().split("```toml\n", 1)[1].split("\n```", 1)[0]
    write_project(tmp_path, "")
    config = tmp_path / "headrace.toml"
    config.write_text(config.read_text() + "\n" + block + "\n")
    settings = load_settings(tmp_path)
    assert settings.audit_checkpoint_every == 1800.0
    assert settings.audit_checkpoint_log == "/var/log/headrace/audit-checkpoints.txt"


def test_the_anchor_never_moves_back_and_outlives_a_wiped_log(ws: Workspace) -> None:
    from headrace.runtime.audit import _anchor

    _entries(ws, 3)
    older, _ = take_checkpoint(ws)
    _entries(ws, 2)
    newer, _ = take_checkpoint(ws)
    _anchor(ws, older)  # a slower writer finishing late
    assert anchored(ws) == newer
    with ws.store.write() as c:  # the log, its head and every record gone
        c.execute(delete(audit_log))
        c.execute(delete(audit_head))
        c.execute(delete(audit_checkpoints))
    assert "vouches for 5 entries but the log ends at entry 0" in (verify_trail(ws).problem or "")


def test_a_damaged_anchor_is_a_break_and_stops_the_daemons_checkpoints(
    ws: Workspace, caplog: pytest.LogCaptureFixture
) -> None:
    _entries(ws, 2)
    daemon = Daemon(ws, workers=0, reload=False)
    daemon.step(now=T0)
    (Path(ws.settings.resolved_objects_url) / ANCHOR).write_text('{"kind": "nothing"}')
    problem = verify_trail(ws).problem or ""
    assert problem.startswith(f"the object store's {ANCHOR} (the newest audit checkpoint) is ")
    assert problem.endswith("restore it from a backup of the object store")
    _entries(ws, 1)
    with caplog.at_level(logging.WARNING, logger="headrace.scheduling"):
        daemon.step(now=T0 + HOUR)
    assert _seqs(ws) == [2]
    assert any("the audit checkpoint failed" in r.getMessage() for r in caplog.records)


def test_an_encrypted_object_store_keeps_the_anchor_readable_without_its_key(
    tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from headrace.objects.encrypted import EncryptedBlobStore
    from headrace.objects.opening import KEY_ENV, NEW_KEY_ENV, enable_encryption

    monkeypatch.delenv("HEADRACE_AUDIT_KEY", raising=False)
    monkeypatch.delenv(NEW_KEY_ENV, raising=False)
    monkeypatch.delenv("HEADRACE_ENCRYPTION_KEY_FILE", raising=False)
    monkeypatch.setenv(KEY_ENV, "a workspace key, long enough 123")
    with _open(tmp_path / "ws", store_url) as ws:
        enable_encryption(ws.objects_config)
    with hr.open_workspace(tmp_path / "ws", metadata_url=store_url) as ws:
        assert isinstance(ws.blobs, EncryptedBlobStore)
        _entries(ws, 2)
        Daemon(ws, workers=0, reload=False).step(now=T0)
        anchor = (Path(ws.settings.resolved_objects_url) / ANCHOR).read_text()
        point = anchored(ws)
        assert point is not None and anchor == point.line()
        assert '"seq":2,' in anchor  # plain: an auditor reads it without the data key
        assert verify_trail(ws).problem is None


def test_the_cli_appends_to_the_checkpoint_log_and_refuses_an_unwritable_one(
    tmp_path: Path,
) -> None:
    root = tmp_path / "ws"
    write_project(root, "")
    config = root / "headrace.toml"
    base = config.read_text()
    config.write_text(base + '\n[audit]\ncheckpoint_log = "../witness.txt"\n')
    run_cli(root, "admin", "create", "root", check=True)
    printed = run_cli(root, "audit", "checkpoint", check=True).stdout.strip()
    rotated = run_cli(root, "audit", "rotate-key", check=True).stdout.strip().splitlines()[-1]
    assert (tmp_path / "witness.txt").read_text().splitlines() == [printed, rotated]
    assert "2 checkpoints matched" in run_cli(root, "audit", "verify", check=True).stdout

    config.write_text(base + '\n[audit]\ncheckpoint_log = "no/such/folder/witness.txt"\n')
    refused = run_cli(root, "audit", "checkpoint")
    assert refused.returncode == 1 and refused.stdout == ""
    message = " ".join(refused.stderr.split())
    assert f"audit checkpoint_log {root / 'no/such/folder/witness.txt'}: cannot append" in message


def test_the_team_server_refuses_a_checkpoint_its_log_cannot_witness(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import httpx

    from tests.server.conftest import running_server

    witness = tmp_path / "witness.txt"
    monkeypatch.delenv("HEADRACE_AUDIT_KEY", raising=False)
    monkeypatch.setenv("HEADRACE_AUDIT_CHECKPOINT_LOG", str(witness))
    with running_server(tmp_path / "ws", worker=False) as server:
        made = httpx.post(f"{server.api}/audit/checkpoint", headers=server.headers())
        assert made.status_code == 201
        assert witness.read_text() == made.json()["checkpoint"] + "\n"
        witness.unlink()
        witness.mkdir()  # no longer a file anything can be appended to
        refused = httpx.post(f"{server.api}/audit/checkpoint", headers=server.headers())
        assert refused.status_code == 409 and refused.json()["error_code"] == "CHECKPOINT_REFUSED"
        assert refused.json()["message"].startswith(
            f"audit checkpoint_log {witness}: cannot append checkpoints to it"
        )
        assert [p.seq for p, _ in server.ws.store.governance.checkpoints()] == [2]

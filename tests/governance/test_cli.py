"""``headrace admin / principals / tokens / audit`` on a workspace's store."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import headrace as hr
from headrace.store.governance import entry_hash
from tests.integration.conftest import run_cli
from tests.projects import write_project


def test_admin_principals_tokens_and_audit(tmp_path: Path) -> None:
    write_project(tmp_path, "")
    created = run_cli(tmp_path, "admin", "create", "root-admin", check=True).stdout
    [token] = re.findall(r"hr_[0-9a-f]{16}_\S+", created)
    again = run_cli(tmp_path, "admin", "create", "someone")
    assert again.returncode == 1 and "an admin exists (root-admin)" in again.stderr

    made = run_cli(
        tmp_path, "principals", "create", "ci-bot", "--service", "--role", "developer", check=True
    ).stdout
    assert "created service ci-bot as developer in *" in made
    [bot_token] = re.findall(r"hr_[0-9a-f]{16}_\S+", made)
    run_cli(
        tmp_path, "principals", "grant", "ci-bot", "maintainer", "--namespace", "ml", check=True
    )
    listed = run_cli(tmp_path, "principals", "list", check=True).stdout
    assert "developer in *, maintainer in ml" in listed and "admin in *" in listed
    bad_role = run_cli(tmp_path, "principals", "grant", "ci-bot", "owner")
    assert bad_role.returncode == 1 and "unknown role 'owner'" in bad_role.stderr

    tokens = run_cli(tmp_path, "tokens", "list", check=True).stdout
    assert token.split("_")[1] in tokens and token.split("_")[2] not in tokens  # no secrets
    bot_id = bot_token.split("_")[1]
    run_cli(tmp_path, "tokens", "revoke", bot_id, check=True)
    ws = hr.open_workspace(tmp_path)
    try:
        assert ws.store.governance.authenticate(token).name == "root-admin"
        assert "revoked" in run_cli(tmp_path, "tokens", "list", "ci-bot", check=True).stdout
    finally:
        ws.close()

    audit = run_cli(tmp_path, "audit", "list", check=True).stdout
    for action in ("principal.create", "token.issue", "role.grant", "token.revoke"):
        assert action in audit
    verified = run_cli(tmp_path, "audit", "verify", check=True).stdout
    assert "audit log intact: 6 entries" in verified

    with sqlite3.connect(tmp_path / ".headrace" / "headrace.db") as db:
        db.execute("UPDATE audit_log SET actor = 'nobody' WHERE seq = 2")
    broken = run_cli(tmp_path, "audit", "verify")
    assert broken.returncode == 1 and "entry 2 was changed after it was written" in broken.stdout


def test_the_documented_audit_commands_run(tmp_path: Path) -> None:
    """Every command of docs/audit.md's example, in order, on a workspace."""
    doc = Path(__file__).parents[2] / "docs" / "audit.md"
    block = doc.read_text().split("```sh\n", 1)[1].split("\n```", 1)[0]
    write_project(tmp_path, "")
    run_cli(tmp_path, "admin", "create", "root", check=True)
    outputs = []
    for raw in block.splitlines():
        line = raw.split("#", 1)[0].strip()
        command, _, into = line.partition(">>")
        words = command.split()
        assert words[0] == "headrace"
        done = run_cli(tmp_path, *words[1:], check=True)
        if into:
            with (tmp_path / into.strip()).open("a") as out:
                out.write(done.stdout)
        outputs.append(done.stdout)
    # the README's audit commands are among them, so they are run here too
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    ran = {" ".join(raw.split("#", 1)[0].split()) for raw in block.splitlines()}
    listed = {
        " ".join(raw.split("#", 1)[0].split())
        for raw in readme.splitlines()
        if raw.startswith("headrace audit")
    }
    assert listed and listed <= ran, listed - ran
    witness = (tmp_path / "audit-witness.txt").read_text().splitlines()
    assert len(witness) == 1 and witness[0].startswith('{"kind":"headrace-audit-checkpoint"')
    assert "1 checkpoint matched" in outputs[3]
    assert "audit key" in outputs[4] and "added to" in outputs[4]
    assert "checkpoint of entry 3 signed with the new key" in outputs[4]  # taken at once
    last = outputs[5]
    assert "audit log intact: 3 entries" in last and "sealed with audit keys" in last
    assert "2 checkpoints matched" in last


def test_audit_verify_refuses_bad_checkpoints_and_key_files(tmp_path: Path) -> None:
    write_project(tmp_path, "")
    run_cli(tmp_path, "admin", "create", "root", check=True)
    bad = run_cli(tmp_path, "audit", "verify", "--checkpoint", '{"kind": "x"}')
    assert bad.returncode == 1 and 'a JSON object with "kind"' in bad.stderr
    missing = run_cli(tmp_path, "audit", "verify", "--checkpoint", "nowhere.txt")
    assert missing.returncode == 2 and "neither a checkpoint line (JSON) nor a file" in (
        missing.stderr
    )
    keys = tmp_path / "auditor.keys"
    keys.write_text("other " + "z" * 32 + "\n")
    foreign = run_cli(tmp_path, "audit", "verify", "--key-file", str(keys))
    assert foreign.returncode == 1 and "sealed with audit key" in foreign.stdout
    assert "which was not given" in foreign.stdout
    own = (tmp_path / ".headrace" / "audit.key").read_text()
    keys.write_text(own)
    assert (
        "audit log intact: 2 entries"
        in run_cli(tmp_path, "audit", "verify", "--key-file", str(keys), check=True).stdout
    )


def test_a_legacy_log_verifies_with_a_warning(tmp_path: Path) -> None:
    write_project(tmp_path, "")
    run_cli(tmp_path, "admin", "create", "root", check=True)
    with sqlite3.connect(tmp_path / ".headrace" / "headrace.db") as db:
        rows = db.execute(
            "SELECT seq, at, actor, action, target, outcome, details FROM audit_log ORDER BY seq"
        ).fetchall()
        prev = "0" * 64  # as an old headrace wrote them: unkeyed
        for seq, at, actor, action, target, outcome, details in rows:
            seal = entry_hash(seq, at, actor, action, target, outcome, details, prev)
            db.execute(
                "UPDATE audit_log SET prev_hash = ?, hash = ?, key_id = NULL WHERE seq = ?",
                (prev, seal, seq),
            )
            prev = seal
        db.execute("UPDATE audit_head SET hash = ?", (prev,))
    run_cli(tmp_path, "principals", "create", "ana", check=True)
    verified = run_cli(tmp_path, "audit", "verify", check=True).stdout
    assert "audit log intact: 4 entries" in verified
    assert "2 legacy entries (1 to 2) are unkeyed" in verified
    assert "2 sealed with audit key" in verified

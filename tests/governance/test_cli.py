"""``headrace admin / principals / tokens / audit`` on a workspace's store."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import headrace as hr
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

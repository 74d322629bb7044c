"""The audit trail through the team server: checkpoints signed with the server's key,
verification against witnessed ones, and the CLI with HEADRACE_URL."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from sqlalchemy import delete, select, update

from headrace.core.audit_chain import parse_checkpoint
from headrace.runtime.audit import ANCHOR
from headrace.store.schema import audit_checkpoints, audit_head, audit_log
from tests.server.conftest import TeamServer
from tests.server.test_client import _cli

pytestmark = pytest.mark.integration


def test_checkpoints_and_verification_through_the_server(
    team_server: TeamServer, tmp_path: Path
) -> None:
    api, ws = team_server.api, team_server.ws
    viewer = team_server.token_for("vic", "viewer")
    refused = httpx.post(f"{api}/audit/checkpoint", headers=team_server.headers(viewer))
    assert refused.status_code == 403
    made = httpx.post(f"{api}/audit/checkpoint", headers=team_server.headers())
    assert made.status_code == 201
    line = made.json()["checkpoint"]
    point = parse_checkpoint(line)
    assert ws.blobs.get_bytes(made.json()["blob"]).decode() == line
    actions = [(e.action, e.outcome) for e in ws.store.governance.audit(limit=1000)]
    assert ("audit.checkpoint", "denied") in actions and actions[-1] == ("audit.checkpoint", "ok")

    verdict = httpx.get(
        f"{api}/audit/verify", params={"checkpoint": [line]}, headers=team_server.headers()
    ).json()
    assert verdict["intact"] and verdict["checkpoints"] == 1 and verdict["legacy"] == 0
    assert verdict["keys"] == [point.key_id]
    bad = httpx.get(
        f"{api}/audit/verify",
        params={"checkpoint": [line.replace('"seq":', '"seq":"')]},
        headers=team_server.headers(),
    )
    assert bad.status_code == 400 and "checkpoint: " in bad.json()["message"]

    # a writer of the store cuts the log back before the checkpoint and hides its record
    with ws.store.write() as c:
        c.execute(delete(audit_log).where(audit_log.c.seq > 2))
        c.execute(delete(audit_checkpoints))
        seal = c.execute(select(audit_log.c.hash).where(audit_log.c.seq == 2)).scalar_one()
        c.execute(update(audit_head).values(seq=2, hash=seal))
    witness = tmp_path / "witness.txt"
    witness.write_text(line + "\n")
    plain = _cli(team_server, team_server.token, tmp_path, "audit", "verify")
    # the object store still holds the newest checkpoint under its fixed name
    assert plain.returncode == 1 and "entries were removed from its end" in plain.stdout
    refused = _cli(team_server, team_server.token, tmp_path, "audit", "checkpoint")
    assert refused.returncode == 1 and "does not verify, so it is not checkpointed" in (
        refused.stderr + refused.stdout
    )
    # a writer of the object store too removes that: only the witness shows the cut
    (Path(ws.settings.resolved_objects_url) / ANCHOR).unlink()
    plain = _cli(team_server, team_server.token, tmp_path, "audit", "verify")
    assert plain.returncode == 0 and "0 checkpoints matched" in plain.stdout
    caught = _cli(
        team_server, team_server.token, tmp_path, "audit", "verify", "--checkpoint", str(witness)
    )
    assert caught.returncode == 1 and "entries were removed from its end" in caught.stdout
    keyed = _cli(team_server, team_server.token, tmp_path, "audit", "verify", "--key-file", "k")
    assert keyed.returncode == 2 and "--key-file verifies a local store" in keyed.stderr

    again = _cli(team_server, team_server.token, tmp_path, "audit", "checkpoint")
    assert again.returncode == 0 and "checkpoint kept in the object store" in again.stderr
    # the log as it is: its 2 entries and the refused attempt's; its own entry follows
    assert json.loads(again.stdout)["seq"] == 3

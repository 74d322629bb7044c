"""``headrace deadletters list`` and ``headrace predictions load``, as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import headrace as hr
from headrace.serving.unlogged import spill
from headrace.store.deadletters import IsolatingWriter
from headrace.workspace.settings import init_workspace
from tests.integration.conftest import run_cli
from tests.store.test_deadletters import prediction


def test_dead_letters_are_listed_with_their_reason_and_row(tmp_path: Path) -> None:
    init_workspace(tmp_path)
    with hr.open_workspace(tmp_path) as ws:
        store = ws.store
        writer = IsolatingWriter(store, "predictions", store.predictions.write, lambda r: r)
        writer.write([prediction(1), prediction(2, version=None), prediction(3)])
        store.deadletters.add("tracking", [("DataError: too long", {"run_id": "r1"})])
    # the commands of the README's "When logging fails"
    listed = run_cli(tmp_path, "deadletters", "list", "--writer", "predictions", check=True)
    assert (
        "predictions: IntegrityError: NOT NULL constraint failed: predictions.version"
        in listed.stdout
    )
    assert '"request_id": "req-2"' in listed.stdout and "1 dead letters in all" in listed.stdout
    assert "tracking" not in listed.stdout
    lines = run_cli(tmp_path, "deadletters", "list", "--json", check=True).stdout
    letters = [json.loads(line) for line in lines.splitlines()]
    assert [letter["writer"] for letter in letters] == ["predictions", "tracking"]
    assert letters[0]["payload"] == prediction(2, version=None)
    assert letters[1] == {
        "id": letters[1]["id"],
        "writer": "tracking",
        "reason": "DataError: too long",
        "created_at": letters[1]["created_at"],
        "payload": {"run_id": "r1"},
    }


def test_rows_a_server_kept_in_a_file_are_loaded_once(tmp_path: Path) -> None:
    init_workspace(tmp_path)
    rows = [prediction(i) for i in range(3)]
    spilled = spill(tmp_path / ".headrace" / "unlogged", rows)
    first = run_cli(tmp_path, "predictions", "load", str(spilled), check=True).stdout
    assert "loaded 3 prediction rows" in first and "0 were already logged" in first
    again = run_cli(tmp_path, "predictions", "load", str(spilled), check=True).stdout
    assert "loaded 0 prediction rows" in again and "3 were already logged" in again
    with hr.open_workspace(tmp_path) as ws:
        assert ws.store.predictions.count("delay") == 3
    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps(rows[0]) + "\n" + json.dumps({"id": "x"}) + "\n")
    refused = run_cli(tmp_path, "predictions", "load", str(broken))
    assert refused.returncode == 1
    assert "broken.jsonl, line 2: expected a row with the prediction log's columns" in (
        refused.stderr
    )
    missing = run_cli(tmp_path, "predictions", "load", str(tmp_path / "nope.jsonl"))
    assert missing.returncode == 1 and "cannot read" in missing.stderr

"""OpenLineage events that cannot be delivered (the endpoint is down, the queue is full,
the run ended first) are kept in a file, not dropped silently."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from headrace.lineage import FileTransport, HttpTransport, LineageStats, OpenLineageEmitter
from headrace.lineage.settings import emitter_from_settings
from headrace.workspace.settings import init_workspace, load_settings
from tests.lineage.scenario import RUN_ID, play_run
from tests.serving.test_server import free_port


def kept_events(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_events_a_down_endpoint_refuses_are_kept_in_the_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    down = HttpTransport(f"http://127.0.0.1:{free_port()}", timeout=1)  # nothing listens
    keep = FileTransport(tmp_path / "undelivered.jsonl")
    emitter = OpenLineageEmitter(down, keep=keep, flush_timeout=30)
    with caplog.at_level(logging.WARNING, logger="headrace.lineage"):
        play_run(emitter)
    stats = emitter.stats
    assert stats.sent == 0 and stats.errors == 10
    assert stats == LineageStats(sent=0, failed=3, dropped=7, kept=10)
    events = kept_events(tmp_path / "undelivered.jsonl")
    assert len(events) == 10
    assert events[0]["eventType"] == "START"  # in the order they were emitted
    assert "not delivered" in caplog.text


def test_a_workspace_emitter_keeps_undelivered_events_under_its_state_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    init_workspace(tmp_path)
    monkeypatch.setenv("HEADRACE_LINEAGE_TRANSPORT", "http")
    monkeypatch.setenv("HEADRACE_LINEAGE_URL", f"http://127.0.0.1:{free_port()}")
    emitter = emitter_from_settings(load_settings(tmp_path))
    assert emitter is not None
    play_run(emitter)
    path = tmp_path / ".headrace" / "unlogged" / "lineage-undelivered.jsonl"
    events = kept_events(path)
    assert len(events) == 10 == emitter.stats.kept
    assert all(RUN_ID in json.dumps(e) or "parent" in json.dumps(e) for e in events)

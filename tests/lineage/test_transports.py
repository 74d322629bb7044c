"""Transports: a JSON-lines file, a real HTTP endpoint on 127.0.0.1, memory."""

from __future__ import annotations

import json
import logging
import socket
import threading
from pathlib import Path
from typing import Any

import pytest

from headrace.lineage import (
    FileTransport,
    HttpTransport,
    LineageStats,
    LineageTransport,
    MemoryTransport,
    OpenLineageEmitter,
)
from tests.lineage.conftest import Collector, SpecValidator
from tests.lineage.scenario import play_run

#: What a played run emits, for comparison (MemoryTransport keeps the JSON round trip).
EVENTS_PER_RUN = 10


def reference_events() -> list[dict[str, Any]]:
    memory = MemoryTransport()
    play_run(OpenLineageEmitter(memory))
    return memory.events


def test_file_transport_appends_one_json_line_per_event(
    tmp_path: Path, spec: SpecValidator
) -> None:
    path = tmp_path / "state" / "lineage" / "events.jsonl"  # folders are created
    emitter = OpenLineageEmitter(FileTransport(path))
    play_run(emitter)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == EVENTS_PER_RUN
    events = [json.loads(line) for line in lines]
    assert events == reference_events()
    for event in events:
        spec.validate(event)
    # a second run appends
    play_run(emitter)
    assert len(path.read_text(encoding="utf-8").splitlines()) == 2 * EVENTS_PER_RUN
    assert emitter.stats == LineageStats(sent=2 * EVENTS_PER_RUN)


def test_file_transport_never_interleaves_concurrent_writers(tmp_path: Path) -> None:
    """Large events (a 256 KiB stack trace) from several writers stay whole lines."""
    path = tmp_path / "events.jsonl"
    writers, per_writer = 4, 15

    def write(index: int) -> None:
        transport = FileTransport(path)  # each writer its own file descriptor and lock
        for count in range(per_writer):
            transport.send({"writer": index, "count": count, "stackTrace": "é" * 128 * 1024})

    threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b""
    events = [json.loads(line) for line in lines[:-1]]
    assert sorted((e["writer"], e["count"]) for e in events) == [
        (w, c) for w in range(writers) for c in range(per_writer)
    ]


def test_an_unwritable_file_is_logged_and_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    emitter = OpenLineageEmitter(FileTransport(blocker / "events.jsonl"))
    with caplog.at_level(logging.WARNING, logger="headrace.lineage"):
        play_run(emitter)
    assert emitter.stats.sent == 0
    assert emitter.stats.errors == EVENTS_PER_RUN
    assert "not-a-folder" in caplog.text


def test_http_transport_posts_each_event_to_the_lineage_endpoint(
    collector: Collector, spec: SpecValidator
) -> None:
    transport = HttpTransport(collector.url, api_key="s3cr3t", timeout=5)
    emitter = OpenLineageEmitter(transport)
    play_run(emitter)
    assert emitter.stats == LineageStats(sent=EVENTS_PER_RUN)
    assert [r.path for r in collector.requests] == ["/api/v1/lineage"] * EVENTS_PER_RUN
    for received in collector.requests:
        assert received.headers["content-type"] == "application/json"
        assert received.headers["authorization"] == "Bearer s3cr3t"
        spec.validate(received.body)
    assert collector.events == reference_events()


def test_http_transport_sends_through_the_openlineage_client(collector: Collector) -> None:
    from openlineage.client.transport.http import HttpTransport as ClientHttpTransport

    transport = HttpTransport(collector.url + "/")
    transport.send({"eventType": "START"})
    try:
        assert isinstance(transport._client, ClientHttpTransport)
    finally:
        transport.close()
    assert transport._client is None
    assert collector.events == [{"eventType": "START"}]
    assert "authorization" not in collector.requests[0].headers
    # closed transports connect again on the next event
    transport.send({"eventType": "COMPLETE"})
    transport.close()
    assert len(collector.events) == 2


def test_http_transport_keeps_the_urls_path(collector: Collector) -> None:
    transport = HttpTransport(collector.url + "/marquez/")
    assert transport.endpoint == collector.url + "/marquez/api/v1/lineage"
    transport.send({"eventType": "START"})
    transport.close()
    assert collector.requests[0].path == "/marquez/api/v1/lineage"


def test_an_http_error_status_is_a_failed_delivery(
    collector: Collector, caplog: pytest.LogCaptureFixture
) -> None:
    collector.status = 400
    emitter = OpenLineageEmitter(HttpTransport(collector.url))
    with caplog.at_level(logging.WARNING, logger="headrace.lineage"):
        play_run(emitter)
    assert emitter.stats.sent == 0
    assert emitter.stats.failed == 3  # then the circuit breaker stops trying for a while
    assert emitter.stats.errors == EVENTS_PER_RUN
    assert len(collector.requests) == 3
    assert "400 Client Error" in caplog.text


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_an_unreachable_endpoint_does_not_fail_the_run(caplog: pytest.LogCaptureFixture) -> None:
    emitter = OpenLineageEmitter(HttpTransport(f"http://127.0.0.1:{closed_port()}", timeout=1))
    with caplog.at_level(logging.WARNING, logger="headrace.lineage"):
        play_run(emitter)  # raises nothing
    assert emitter.stats == LineageStats(sent=0, failed=3, dropped=EVENTS_PER_RUN - 3)
    assert "Connection refused" in caplog.text or "ConnectionError" in caplog.text
    assert "were not delivered" in caplog.text


@pytest.mark.parametrize("kind", ["memory", "file", "http"])
def test_every_transport_delivers_the_same_events(
    kind: str, tmp_path: Path, collector: Collector
) -> None:
    """One suite for every transport: what the run emits is what arrives."""
    transport: LineageTransport
    if kind == "memory":
        transport = MemoryTransport()
    elif kind == "file":
        transport = FileTransport(tmp_path / "events.jsonl")
    else:
        transport = HttpTransport(collector.url)
    emitter = OpenLineageEmitter(transport)
    play_run(emitter)
    if isinstance(transport, MemoryTransport):
        received = transport.events
    elif isinstance(transport, FileTransport):
        received = [json.loads(line) for line in transport.path.read_text().splitlines()]
    else:
        received = collector.events
    assert received == reference_events()
    assert emitter.stats == LineageStats(sent=EVENTS_PER_RUN)

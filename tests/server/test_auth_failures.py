"""Failed authentication is audited in aggregate and throttled: thousands of bad
requests write a bounded number of audit entries (the store on SQLite and PostgreSQL;
a real server over loopback)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

import headrace as hr
from headrace.runtime.workspace import Workspace
from headrace.server.app import create_server_app
from headrace.server.auth_failures import FailedAuthLedger
from headrace.server.context import Gate
from headrace.store.engine import MetadataStore
from tests.projects import write_project
from tests.serving.test_server import free_port


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def _failures(governance: Any) -> list[Any]:
    return [e for e in governance.audit(limit=100_000) if e.action == "auth.failed"]


def test_a_flood_of_failures_writes_a_bounded_number_of_entries(store: MetadataStore) -> None:
    clock = Clock()
    ledger = FailedAuthLedger(store.governance.record, window=60, max_kinds=20, clock=clock)
    sources = [f"10.0.0.{i}" for i in range(3)]
    for index in range(6000):
        clock.now += 0.001
        ledger.failed(sources[index % 3], "unknown", "abcd")
    first = _failures(store.governance)
    assert [(e.target, e.details["count"]) for e in first] == [(s, 1) for s in sources]
    clock.now += 60  # the window ends: one entry a kind holds the rest of its count
    ledger.flush_due()
    entries = _failures(store.governance)
    assert len(entries) == 6 and sum(e.details["count"] for e in entries) == 6000
    last = entries[-1]
    assert last.actor == "anonymous" and last.outcome == "denied"
    assert last.details["reason"] == "unknown" and last.details["token"] == "abcd"
    assert last.details["first"] < last.details["last"]
    assert store.governance.verify()[1] is None


def test_many_sources_share_one_overflow_count(store: MetadataStore) -> None:
    clock = Clock()
    ledger = FailedAuthLedger(store.governance.record, max_kinds=10, clock=clock)
    for index in range(3000):  # 3,000 addresses, each failing once
        ledger.failed(f"10.1.{index // 250}.{index % 250}", "missing")
    ledger.flush()
    entries = _failures(store.governance)
    assert len(entries) == 11  # the first ten kinds, and one overflow entry
    overflow = entries[-1]
    assert overflow.target == "*" and overflow.details == {
        "reason": "overflow",
        "count": 2990,
        "first": overflow.details["first"],
        "last": overflow.details["last"],
    }


def test_a_source_past_the_limit_is_throttled_until_the_window_ends() -> None:
    clock = Clock()
    written: list[tuple[Any, ...]] = []
    ledger = FailedAuthLedger(lambda *a: written.append(a), window=60, limit=5, clock=clock)
    for _ in range(4):
        ledger.failed("10.0.0.1", "unknown")
    assert ledger.throttled("10.0.0.1") is None
    ledger.failed("10.0.0.1", "unknown")
    clock.now += 20
    assert ledger.throttled("10.0.0.1") == pytest.approx(40)
    assert ledger.throttled("10.0.0.2") is None  # another source is not
    clock.now += 40
    assert ledger.throttled("10.0.0.1") is None
    assert [a[4]["count"] for a in written] == [1, 4]


@contextlib.contextmanager
def _server(ws: Workspace) -> Iterator[tuple[str, Gate]]:
    app = create_server_app(ws)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not server.started and time.time() < deadline:
        time.sleep(0.02)
    assert server.started
    try:
        yield f"http://127.0.0.1:{port}/api/v1", app.state.gate
    finally:
        server.should_exit = True
        thread.join(timeout=20)


def test_thousands_of_bad_requests_write_a_handful_of_rows(tmp_path: Path) -> None:
    write_project(tmp_path, "")
    ws = hr.open_workspace(tmp_path)
    try:
        governance = ws.store.governance
        governance.create_first_admin("root")
        token = governance.issue_token("root")
        before = len(governance.audit(limit=100_000))
        with _server(ws) as (api, gate):
            clock = Clock()
            gate.failures._clock = clock
            gate.failures.flush()
            with httpx.Client(base_url=api, timeout=30) as client:
                me = client.get("/whoami", headers={"authorization": f"Bearer {token}"})
                assert me.status_code == 200
                answers: dict[int, int] = {}
                for index in range(2000):
                    headers = {"authorization": f"Bearer hr_{index:016x}_guess"}
                    if index % 4 == 0:
                        headers = {}
                    got = client.get("/whoami", headers=headers)
                    answers[got.status_code] = answers.get(got.status_code, 0) + 1
                    if got.status_code == 429:
                        throttled = got
                # a few failures, then the source is throttled (the store is not read)
                assert answers == {401: 50, 429: 1950}, answers
                assert throttled.json()["error_code"] == "TOO_MANY_FAILED_AUTHENTICATIONS"
                assert (
                    "127.0.0.1 failed to authenticate 50 times within 60 s"
                    in (throttled.json()["message"])
                )
                assert int(throttled.headers["retry-after"]) == 60
                # a token this process knows still works while its address is throttled
                again = client.get("/whoami", headers={"authorization": f"Bearer {token}"})
                assert again.status_code == 200
                clock.now += 61  # the window ends: counts are written at the next request
                client.get("/health")
                fresh = client.get("/whoami", headers={"authorization": f"Bearer {token}"})
                assert fresh.status_code == 200
                for _ in range(10):  # a new window: counted, written when the server stops
                    assert client.get("/whoami").status_code == 401
        failed = _failures(governance)
        assert len(governance.audit(limit=100_000)) - before == len(failed)
        # every guessed token is a kind of its own, so they overflow into one count
        assert len(failed) <= 2 * gate.failures.max_kinds + 1
        assert sum(e.details["count"] for e in failed) == 2010
        reasons = {e.details["reason"] for e in failed}
        assert {"missing", "unknown", "throttled"} <= reasons
        assert governance.verify()[1] is None
    finally:
        ws.close()

"""The daemon end to end on a real project: file sensors (each file once, across
restarts), schedules (catch-up policies, the partition a tick targets), asset and
alert sensors, freshness breaches, failure notifications that are retried until
delivered, and a run whose worker was killed with SIGKILL resumed by another."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from headrace.monitoring.alerts import verify_signature
from headrace.runtime.workspace import open_workspace
from headrace.scheduling.daemon import run_once
from headrace.scheduling.definitions import load_automation
from headrace.scheduling.evaluate import enqueue_pipeline
from headrace.scheduling.notify import deliver_due
from tests.integration.conftest import HEADRACE
from tests.projects import open_project, write_project

pytestmark = pytest.mark.integration

LANDING = """
from pathlib import Path

import pandas as pd
from headrace import automation as auto

HERE = Path(__file__).parent


@hr.asset(partitions=hr.monthly("2013-01", "2013-12"))
def landed(partition: str) -> pd.DataFrame:
    text = (HERE / "landing" / f"flights_{partition}.csv").read_text()
    return pd.DataFrame({"month": [partition], "text": [text]})


@hr.asset
def months(landed: pd.DataFrame) -> int:
    return len(landed)


auto.pipeline("ingest", "landed", tags=["warehouse"])
auto.pipeline("count", "months")
auto.file_sensor(
    "landing", "ingest", path="landing", pattern="flights_*.csv",
    partition_from=r"flights_(\\d{4}-\\d{2})",
)
auto.asset_sensor("on_landed", "count", asset="landed")
"""


def _statuses(ws: Any) -> list[tuple[str, str, list[str] | None]]:
    rows = ws.store.queue.list(limit=1000)
    return sorted((r.pipeline, r.status, r.partitions) for r in rows)


def test_file_sensor_handles_each_file_once_across_restarts(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    (root / "landing").mkdir(parents=True)
    (root / "landing" / "flights_2013-01.csv").write_text("a,b\n1,2\n")
    (root / "landing" / "flights_2013-02.csv").write_text("a,b\n3,4\n")
    ws = open_project(root, LANDING)

    report = run_once(ws)
    assert [status for _, _, status in report.ran] == ["success"] * 3
    assert _statuses(ws) == [
        ("count", "success", None),  # the asset sensor saw landed's new versions
        ("ingest", "success", ["2013-01"]),
        ("ingest", "success", ["2013-02"]),
    ]
    heads = ws.store.versions.heads("main", ["landed"])
    assert sorted(p for _, p in heads) == ["2013-01", "2013-02"]
    runs = {r.id: r for r in ws.store.runs.list(limit=100)}
    assert {r.trigger for r in runs.values()} == {"sensor:landing", "sensor:on_landed"}

    assert run_once(ws).ran == []  # nothing new: nothing runs
    # a restart is a new process: the files it handled are in the store, not in memory
    again = subprocess.run(
        [*HEADRACE, "daemon", "--once"], cwd=root, capture_output=True, text=True, timeout=120
    )
    assert again.returncode == 0, again.stderr
    assert "queued 0, ran 0" in again.stdout

    (root / "landing" / "flights_2013-01.csv").write_text("a,b\n1,2\n5,6\n")  # changed
    (root / "landing" / "flights_2013-03.csv").write_text("a,b\n7,8\n")  # new
    (root / "landing" / "flights_march.csv").write_text("x\n")  # no partition in its name
    report = run_once(ws)
    assert sorted(p for _, p, _ in report.ran) == ["count", "ingest", "ingest"]
    assert any(
        "flights_march.csv does not match partition_from" in s for s in report.evaluation.skipped
    )
    ingested = [r for r in ws.store.queue.list(limit=1000) if r.pipeline == "ingest"]
    assert sorted(r.partitions[0] for r in ingested if r.partitions) == [
        "2013-01",
        "2013-01",
        "2013-02",
        "2013-03",
    ]
    assert run_once(ws).ran == []


SCHEDULES = """
import pandas as pd
from headrace import automation as auto


@hr.asset
def tick() -> int:
    return 1


@hr.asset(partitions=hr.daily("2026-01-01", "2026-12-31"))
def events(partition: str) -> pd.DataFrame:
    return pd.DataFrame({"day": [partition]})


auto.pipeline("tick", "tick")
auto.pipeline("daily", "events")
auto.schedule("all", "tick", every="1h", catch_up="all")
auto.schedule("latest", "tick", every="1h", catch_up="latest")
auto.schedule("none", "tick", every="1h", catch_up="none")
auto.schedule("paris", "daily", cron="0 2 * * *", timezone="Europe/Paris", catch_up="all")
"""


def _utc(text: str) -> float:
    import datetime as dt

    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC).timestamp()


def test_schedules_catch_up_as_declared_and_target_the_tick_partition(tmp_path: Path) -> None:
    ws = open_project(tmp_path / "ws", SCHEDULES)
    first = run_once(ws, now=_utc("2026-01-05T00:30:00"), run=False)
    assert first.evaluation.enqueued == []  # schedules start ticking when first seen
    later = run_once(ws, now=_utc("2026-01-07T03:40:00"), run=False)
    by_trigger: dict[str, list[Any]] = {}
    for row in ws.store.queue.list(limit=1000):
        by_trigger.setdefault(row.trigger, []).append(row)
    ticks_missed = 2 * 24 + 3  # 01:00 on the 5th to 03:00 on the 7th
    assert len(by_trigger["schedule:all"]) == ticks_missed
    assert len(by_trigger["schedule:latest"]) == 1
    assert by_trigger["schedule:latest"][0].details["tick_iso"] == "2026-01-07T03:00:00Z"
    assert "schedule:none" not in by_trigger  # 40 minutes late is missed, not run
    assert any("none: 51 missed ticks not run" in s for s in later.evaluation.skipped)
    # 02:00 in Paris is 01:00 UTC in winter; each tick runs the day before it
    paris = sorted(r.partitions[0] for r in by_trigger["schedule:paris"])
    assert paris == ["2026-01-04", "2026-01-05", "2026-01-06"]
    # on time: a tick at most a minute old runs under catch_up="none" too
    run_once(ws, now=_utc("2026-01-07T04:00:30"), run=False)
    assert sum(r.trigger == "schedule:none" for r in ws.store.queue.list(limit=1000)) == 1
    # a second evaluation of the same moment (another daemon) queues nothing more
    count = len(ws.store.queue.list(limit=1000))
    ws.store.automation.advance("schedule", "all", _utc("2026-01-07T03:40:00"))
    run_once(ws, now=_utc("2026-01-07T04:00:30"), run=False)
    assert len(ws.store.queue.list(limit=1000)) == count

    ran = run_once(ws, now=_utc("2026-01-07T04:00:30"))
    assert len(ran.ran) == count and {s for _, _, s in ran.ran} == {"success"}
    days = sorted(p for (_, p) in ws.store.versions.heads("main", ["events"]))
    assert days == ["2026-01-04", "2026-01-05", "2026-01-06"]

    # switched off, a schedule queues nothing; on again, it catches up by its policy
    ws.store.automation.set_enabled("schedule", "latest", False)
    quiet = run_once(ws, now=_utc("2026-01-07T09:00:30"), run=False)
    assert not [r for r in ws.store.queue.list(status="queued") if r.trigger == "schedule:latest"]
    assert quiet.evaluation.enqueued
    ws.store.automation.set_enabled("schedule", "latest", True)
    run_once(ws, now=_utc("2026-01-07T10:00:30"), run=False)
    assert [
        r.details["tick_iso"]
        for r in ws.store.queue.list(status="queued")
        if r.trigger == "schedule:latest"
    ] == ["2026-01-07T10:00:00Z"]


class _Hooks:
    """A webhook receiver on a fixed port that can be down."""

    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/hooks"
        self.bodies: list[tuple[dict[str, str], bytes]] = []
        self.server: ThreadingHTTPServer | None = None

    def start(self) -> None:
        hooks = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                hooks.bodies.append((dict(self.headers), body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


FAILING = """
import pandas as pd
from headrace import automation as auto
from headrace import checks as c
from headrace import monitors as m


@hr.asset(retry=1)
def flaky() -> int:
    raise RuntimeError("the warehouse is down")


@hr.asset(checks=[c.between("n", 0, 9)])
def scores(*, n: int = 3) -> pd.DataFrame:
    return pd.DataFrame({"n": [n]})


@hr.asset
def stamp() -> int:
    return 1


auto.pipeline("broken", "flaky", notify=m.webhook("HOOKURL", secret_env="HOOK_SECRET"))
auto.pipeline("bad_data", "scores", params={"n": 12})
auto.pipeline("refresh", "stamp")
auto.freshness("stamp", "1h", pipeline="refresh")
auto.defaults(notify=auto.notify(m.webhook("HOOKURL"), events=["check_failed", "freshness"]))
"""


def test_failures_and_freshness_are_notified_and_retried_until_delivered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hooks = _Hooks()
    monkeypatch.setenv("HOOK_SECRET", "s3cret")
    ws = open_project(tmp_path / "ws", FAILING.replace("HOOKURL", hooks.url))
    try:
        automation = load_automation(ws)
        enqueue_pipeline(ws, automation, "broken")
        enqueue_pipeline(ws, automation, "bad_data")
        report = run_once(ws)  # the receiver is down: nothing is lost, all is retried
        statuses = {p: s for _, p, s in report.ran}
        assert statuses == {"broken": "failed", "bad_data": "failed", "refresh": "success"}
        assert report.sent == 0 and report.failing == 4
        stored = {n.event: n for n in ws.store.notifications.list()}
        assert set(stored) == {"run_failed", "retries_exhausted", "check_failed", "freshness"}
        failed = stored["run_failed"]
        assert failed.status == "pending" and failed.attempts == 1
        assert failed.next_attempt_at > time.time() + 20
        assert "refused" in failed.outcomes[0]["detail"].lower() or not failed.outcomes[0]["ok"]
        payload = failed.payload
        assert payload["step"] == "flaky" and "the warehouse is down" in payload["error"]
        assert payload["inspect"] == f"headrace runs show {payload['run_id']}"
        assert stored["retries_exhausted"].payload["attempts"] == {"flaky": 2}
        assert stored["check_failed"].payload["asset"] == "scores"
        assert "has no version on main" in stored["freshness"].subject

        hooks.start()
        assert deliver_due(ws) == (0, 0)  # not due yet
        sent, failing = deliver_due(ws, now=time.time() + 60)
        assert (sent, failing) == (4, 0)
        assert {n.status for n in ws.store.notifications.list()} == {"sent"}
        events = sorted(h["X-Headrace-Event"] for h, _ in hooks.bodies)
        assert events == ["check_failed", "freshness", "retries_exhausted", "run_failed"]
        signed = [(h, b) for h, b in hooks.bodies if json.loads(b)["event"] == "run_failed"]
        headers, body = signed[0]
        assert verify_signature(
            "s3cret",
            headers["X-Headrace-Timestamp"],
            body,
            headers["X-Headrace-Signature"],
        )
        assert json.loads(body)["pipeline"] == "broken"

        # fresh now; stale again two hours on: notified once more, and refreshed
        assert run_once(ws).evaluation.breaches == []
        stale = run_once(ws, now=time.time() + 7200)
        assert (
            len(stale.evaluation.breaches) == 1 and "is 2.0 h old" in stale.evaluation.breaches[0]
        )
        assert [p for _, p, _ in stale.ran] == ["refresh"]
        assert len([n for n in ws.store.notifications.list() if n.event == "freshness"]) == 2
    finally:
        hooks.stop()


def test_a_notification_that_cannot_be_sent_ends_failed_with_every_attempt_kept(
    tmp_path: Path,
) -> None:
    ws = open_project(tmp_path / "ws", FAILING.replace("HOOKURL", "http://127.0.0.1:9/down"))
    enqueue_pipeline(ws, load_automation(ws), "broken")
    run_once(ws)
    later = time.time()
    for _ in range(8):
        later += 4 * 3600
        deliver_due(ws, now=later)
    final = {n.event: n for n in ws.store.notifications.list()}["run_failed"]
    assert final.status == "failed" and final.attempts == 7
    assert len(final.outcomes) == 7 and not any(o["ok"] for o in final.outcomes)
    listed = subprocess.run(
        [*HEADRACE, "notifications"],
        cwd=tmp_path / "ws",
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert listed.returncode == 0 and "failed" in listed.stdout and "run_failed" in listed.stdout


SLOW = """
import time
from pathlib import Path

from headrace import automation as auto

HERE = Path(__file__).parent


@hr.asset
def first() -> int:
    with open(HERE / "first.log", "a") as log:
        log.write("ran\\n")
    return 1


@hr.asset
def slow(first: int) -> int:
    while not (HERE / "go").exists():
        time.sleep(0.1)
    return first + 1


auto.pipeline("slow", "first+", max_attempts=3)
"""


def test_a_run_whose_worker_is_killed_is_resumed_by_another(tmp_path: Path) -> None:
    root, _ = write_project(tmp_path / "ws", SLOW)
    ws = open_workspace(root)
    try:
        item = ws.store.queue.enqueue(pipeline="slow", selection="first+", max_attempts=3)
        assert item is not None
        worker = subprocess.Popen(
            [*HEADRACE, "worker", "--lease", "2", "--poll", "0.05"],
            cwd=root,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        run_id = None
        while time.monotonic() < deadline:
            row = ws.store.queue.get(item)
            if row.run_id is not None:
                steps = {s.key: s.status for s in ws.store.runs.steps(row.run_id)}
                if steps.get("first") == "success" and steps.get("slow") == "running":
                    run_id = row.run_id
                    break
            time.sleep(0.05)
        assert run_id is not None, "the worker never got to the slow step"
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
        held = ws.store.queue.get(item)
        assert held.status == "running" and held.worker is not None

        time.sleep(2.5)  # the lease runs out
        (root / "go").touch()
        report = run_once(ws)
        assert any("stopped" not in line and "queued again" in line for line in report.lost)
        assert report.ran == [(item, "slow", "success")]
        done = ws.store.queue.get(item)
        assert done.status == "success" and done.attempts == 2 and done.run_id == run_id
        assert ws.store.runs.get(run_id).status == "success"
        assert (root / "first.log").read_text() == "ran\n"  # completed steps are kept
        assert ws.store.versions.heads("main", ["slow"])
    finally:
        ws.close()


ALERTS = """
from headrace import automation as auto
from headrace import monitors as m


@hr.asset
def model_input() -> int:
    return 1


@hr.asset
def retrained(model_input: int) -> int:
    return model_input + 1


m.monitor("delay_drift", model="delay")
auto.pipeline("retrain", "+retrained")
auto.alert_sensor("on_drift", "retrain", monitor="delay_drift")
"""


def test_an_alert_starts_the_pipeline_its_sensor_names(tmp_path: Path) -> None:
    """(In processes of their own: monitors are declared process-wide.)"""
    from headrace.store.monitoring import AlertRecord

    root, _ = write_project(tmp_path / "ws", ALERTS)

    def once() -> str:
        done = subprocess.run(
            [*HEADRACE, "daemon", "--once"], cwd=root, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    assert "queued 0, ran 0" in once()  # the sensor starts from now
    with open_workspace(root) as ws:
        for i, suppressed in enumerate((False, True)):
            ws.store.monitoring.add_alert(
                AlertRecord(
                    id=f"a{i}",
                    monitor="delay_drift",
                    key="drift",
                    window_id="w",
                    message="drifted",
                    payload={},
                    created_at=time.time(),
                    suppressed=suppressed,
                    outcomes=[],
                )
            )
    assert "queued 1, ran 1" in once()
    assert "queued 0, ran 0" in once()
    with open_workspace(root) as ws:
        (row,) = ws.store.queue.list()
        assert row.trigger == "sensor:on_drift" and row.details["alert"] == "a0"
        assert ws.store.versions.heads("main", ["retrained"])


STALE = """
from headrace import automation as auto


@hr.asset
def stamp() -> int:
    return 1


auto.pipeline("refresh", "stamp")
auto.freshness("stamp", "1h")
auto.alert_sensor("stale_stamp", "refresh", monitor="freshness:stamp")
"""


def test_a_freshness_breach_is_an_alert_that_an_alert_sensor_acts_on(tmp_path: Path) -> None:
    ws = open_project(tmp_path / "ws", STALE)
    t0 = time.time()
    first = run_once(ws, now=t0)  # breached (no version yet); the sensor starts looking
    assert first.ran == [] and len(first.evaluation.breaches) == 1
    [alert] = ws.store.monitoring.alerts("freshness:stamp")
    assert alert.key == "freshness" and alert.window_id == "none"
    assert "stamp has no version on main" in alert.message
    assert alert.payload["max_age_seconds"] == 3600 and not alert.suppressed

    second = run_once(ws, now=t0 + 1)  # the same breach: no second alert; the sensor acts
    assert [p for _, p, s in second.ran] == ["refresh"]
    assert len(ws.store.monitoring.alerts("freshness:stamp")) == 1
    (row,) = ws.store.queue.list()
    assert row.trigger == "sensor:stale_stamp" and row.details["alert"] == alert.id
    assert run_once(ws, now=t0 + 2).evaluation.breaches == []  # fresh now

    later = run_once(ws, now=t0 + 7300)  # stale again: a new alert, for that version
    assert len(later.evaluation.breaches) == 1
    newest, _ = ws.store.monitoring.alerts("freshness:stamp")
    assert newest.window_id == ws.store.versions.head("stamp").id
    assert run_once(ws, now=t0 + 7301).ran != []  # and the sensor refreshes it again

    listed = subprocess.run(
        [*HEADRACE, "alerts"], cwd=tmp_path / "ws", capture_output=True, text=True, timeout=120
    )
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.count("freshness:stamp freshness") == 2
    assert "stamp has no version on main" in listed.stdout
    none = subprocess.run(
        [*HEADRACE, "alerts", "--monitor", "freshness:other"],
        cwd=tmp_path / "ws",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert none.returncode == 0 and "no alerts of freshness:other" in none.stdout


def test_an_alert_sensor_on_an_undeclared_freshness_policy_is_refused(tmp_path: Path) -> None:
    from headrace.core.automation import AutomationDefinitionError

    ws = open_project(
        tmp_path / "ws", STALE.replace('monitor="freshness:stamp"', 'monitor="freshness:stmp"')
    )
    with pytest.raises(AutomationDefinitionError) as raised:
        load_automation(ws)
    assert "monitor 'freshness:stmp' is not declared" in str(raised.value)
    assert "freshness:stamp" in str(raised.value)


def test_definitions_fail_when_they_load_not_at_3_am(tmp_path: Path) -> None:
    cases = {
        'auto.file_sensor("in", "p", path="nowhere")': "sensor 'in': path 'nowhere'",
        'auto.schedule("s", "p", cron="61 * * * *")': "'61 * * * *' is not a valid cron",
        'auto.schedule("s", "p", cron="0 6 * * *", timezone="Europe/Pariss")': "unknown time zone",
        'auto.alert_sensor("a", "p", monitor="ghost")': "monitor 'ghost' is not declared",
        'auto.pipeline("q", "nothing_here")': "pipeline 'q': selection 'nothing_here'",
    }
    for i, (line, message) in enumerate(cases.items()):
        source = (
            "from headrace import automation as auto\n\n@hr.asset\ndef a() -> int:\n"
            f"    return 1\n\nauto.pipeline('p', 'a')\n{line}\n"
        )
        root, _ = write_project(tmp_path / f"ws{i}", source)
        for command in (["schedules", "list"], ["daemon", "--once"]):
            done = subprocess.run(
                [*HEADRACE, *command], cwd=root, capture_output=True, text=True, timeout=120
            )
            assert done.returncode == 1, (line, done.stdout, done.stderr)
            assert message in done.stderr, (line, done.stderr)
            assert "Traceback" not in done.stderr

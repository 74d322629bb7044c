"""A worker and the run ids it hands out: a claimed run gets its pipeline run's id in
the claim itself; a run that fails before its pipeline run exists forgets that id; a
run whose worker died keeps it, whether the dead worker had made the run, finished
it, or never got that far."""

from __future__ import annotations

import time
from pathlib import Path

from headrace.orchestration.service import materialize
from headrace.scheduling.definitions import load_automation
from headrace.scheduling.worker import Worker
from tests.projects import open_project

PROJECT = """
from headrace import automation as auto
from headrace import monitors as m


@hr.asset
def a() -> int:
    return 1


@hr.asset
def b(a: int) -> int:
    return a + 1


auto.pipeline("both", "a+")
auto.defaults(notify=m.log())
"""


def test_a_claim_gives_the_run_its_id_and_a_run_never_made_forgets_it(tmp_path: Path) -> None:
    ws = open_project(tmp_path, PROJECT)
    worker = Worker(ws, load_automation(ws))
    good = ws.store.queue.enqueue(pipeline="both", selection="a+")
    bad = ws.store.queue.enqueue(pipeline="both", selection="nothing_like_this")
    assert good is not None and bad is not None
    assert worker.run_one() is not None and worker.run_one() is not None
    done = ws.store.queue.get(good)
    assert done.status == "success" and done.run_id is not None
    run = ws.store.runs.get(done.run_id)
    assert run.status == "success" and run.selection == "a+"
    failed = ws.store.queue.get(bad)
    assert failed.status == "failed" and failed.run_id is None
    assert "nothing_like_this" in (failed.error or "")
    [note] = ws.store.notifications.list()
    assert note.event == "run_failed" and note.payload["run_id"] is None
    assert "headrace queue show" in note.payload["inspect"]
    assert len(ws.store.runs.list()) == 1


def test_a_run_lost_before_its_worker_made_it_is_made_under_the_same_id(
    tmp_path: Path,
) -> None:
    ws = open_project(tmp_path, PROJECT)
    automation = load_automation(ws)
    item_id = ws.store.queue.enqueue(pipeline="both", selection="a+")
    dead = Worker(ws, automation, name="dead", lease=1)
    claimed = dead.claim()
    assert claimed is not None and claimed.run_id is not None
    assert not ws.store.runs.exists(claimed.run_id)  # it died here
    assert [x.requeued for x in ws.store.queue.reap(now=time.time() + 5)] == [True]
    assert Worker(ws, automation, name="next").run_one() is not None
    done = ws.store.queue.get(item_id or "")
    assert done.status == "success" and done.attempts == 2
    assert done.run_id == claimed.run_id
    assert ws.store.runs.get(claimed.run_id).status == "success"


def test_a_run_that_ended_before_its_worker_died_is_not_run_again(tmp_path: Path) -> None:
    ws = open_project(tmp_path, PROJECT)
    automation = load_automation(ws)
    item_id = ws.store.queue.enqueue(pipeline="both", selection="a+")
    dead = Worker(ws, automation, name="dead", lease=1)
    claimed = dead.claim()
    assert claimed is not None
    # the dead worker made and ended the run, then died before ending the queued run
    assert materialize(ws, "a+", run_id=claimed.run_id).success
    heads = ws.store.versions.heads("main")
    assert [x.requeued for x in ws.store.queue.reap(now=time.time() + 5)] == [True]
    assert Worker(ws, automation, name="next").run_one() is not None
    done = ws.store.queue.get(item_id or "")
    assert done.status == "success" and done.run_id == claimed.run_id
    assert [r.id for r in ws.store.runs.list()] == [claimed.run_id]
    assert ws.store.versions.heads("main") == heads


RACE = """
import time
from pathlib import Path

from headrace import automation as auto
from headrace import monitors as m

HERE = Path(__file__).parent


@hr.asset
def table(context) -> int:
    (HERE / f"started-{context.run_id}").touch()
    while not (HERE / "go").exists():
        time.sleep(0.02)
    return 1


auto.pipeline("load", "table")
auto.defaults(notify=m.log())
"""


def test_a_run_that_lost_a_branch_race_goes_again_and_succeeds(tmp_path: Path) -> None:
    """Two runs of one pipeline write the same head at once: the one whose version
    lost the compare-and-swap is queued again at once and resumed, building on the
    winner's version, instead of failing."""
    import threading

    ws = open_project(tmp_path, RACE)
    automation = load_automation(ws)
    first = ws.store.queue.enqueue(pipeline="load", selection="table")
    second = ws.store.queue.enqueue(pipeline="load", selection="table")
    workers = [Worker(ws, automation, name=f"w{i}") for i in range(2)]
    threads = [threading.Thread(target=w.run_one) for w in workers]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 60
    while len(list(tmp_path.glob("started-*"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(list(tmp_path.glob("started-*"))) == 2, "both runs should be computing"
    (tmp_path / "go").touch()
    for thread in threads:
        thread.join(timeout=60)
    rows = {i: ws.store.queue.get(i or "") for i in (first, second)}
    requeued = [r for r in rows.values() if r.status == "queued"]
    assert len(requeued) == 1, [(r.status, r.error) for r in rows.values()]
    assert "branch conflict" in (requeued[0].waiting or "")
    assert Worker(ws, automation, name="w3").run_one() is not None
    done = {i: ws.store.queue.get(i or "") for i in (first, second)}
    assert {r.status for r in done.values()} == {"success"}
    assert sorted(r.attempts for r in done.values()) == [1, 2]
    for row in done.values():
        assert ws.store.runs.get(row.run_id or "").status == "success"
    assert ws.store.notifications.list() == []  # nothing failed, nothing notified

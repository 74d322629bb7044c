"""The durable run queue on SQLite and PostgreSQL: idempotent enqueueing, claims in
priority order, leases, limits with the reason runs wait, and several worker processes
taking every run exactly once."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from headrace.store import MetadataStore
from headrace.store.automation import QueueLimits

from .workers import claim_all


def test_enqueue_is_idempotent_by_dedupe_key(store: MetadataStore) -> None:
    first = store.queue.enqueue(pipeline="p", selection="a", dedupe_key="schedule:p:1")
    again = store.queue.enqueue(pipeline="p", selection="a", dedupe_key="schedule:p:1")
    other = store.queue.enqueue(pipeline="p", selection="a", dedupe_key="schedule:p:2")
    assert first is not None and again is None and other is not None
    free = [store.queue.enqueue(pipeline="p") for _ in range(2)]  # no key: always added
    assert all(free) and store.queue.counts() == {"queued": 4}
    item = store.queue.get(first[:10])
    assert item.status == "queued" and item.dedupe_key == "schedule:p:1"


def test_claims_follow_priority_then_age_and_hold_a_lease(store: MetadataStore) -> None:
    old = store.queue.enqueue(pipeline="old", at=time.time() - 10)
    new = store.queue.enqueue(pipeline="new")
    urgent = store.queue.enqueue(pipeline="urgent", priority=5)
    order = [store.queue.claim(f"w{i}") for i in range(4)]
    assert [o.id if o else None for o in order] == [urgent, old, new, None]
    held = order[0]
    assert held is not None and held.status == "running" and held.attempts == 1
    assert held.lease_until is not None and held.lease_until > time.time() + 20
    assert store.queue.heartbeat(held.id, "w0", lease=60)
    assert not store.queue.heartbeat(held.id, "someone-else")
    assert not store.queue.finish(held.id, "someone-else", "success")
    assert store.queue.finish(held.id, "w0", "failed", "boom")
    done = store.queue.get(held.id)
    assert done.status == "failed" and done.error == "boom" and done.ended_at is not None
    assert not store.queue.heartbeat(held.id, "w0")  # ended: nothing to hold


def test_lost_runs_are_requeued_then_failed_when_attempts_are_spent(
    store: MetadataStore,
) -> None:
    store.runs  # noqa: B018
    item_id = store.queue.enqueue(pipeline="p", max_attempts=2)
    assert item_id is not None
    first = store.queue.claim("w1", lease=5)
    assert first is not None
    assert store.queue.reap(now=time.time()) == []  # the lease still holds
    lost = store.queue.reap(now=time.time() + 10)
    assert [(x.item.id, x.requeued) for x in lost] == [(item_id, True)]
    again = store.queue.get(item_id)
    assert again.status == "queued" and again.worker is None
    assert again.waiting is not None and "w1 stopped heartbeating" in again.waiting
    assert "attempt 2 of 2" in again.waiting
    assert not store.queue.finish(item_id, "w1", "success")  # the dead worker lost it
    second = store.queue.claim("w2", lease=5)
    assert second is not None and second.attempts == 2
    lost = store.queue.reap(now=time.time() + 10)
    assert [x.requeued for x in lost] == [False]
    failed = store.queue.get(item_id)
    assert failed.status == "failed" and "all 2 attempts spent" in (failed.error or "")


def test_limits_hold_runs_back_and_say_why(store: MetadataStore) -> None:
    limits = QueueLimits(total=3, pipelines={"load": 1}, tags={"warehouse": 2})
    a = store.queue.enqueue(pipeline="load", tags=["warehouse"], at=time.time() - 5)
    b = store.queue.enqueue(pipeline="load", tags=["warehouse"], at=time.time() - 4)
    c = store.queue.enqueue(pipeline="report", tags=["warehouse"], at=time.time() - 3)
    d = store.queue.enqueue(pipeline="export", tags=["warehouse"], at=time.time() - 2)
    e = store.queue.enqueue(pipeline="other", at=time.time() - 1)
    f = store.queue.enqueue(pipeline="other")
    taken = []
    while (item := store.queue.claim("w", limits=limits)) is not None:
        taken.append(item.id)
    assert taken == [a, c, e]  # load at 1, warehouse at 2, then the total of 3
    why = {r.id: r.waiting for r in store.queue.list(status="queued")}
    assert why[b] == "pipeline load at its limit: 1 of 1 running"
    assert why[d] == "tag warehouse at its limit: 2 of 2 running"
    assert why[f] == "global limit: 3 of 3 runs running"
    assert store.queue.finish(a, "w", "success")
    nxt = store.queue.claim("w", limits=limits)
    assert nxt is not None and nxt.id == b and nxt.waiting is None
    queued = store.queue.list(status="queued")
    assert [r.id for r in queued] == [d, f]


@pytest.mark.parametrize("tag_limit", [None, 2], ids=["free", "tag-limit-2"])
def test_worker_processes_take_every_run_exactly_once(
    store: MetadataStore, run_processes: object, tag_limit: int | None, backend: str
) -> None:
    url = str(store.engine.url.render_as_string(hide_password=False))
    total = 200 if tag_limit is None else 60
    ids = {
        store.queue.enqueue(pipeline=f"p{i % 3}", tags=["warehouse"] if i % 2 else [])
        for i in range(total)
    }
    results = run_processes(  # type: ignore[operator]
        claim_all, [(url, f"w{i}", tag_limit) for i in range(4)], timeout=180
    )
    taken = Counter(i for _, mine, _ in results for i in mine)
    assert set(taken) == ids and set(taken.values()) == {1}
    assert store.queue.counts() == {"success": total}
    if tag_limit is not None:
        assert max(most for _, _, most in results) <= tag_limit

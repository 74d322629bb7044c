"""Functions the queue tests run in spawned processes."""

from __future__ import annotations

import time
from typing import Any

from headrace.store import open_store
from headrace.store.automation import QueueLimits


def claim_all(barrier: Any, results: Any, url: str, worker: str, tag_limit: int | None) -> None:
    """Claim and finish runs until the queue is empty; report what this worker took
    and, under a tag limit, the most runs of that tag it saw running at once."""
    store = open_store(url)
    limits = QueueLimits(tags={"warehouse": tag_limit}) if tag_limit else None
    taken: list[str] = []
    most = 0
    barrier.wait(timeout=60)
    try:
        idle_since = None
        while True:
            item = store.queue.claim(worker, lease=30, limits=limits)
            if item is None:
                if store.queue.counts().get("queued", 0) == 0:
                    break
                idle_since = idle_since or time.monotonic()
                if time.monotonic() - idle_since > 30:
                    raise RuntimeError("queued runs never became claimable")
                time.sleep(0.005)
                continue
            idle_since = None
            taken.append(item.id)
            if tag_limit:
                running = store.queue.list(status="running", limit=1000)
                most = max(most, sum(1 for r in running if "warehouse" in r.tags))
                time.sleep(0.002)
            assert store.queue.finish(item.id, worker, "success")
        results.put((worker, taken, most))
    finally:
        store.close()


def evaluate_at(barrier: Any, results: Any, root: str, url: str, now: float) -> None:
    """One daemon's evaluation (no running) of the workspace at ``root`` as of ``now``."""
    from headrace.runtime.workspace import open_workspace
    from headrace.scheduling.daemon import run_once

    with open_workspace(root, metadata_url=url) as ws:
        barrier.wait(timeout=60)
        report = run_once(ws, now=now, run=False)
        results.put(len(report.evaluation.enqueued))

"""Quarantine: versions kept off their branch because an error-severity check failed.

A person inspects them, then releases one (it becomes the branch's version, by
compare-and-swap like any head move) or discards it (it stays off, and gc may collect
its data once nothing else needs it).
"""

from __future__ import annotations

import time

from headrace.runtime.identity import actor
from headrace.runtime.workspace import Workspace
from headrace.store.branches import heads_of, move_heads
from headrace.store.quality import QuarantineRecord, decide_in


def release(ws: Workspace, version_id: str) -> QuarantineRecord:
    """Put a quarantined version on its branch after all, and record who decided."""
    record = ws.store.quality.get_quarantined(_full_id(ws, version_id))
    with ws.store.write() as c:
        key = (record.asset, record.partition or "")
        current = heads_of(c, record.branch, [record.asset]).get(key)
        move_heads(
            c,
            ws.store.dialect,
            record.branch,
            [(key, current, record.version_id, time.time())],
            kind="release",
            run_id=record.run_id,
            actor=actor(),
            message=f"released from quarantine: {record.reason}"[:2000],
        )
        decide_in(c, record.version_id, "released", actor=actor())
    return ws.store.quality.get_quarantined(record.version_id)


def discard(ws: Workspace, version_id: str) -> QuarantineRecord:
    """Keep a quarantined version off its branch for good."""
    record = ws.store.quality.get_quarantined(_full_id(ws, version_id))
    return ws.store.quality.decide(record.version_id, "discarded", actor=actor())


def _full_id(ws: Workspace, version_id: str) -> str:
    return ws.store.versions.get(version_id).id

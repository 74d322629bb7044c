"""Failure notifications: run failures, failed error checks, freshness breaches and
spent retries, sent through the channels of monitor alerts (signed webhook, SMTP
e-mail, log). Each is stored first, then delivered; a delivery that fails is retried
with backoff and every attempt's outcome is kept, so none is lost silently.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from headrace.core.automation import Automation, Pipeline
from headrace.core.monitors import Action

if TYPE_CHECKING:
    from headrace.runtime.workspace import Workspace

log = logging.getLogger("headrace.scheduling")

#: seconds before each retry of a notification that could not be delivered
RETRY_DELAYS: tuple[float, ...] = (30.0, 120.0, 600.0, 1800.0, 3600.0, 3 * 3600.0)


def channels_for(automation: Automation, event: str, pipeline: Pipeline | None) -> list[Action]:
    """The pipeline's channels for ``event``, else the project's defaults."""
    chosen = pipeline.notify if pipeline is not None and pipeline.notify else automation.notify
    if chosen is None or event not in chosen.events:
        return []
    return list(chosen.actions)


def notify(
    ws: Workspace,
    automation: Automation,
    event: str,
    subject: str,
    payload: Mapping[str, Any],
    *,
    pipeline: Pipeline | None = None,
    dedupe_key: str | None = None,
) -> str | None:
    """Store a notification for the channels configured for ``event`` (nothing when
    none is); it is sent by :func:`deliver_due`. Its id, or None."""
    actions = channels_for(automation, event, pipeline)
    if not actions:
        log.info("%s (no notification channel for %s)", subject, event)
        return None
    body = {"event": event, "title": subject, **payload}
    if pipeline is not None:
        body.setdefault("pipeline", pipeline.name)
    return ws.store.notifications.add(
        event,
        subject,
        body,
        [{"kind": a.kind, "options": dict(a.options)} for a in actions],
        dedupe_key=dedupe_key,
    )


def deliver_due(ws: Workspace, *, now: float | None = None) -> tuple[int, int]:
    """Send every notification that is due; (sent, still failing). A failed channel is
    retried after :data:`RETRY_DELAYS`; after the last, the notification is marked
    failed, with each attempt's outcome kept."""
    from headrace.monitoring.alerts import deliver

    sent = failing = 0
    for item in ws.store.notifications.due(now=now):
        alert = {"id": item.id, **item.payload}
        done = {o.get("channel") for o in item.outcomes if o.get("ok")}
        outcomes = []
        for index, channel in enumerate(item.channels):
            if index in done:  # delivered on an earlier attempt: not sent twice
                continue
            result = deliver(Action(channel["kind"], channel.get("options") or {}), alert)
            outcomes.append({"channel": index, **result.to_dict()})
        ok = all(o["ok"] for o in outcomes)
        retry_at = None
        if not ok and item.attempts < len(RETRY_DELAYS):
            retry_at = time.time() + RETRY_DELAYS[item.attempts]
        ws.store.notifications.record(item.id, sent=ok, outcomes=outcomes, retry_at=retry_at)
        if ok:
            sent += 1
        else:
            failing += 1
            log.warning(
                "notification %s (%s) not delivered: %s%s",
                item.id,
                item.subject,
                "; ".join(o["detail"] for o in outcomes if not o["ok"]),
                "" if retry_at is None else f"; retried in {retry_at - time.time():.0f} s",
            )
    return sent, failing

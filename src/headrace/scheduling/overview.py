"""What ``schedules list`` and ``sensors list`` show, and their on/off switches, as plain
rows: the CLI prints them from the workspace or from a team server, which answers
them as ``GET /schedules`` and ``GET /sensors``."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from headrace.core.automation import Automation, AutomationDefinitionError, Pipeline
from headrace.scheduling.evaluate import enabled

if TYPE_CHECKING:
    from headrace.runtime.workspace import Workspace

#: Seconds between the daemon's looks at freshness policies.
FRESHNESS_INTERVAL = 60.0


def schedules(
    ws: Workspace, automation: Automation, now: float | None = None
) -> list[dict[str, Any]]:
    """Every schedule: its pipeline, when it ticks, its catch-up policy, whether it is
    on, how far it has ticked and its next tick (None when off)."""
    at = time.time() if now is None else now
    states = ws.store.automation.states("schedule")
    rows = []
    for name, s in sorted(automation.schedules.items()):
        state = states.get(("schedule", name), {"enabled": None})
        on = enabled(ws, "schedule", s, state)
        cursor = state.get("cursor")
        rows.append(
            {
                "name": name,
                "pipeline": s.pipeline,
                "when": s.describe,
                "catch_up": s.catch_up,
                "enabled": on,
                "cursor": None if cursor is None else float(cursor),
                "next_tick": s.next_tick(max(at, float(cursor or 0))) if on else None,
            }
        )
    return rows


def sensors(ws: Workspace, automation: Automation) -> list[dict[str, Any]]:
    """Every sensor (and freshness policy): what it watches, its pipeline, how often it
    looks, whether it is on and when it last looked."""
    states = ws.store.automation.states("sensor")
    rows = []
    for name, s in sorted(automation.sensors.items()):
        state = states.get(("sensor", name), {"enabled": None})
        rows.append(
            {
                "name": name,
                "kind": s.kind,
                "watches": s.watches,
                "pipeline": s.pipeline,
                "interval": s.interval,
                "enabled": enabled(ws, "sensor", s, state),
                "evaluated_at": state.get("evaluated_at"),
            }
        )
    for asset, policy in sorted(automation.freshness.items()):
        rows.append(
            {
                "name": f"freshness:{asset}",
                "kind": "freshness",
                "watches": f"{asset} on {policy.branch} at most {policy.max_age / 3600:g} h old",
                "pipeline": policy.pipeline,
                "interval": FRESHNESS_INTERVAL,
                "enabled": True,
                "evaluated_at": None,
            }
        )
    return rows


def target(automation: Automation, kind: str, name: str) -> Pipeline | None:
    """The pipeline a schedule or sensor starts (what switching it touches); an error
    naming the close matches when there is no such schedule or sensor."""
    from headrace.core.graph import suggest

    known = automation.schedules if kind == "schedule" else automation.sensors
    if name not in known:
        raise AutomationDefinitionError(f"no {kind} named {name!r}" + suggest(name, known))
    return automation.pipelines.get(known[name].pipeline)


def switch(ws: Workspace, automation: Automation, kind: str, name: str, on: bool) -> None:
    """Switch a schedule or sensor on or off, for every daemon on this store."""
    target(automation, kind, name)
    ws.store.automation.set_enabled(kind, name, on)

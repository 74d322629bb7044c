"""The automation a workspace's project declares, checked against the project.

Monitors declared with a ``schedule`` become schedules too: pipeline ``monitor:NAME``
(one evaluation of the monitor) on schedule ``monitor:NAME``.
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import TYPE_CHECKING

from headrace.core.automation import (
    Automation,
    AutomationDefinitionError,
    Pipeline,
    Schedule,
    Sensor,
    declared_in,
)

if TYPE_CHECKING:
    from headrace.runtime.workspace import Workspace

_DURATION = re.compile(r"^\s*\d+(?:\.\d+)?\s*[smhdw]\s*$")


def load_automation(ws: Workspace, *, check_paths: bool = True) -> Automation:
    """Import the project and gather what it declares: pipelines, schedules, sensors,
    freshness policies, limits and notification defaults, plus monitor schedules.
    Every name is checked against the project, and (with ``check_paths``) every file
    sensor's folder must exist."""
    from headrace.monitoring.runner import declared
    from headrace.workspace.project import ProjectMissingError

    module = ws.settings.project_module
    assets: list[str] = []
    with contextlib.suppress(ProjectMissingError):
        assets = list(ws.graph.specs)
    automation = declared_in(module) if module else Automation()
    monitors = declared(ws)
    for name, monitor in sorted(monitors.items()):
        if monitor.schedule is None:
            continue
        key = f"monitor:{name}"
        automation.pipelines.setdefault(key, Pipeline(name=key, select=None, monitor=name))
        every = cron = None
        if _DURATION.match(monitor.schedule) or _is_number(monitor.schedule):
            from headrace.core.monitors import seconds

            every = seconds(
                float(monitor.schedule) if _is_number(monitor.schedule) else monitor.schedule,
                f"monitor {name!r}: schedule",
            )
        else:
            cron = monitor.schedule
        automation.schedules.setdefault(
            key, Schedule(name=key, pipeline=key, cron=cron, every=every, catch_up="latest")
        )
    automation.check(assets, list(monitors))
    if assets:
        from headrace.core.selection import select

        for pipeline in automation.pipelines.values():
            if pipeline.monitor is not None:
                continue
            try:
                select(ws.graph, pipeline.select, exclude=pipeline.exclude)
            except Exception as exc:
                raise AutomationDefinitionError(
                    f"pipeline {pipeline.name!r}: selection {pipeline.select!r}: {exc}"
                ) from None
    if check_paths:
        for sensor in automation.sensors.values():
            if sensor.kind == "files":
                check_sensor_path(ws, sensor)
    return automation


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def sensor_root(ws: Workspace, sensor: Sensor) -> str:
    """The folder or URL a file sensor watches (a relative path is the workspace's,
    beside headrace.toml)."""
    assert sensor.path is not None
    if "://" in sensor.path:
        return sensor.path
    path = Path(sensor.path)
    return str(path if path.is_absolute() else ws.settings.root / path)


def check_sensor_path(ws: Workspace, sensor: Sensor) -> None:
    """A file sensor's folder must exist (and be a folder) when the definitions load."""
    import fsspec

    root = sensor_root(ws, sensor)
    try:
        fs, path = fsspec.core.url_to_fs(root)
        exists = fs.exists(path) and fs.isdir(path)
    except Exception as exc:  # an unknown protocol, a missing driver, no credentials
        raise AutomationDefinitionError(
            f"sensor {sensor.name!r}: cannot open path {sensor.path!r}: {exc}"
        ) from None
    if not exists:
        raise AutomationDefinitionError(
            f"sensor {sensor.name!r}: path {sensor.path!r} ({root}) does not exist or is "
            "not a folder"
        )

"""One evaluation of schedules, sensors and freshness policies: what is due is put in
the run queue, each tick, file, version or alert at most once (by its dedupe key, in
the transaction that moves the cursor), so several daemons may evaluate at once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from headrace.core.automation import Automation, Pipeline, Schedule, Sensor, freshness_alerts
from headrace.store.monitoring import AlertRecord

if TYPE_CHECKING:
    from headrace.runtime.workspace import Workspace

log = logging.getLogger("headrace.scheduling")

#: a tick no older than this is on time even under ``catch_up="none"``
ON_TIME = 60.0


@dataclass
class Evaluation:
    """What one evaluation did."""

    enqueued: list[str] = field(default_factory=list)  # queue ids
    skipped: list[str] = field(default_factory=list)  # why something was not enqueued
    breaches: list[str] = field(default_factory=list)  # assets past their freshness
    notes: list[str] = field(default_factory=list)

    def merge(self, other: Evaluation) -> None:
        """Add another evaluation's findings (a line already reported is not repeated)."""
        self.enqueued += other.enqueued
        for mine, theirs in (
            (self.skipped, other.skipped),
            (self.breaches, other.breaches),
            (self.notes, other.notes),
        ):
            mine += [line for line in theirs if line not in mine]


def enabled(
    ws: Workspace, kind: str, item: Schedule | Sensor, state: dict[str, Any] | None = None
) -> bool:
    """The switch ``schedules on|off`` set, else the declaration's."""
    stored = (state if state is not None else ws.store.automation.state(kind, item.name))["enabled"]
    return item.enabled if stored is None else bool(stored)


def _enqueue_args(pipeline: Pipeline) -> dict[str, Any]:
    return {
        "pipeline": pipeline.name,
        "kind": "monitor" if pipeline.monitor is not None else "assets",
        "selection": pipeline.monitor if pipeline.monitor is not None else pipeline.select,
        "exclude": pipeline.exclude,
        "params": dict(pipeline.params),
        "branch": pipeline.branch,
        "tags": pipeline.tags,
        "max_attempts": pipeline.max_attempts,
    }


def enqueue_pipeline(
    ws: Workspace,
    automation: Automation,
    name: str,
    *,
    partitions: list[str] | None = None,
    priority: int = 0,
    trigger: str = "manual",
) -> str:
    """Queue a run of a declared pipeline now; its queue id."""
    from headrace.core.automation import AutomationDefinitionError
    from headrace.core.graph import suggest

    if name not in automation.pipelines:
        raise AutomationDefinitionError(
            f"no pipeline named {name!r}" + suggest(name, automation.pipelines)
        )
    made = ws.store.queue.enqueue(
        **_enqueue_args(automation.pipelines[name]),
        partitions=partitions,
        trigger=trigger,
        priority=priority,
    )
    assert made is not None  # no dedupe key: always queued
    return made


# -- schedules ------------------------------------------------------------------------------


def tick_partition(ws: Workspace, pipeline: Pipeline, schedule: Schedule, tick: float) -> Any:
    """The partition a tick targets: for a selection holding a daily or monthly
    partitioned asset, the partition ``partition_offset`` steps from the one holding
    the tick (in the schedule's time zone); None for an unpartitioned selection; False
    when the key falls outside the asset's partitions."""
    if pipeline.monitor is not None:
        return None
    from zoneinfo import ZoneInfo

    from headrace.core.partitions import TimePartitions
    from headrace.core.selection import select

    names = select(ws.graph, pipeline.select, exclude=pipeline.exclude)
    for name in names:
        definition = ws.graph.specs[name].partitions
        if isinstance(definition, TimePartitions):
            day = dt.datetime.fromtimestamp(tick, ZoneInfo(schedule.timezone)).date()
            key = definition.offset(definition.key_for(day), schedule.partition_offset)
            if key is None:
                return False
            try:
                return definition.validate_key(key)
            except Exception:
                return False
    return None


def evaluate_schedule(
    ws: Workspace,
    automation: Automation,
    schedule: Schedule,
    now: float,
    state: dict[str, Any] | None = None,
) -> Evaluation:
    """Queue the schedule's ticks up to ``now`` under its catch-up policy (``state``:
    its stored switch and cursor, when the caller read them already)."""
    out = Evaluation()
    if state is None:
        state = ws.store.automation.state("schedule", schedule.name)
    if not enabled(ws, "schedule", schedule, state):
        return out
    cursor = state["cursor"]
    if cursor is None:  # a schedule starts ticking when a daemon first sees it
        ws.store.automation.advance("schedule", schedule.name, now, evaluated_at=now)
        out.notes.append(f"schedule {schedule.name} starts from now")
        return out
    ticks = schedule.ticks(float(cursor), now)
    if not ticks:
        return out
    if schedule.catch_up == "latest":
        chosen = ticks[-1:]
    elif schedule.catch_up == "none":
        chosen = [t for t in ticks if t >= now - ON_TIME][-1:]
    else:
        chosen = ticks
    missed = len(ticks) - len(chosen)
    if missed:
        out.skipped.append(
            f"schedule {schedule.name}: {missed} missed tick{'s' * (missed != 1)} "
            f"not run (catch_up={schedule.catch_up})"
        )
    pipeline = automation.pipelines[schedule.pipeline]
    with ws.store.write() as c:
        for tick in chosen:
            partition = tick_partition(ws, pipeline, schedule, tick)
            if partition is False:
                out.skipped.append(
                    f"schedule {schedule.name}: the tick at {_iso(tick)} targets no "
                    "partition of the selection"
                )
                continue
            made = ws.store.queue.enqueue(
                **_enqueue_args(pipeline),
                partitions=None if partition is None else [partition],
                trigger=f"schedule:{schedule.name}",
                dedupe_key=f"schedule:{schedule.name}:{tick:.3f}",
                details={"tick": tick, "tick_iso": _iso(tick), "partition": partition},
                connection=c,
            )
            if made is not None:
                out.enqueued.append(made)
        ws.store.automation.advance(
            "schedule", schedule.name, max(ticks), evaluated_at=now, connection=c
        )
    return out


def _iso(at: float) -> str:
    return dt.datetime.fromtimestamp(at, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- sensors --------------------------------------------------------------------------------


def evaluate_sensor(
    ws: Workspace, automation: Automation, sensor: Sensor, now: float
) -> Evaluation:
    if not enabled(ws, "sensor", sensor):
        return Evaluation()
    pipeline = automation.pipelines[sensor.pipeline]
    if sensor.kind == "files":
        return _files(ws, pipeline, sensor, now)
    if sensor.kind == "asset":
        return _asset(ws, pipeline, sensor, now)
    if sensor.kind == "alert":
        return _alerts(ws, pipeline, sensor, now)
    raise ValueError(f"sensor {sensor.name!r}: unknown kind {sensor.kind!r}")


def list_files(root: str, pattern: str) -> list[tuple[str, str, str]]:
    """``(url, name, fingerprint)`` of the files matching ``pattern`` under ``root``; the
    fingerprint changes when a file does (size and modification time, or the object
    store's ETag or checksum)."""
    import fsspec

    fs, base = fsspec.core.url_to_fs(root)
    base = base.rstrip("/")
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    found = fs.glob(f"{base}/{pattern}", detail=True)
    out = []
    for path, info in sorted(found.items()):
        if info.get("type") != "file":
            continue
        marker = next(
            (
                str(info[k])
                for k in ("ETag", "etag", "md5", "checksum", "crc32c", "sha256")
                if info.get(k)
            ),
            None,
        )
        stamp = info.get("mtime") or info.get("LastModified") or info.get("updated") or ""
        fingerprint = f"{info.get('size')}:{marker or stamp}"
        url = path if protocol in ("file", "local") else f"{protocol}://{path}"
        out.append((url, path.rsplit("/", 1)[-1], fingerprint[:300]))
    return out


def _files(ws: Workspace, pipeline: Pipeline, sensor: Sensor, now: float) -> Evaluation:
    from headrace.scheduling.definitions import sensor_root

    out = Evaluation()
    root = sensor_root(ws, sensor)
    try:
        files = list_files(root, sensor.pattern)
    except FileNotFoundError:
        out.skipped.append(f"sensor {sensor.name}: {sensor.path} no longer exists")
        return out
    seen = ws.store.automation.seen_files(sensor.name)
    fresh = [(url, name, fp) for url, name, fp in files if seen.get(url) != fp]
    if not fresh:
        return out
    with ws.store.write() as c:
        for url, name, fingerprint in fresh:
            partition = sensor.partition_of(name)
            if sensor.partition_from is not None and partition is None:
                out.skipped.append(
                    f"sensor {sensor.name}: {name} does not match partition_from "
                    f"{sensor.partition_from!r}; not run"
                )
                continue
            params = dict(pipeline.params)
            if sensor.param is not None:
                params[sensor.param] = url
            args = _enqueue_args(pipeline)
            args["params"] = params
            made = ws.store.queue.enqueue(
                **args,
                partitions=None if partition is None else [partition],
                trigger=f"sensor:{sensor.name}",
                dedupe_key=f"sensor:{sensor.name}:{url}:{fingerprint}",
                details={"file": url, "fingerprint": fingerprint, "partition": partition},
                connection=c,
            )
            if made is not None:
                out.enqueued.append(made)
        ws.store.automation.mark_files(c, sensor.name, [(u, f) for u, _, f in fresh])
        ws.store.automation.advance(
            "sensor", sensor.name, {"files": len(files)}, evaluated_at=now, connection=c
        )
    return out


def _asset(ws: Workspace, pipeline: Pipeline, sensor: Sensor, now: float) -> Evaluation:
    out = Evaluation()
    assert sensor.asset is not None
    heads = ws.store.versions.heads(sensor.branch, [sensor.asset])
    current = sorted(v.id for (a, _), v in heads.items() if a == sensor.asset)
    state = ws.store.automation.state("sensor", sensor.name)["cursor"]
    if state is None:  # starts from the versions there are now
        ws.store.automation.advance("sensor", sensor.name, current, evaluated_at=now)
        return out
    new = sorted(set(current) - set(state))
    if not new:
        return out

    # one run for all the versions that appeared since the last look (a backfill of
    # twelve partitions starts the downstream pipeline once, not twelve times)
    digest = hashlib.blake2b("\n".join(new).encode(), digest_size=16).hexdigest()
    with ws.store.write() as c:
        made = ws.store.queue.enqueue(
            **_enqueue_args(pipeline),
            trigger=f"sensor:{sensor.name}",
            dedupe_key=f"sensor:{sensor.name}:{digest}",
            details={"asset": sensor.asset, "versions": new, "branch": sensor.branch},
            connection=c,
        )
        if made is not None:
            out.enqueued.append(made)
        ws.store.automation.advance("sensor", sensor.name, current, evaluated_at=now, connection=c)
    return out


def _alerts(ws: Workspace, pipeline: Pipeline, sensor: Sensor, now: float) -> Evaluation:
    out = Evaluation()
    state = ws.store.automation.state("sensor", sensor.name)["cursor"]
    if state is None:  # alerts raised from now on
        ws.store.automation.advance("sensor", sensor.name, now, evaluated_at=now)
        return out
    alerts = [
        a
        for a in ws.store.monitoring.alerts(sensor.monitor, limit=1000)
        if a.created_at >= float(state) and not a.suppressed
    ]
    if not alerts:
        return out
    with ws.store.write() as c:
        for alert in sorted(alerts, key=lambda a: a.created_at):
            made = ws.store.queue.enqueue(
                **_enqueue_args(pipeline),
                trigger=f"sensor:{sensor.name}",
                dedupe_key=f"sensor:{sensor.name}:{alert.id}",
                details={"monitor": sensor.monitor, "alert": alert.id, "key": alert.key},
                connection=c,
            )
            if made is not None:
                out.enqueued.append(made)
        newest = max(a.created_at for a in alerts)
        ws.store.automation.advance("sensor", sensor.name, newest, evaluated_at=now, connection=c)
    return out


# -- freshness ------------------------------------------------------------------------------


def evaluate_freshness(ws: Workspace, automation: Automation, now: float) -> Evaluation:
    """Each asset past its freshness policy: notified once per stale version (event
    ``freshness``) and, when the policy names a pipeline, that pipeline queued."""
    from headrace.scheduling.notify import notify

    out = Evaluation()
    for policy in automation.freshness.values():
        heads = ws.store.versions.heads(policy.branch, [policy.asset])
        newest = max(
            (v for (a, _), v in heads.items() if a == policy.asset),
            key=lambda v: v.created_at,
            default=None,
        )
        age = None if newest is None else now - newest.created_at
        if age is not None and age <= policy.max_age:
            continue
        stale = "none" if newest is None else newest.id
        what = (
            f"{policy.asset} has no version on {policy.branch}"
            if newest is None
            else f"{policy.asset} on {policy.branch} is {_age(age or 0)} old "
            f"(limit {_age(policy.max_age)}); newest version {newest.id[:16]}"
        )
        out.breaches.append(what)
        key = f"freshness:{policy.asset}:{policy.branch}:{stale}"
        pipeline = automation.pipelines.get(policy.pipeline) if policy.pipeline else None
        payload = {
            "asset": policy.asset,
            "branch": policy.branch,
            "age_seconds": age,
            "max_age_seconds": policy.max_age,
            "version": None if newest is None else newest.id,
            "inspect": f"headrace versions {policy.asset}",
            "message": what,
        }
        # an alert beside monitor alerts (alert sensors and GET /alerts see it), once
        # per stale version
        ws.store.monitoring.add_alert(
            AlertRecord(
                id=hashlib.blake2b(key.encode(), digest_size=16).hexdigest(),
                monitor=freshness_alerts(policy.asset),
                key="freshness",
                window_id=stale,
                message=f"freshness breach: {what}",
                payload=payload,
                created_at=now,
                suppressed=False,
                outcomes=[],
            ),
            once=True,
        )
        notify(
            ws,
            automation,
            "freshness",
            f"freshness breach: {what}",
            payload,
            pipeline=pipeline,
            dedupe_key=key,
        )
        if pipeline is not None:
            made = ws.store.queue.enqueue(
                **_enqueue_args(pipeline),
                trigger=f"freshness:{policy.asset}",
                dedupe_key=key,
                details={"asset": policy.asset, "stale_version": stale},
            )
            if made is not None:
                out.enqueued.append(made)
    return out


def _age(seconds: float) -> str:
    if seconds >= 3 * 86400:
        return f"{seconds / 86400:.1f} d"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.0f} min"


# -- everything -----------------------------------------------------------------------------


def evaluate(
    ws: Workspace,
    automation: Automation,
    *,
    now: float | None = None,
    only: Iterable[str] | None = None,
) -> Evaluation:
    """Evaluate every schedule, sensor and freshness policy (or the ``only`` named)
    once, as of ``now``. A failing sensor is reported and does not stop the others."""
    at = time.time() if now is None else now
    wanted = None if only is None else set(only)
    out = Evaluation()
    states = ws.store.automation.states("schedule") if automation.schedules else {}
    blank = {"enabled": None, "cursor": None, "evaluated_at": None}
    for schedule in automation.schedules.values():
        if wanted is None or schedule.name in wanted:
            state = states.get(("schedule", schedule.name), blank)
            if (
                state["cursor"] is not None
                and enabled(ws, "schedule", schedule, state)
                and schedule.next_tick(float(state["cursor"])) > at
            ):
                continue  # nothing due: no query, no write
            _guarded(
                out,
                f"schedule {schedule.name}",
                evaluate_schedule,
                ws,
                automation,
                schedule,
                at,
                state,
            )
    for sensor in automation.sensors.values():
        if wanted is None or sensor.name in wanted:
            _guarded(out, f"sensor {sensor.name}", evaluate_sensor, ws, automation, sensor, at)
    if wanted is None or "freshness" in wanted:
        _guarded(out, "freshness", evaluate_freshness, ws, automation, at)
    return out


def _guarded(out: Evaluation, what: str, fn: Any, *args: Any) -> None:
    try:
        out.merge(fn(*args))
    except Exception as exc:
        log.exception("evaluating %s failed", what)
        out.skipped.append(f"{what}: evaluation failed: {type(exc).__name__}: {exc}")

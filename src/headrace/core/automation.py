"""Automation declarations: pipelines (a named selection with params), the schedules and
sensors that start them, freshness policies on assets, concurrency limits and where
failures are reported.

Declared in the project's code with ``from headrace import automation as auto``; read by
``headrace daemon``, which enqueues runs in the durable queue that workers take them
from. Everything is checked here, when the project loads: a bad cron expression, an
unknown time zone or a misnamed field is a :class:`AutomationDefinitionError` naming
the declaration and the field, never a failure at 3 a.m.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from headrace.core.errors import DefinitionError
from headrace.core.monitors import Action, seconds
from headrace.core.origin import caller_module

#: The queue's name for the runs started through the team server (``POST /runs``);
#: no pipeline may be declared under it.
SERVER_PIPELINE = "server"

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.\-]{0,199}")

CatchUp = Literal["all", "latest", "none"]
CATCH_UP: tuple[str, ...] = ("all", "latest", "none")
#: what a notification can be about
EVENTS: tuple[str, ...] = ("run_failed", "check_failed", "freshness", "retries_exhausted")
#: the most missed ticks one evaluation enqueues under ``catch_up="all"``
MAX_CATCH_UP = 1000


class AutomationDefinitionError(DefinitionError):
    """A pipeline, schedule, sensor, freshness policy or limit declared wrongly: names
    the declaration and the field."""


@dataclass(frozen=True)
class Notify:
    """Where failures are reported (the channels of monitor alerts) and for which
    events."""

    actions: tuple[Action, ...]
    events: tuple[str, ...] = EVENTS


@dataclass(frozen=True)
class Pipeline:
    """A named selection of assets with params, run by schedules and sensors."""

    name: str
    select: str | None
    params: Mapping[str, Any] = field(default_factory=dict)
    branch: str = "main"
    exclude: str | None = None
    tags: tuple[str, ...] = ()
    #: at most this many runs of the pipeline at once (None: no limit of its own)
    max_concurrent: int | None = None
    #: attempts a queued run gets when its worker dies (1: never retried)
    max_attempts: int = 3
    notify: Notify | None = None
    #: a monitor evaluated instead of assets (``auto.pipeline(..., monitor=...)``)
    monitor: str | None = None
    description: str | None = None


@dataclass(frozen=True)
class Schedule:
    """Start a pipeline on a cron expression (in a time zone) or every fixed interval."""

    name: str
    pipeline: str
    cron: str | None = None
    timezone: str = "UTC"
    every: float | None = None  # seconds
    catch_up: CatchUp = "latest"
    #: for a time-partitioned selection: the partition a tick targets, counted from the
    #: one holding the tick (-1: the last complete one, the default)
    partition_offset: int = -1
    enabled: bool = True

    def ticks(self, after: float, until: float) -> list[float]:
        """Tick times (epoch seconds) in ``(after, until]``, oldest first, at most
        :data:`MAX_CATCH_UP` (the newest ones)."""
        if until <= after:
            return []
        if self.every is not None:
            first = (int(after // self.every) + 1) * self.every
            count = int((until - first) // self.every) + 1 if first <= until else 0
            start = max(0, count - MAX_CATCH_UP)
            return [first + i * self.every for i in range(start, count)]
        from zoneinfo import ZoneInfo

        from croniter import croniter

        zone = ZoneInfo(self.timezone)
        it = croniter(str(self.cron), dt.datetime.fromtimestamp(after, zone))
        out: list[float] = []
        while True:
            moment = float(it.get_next(float))
            if moment > until:
                return out
            out.append(moment)
            if len(out) > MAX_CATCH_UP:
                out.pop(0)

    def next_tick(self, after: float) -> float:
        """The first tick after ``after``."""
        if self.every is not None:
            return (int(after // self.every) + 1) * self.every
        from zoneinfo import ZoneInfo

        from croniter import croniter

        start = dt.datetime.fromtimestamp(after, ZoneInfo(self.timezone))
        return float(croniter(str(self.cron), start).get_next(float))

    @property
    def describe(self) -> str:
        if self.every is not None:
            return f"every {_duration(self.every)}"
        return f"cron {self.cron} ({self.timezone})"


@dataclass(frozen=True)
class Sensor:
    """Start a pipeline on events. ``kind`` is ``files`` (new or changed files under a
    folder or an fsspec URL), ``asset`` (a new version of an asset on a branch),
    ``alert`` (a monitor raised an alert) or ``freshness`` (a freshness policy was
    breached)."""

    name: str
    pipeline: str
    kind: Literal["files", "asset", "alert", "freshness"]
    #: files: the folder or URL, and a glob under it
    path: str | None = None
    pattern: str = "*"
    #: files: a regular expression whose first group (or ``partition`` group) in the
    #: file's name is the partition to run; param: the run param that gets the file's URL
    partition_from: str | None = None
    param: str | None = None
    #: asset: which asset and branch; alert: which monitor; freshness: which asset
    asset: str | None = None
    branch: str = "main"
    monitor: str | None = None
    #: how often the daemon looks (seconds)
    interval: float = 30.0
    enabled: bool = True

    @property
    def watches(self) -> str:
        if self.kind == "files":
            return f"files {self.path.rstrip('/') if self.path else ''}/{self.pattern}"
        if self.kind == "asset":
            return f"new versions of {self.asset} on {self.branch}"
        if self.kind == "alert":
            return f"alerts of monitor {self.monitor}"
        return f"freshness of {self.asset}"

    def partition_of(self, name: str) -> str | None:
        """The partition a file's name gives (None without ``partition_from``, or when
        the name does not match)."""
        if self.partition_from is None:
            return None
        found = re.search(self.partition_from, name)
        if found is None:
            return None
        groups = found.groupdict()
        value = groups.get("partition") or (found.group(1) if found.groups() else found.group(0))
        return str(value) if value else None


@dataclass(frozen=True)
class Freshness:
    """An asset's freshness policy: its newest version on ``branch`` is never older than
    ``max_age`` seconds. A breach is an alert (notified like a failure) and, with
    ``pipeline``, starts that pipeline."""

    asset: str
    max_age: float
    branch: str = "main"
    pipeline: str | None = None


def freshness_alerts(asset: str) -> str:
    """The name a freshness policy's breaches are stored under, beside monitor alerts:
    what ``alert_sensor(monitor=...)`` and ``GET /alerts?monitor=`` take."""
    return f"freshness:{asset}"


@dataclass(frozen=True)
class Limits:
    """Concurrency limits of the run queue: how many runs at once in all, and per tag."""

    total: int | None = None
    tags: Mapping[str, int] = field(default_factory=dict)


@dataclass
class Automation:
    """Everything declared by the loaded project."""

    pipelines: dict[str, Pipeline] = field(default_factory=dict)
    schedules: dict[str, Schedule] = field(default_factory=dict)
    sensors: dict[str, Sensor] = field(default_factory=dict)
    freshness: dict[str, Freshness] = field(default_factory=dict)
    limits: Limits = field(default_factory=Limits)
    notify: Notify | None = None

    def check(self, assets: Sequence[str], monitors: Sequence[str] = ()) -> None:
        """Cross-check names against the project: pipelines of schedules and sensors,
        assets of sensors, freshness policies and pipelines' selections are known."""
        known = set(assets)
        for kind, items in (("schedule", self.schedules), ("sensor", self.sensors)):
            for item in items.values():
                if item.pipeline not in self.pipelines:
                    raise AutomationDefinitionError(
                        f"{kind} {item.name!r}: pipeline {item.pipeline!r} is not declared"
                        + _choices(self.pipelines)
                    )
        for sensor in self.sensors.values():
            if sensor.asset is not None and sensor.asset not in known:
                raise AutomationDefinitionError(
                    f"sensor {sensor.name!r}: asset {sensor.asset!r} is not defined"
                )
            watched = [*monitors, *(freshness_alerts(a) for a in self.freshness)]
            if sensor.kind == "alert" and sensor.monitor not in watched:
                raise AutomationDefinitionError(
                    f"sensor {sensor.name!r}: monitor {sensor.monitor!r} is not declared"
                    + _choices(dict.fromkeys(watched))
                )
        for policy in self.freshness.values():
            if policy.asset not in known:
                raise AutomationDefinitionError(
                    f"freshness policy: asset {policy.asset!r} is not defined"
                )
            if policy.pipeline is not None and policy.pipeline not in self.pipelines:
                raise AutomationDefinitionError(
                    f"freshness policy of {policy.asset!r}: pipeline {policy.pipeline!r} "
                    "is not declared" + _choices(self.pipelines)
                )
        for p in self.pipelines.values():
            if p.monitor is not None and p.monitor not in monitors:
                raise AutomationDefinitionError(
                    f"pipeline {p.name!r}: monitor {p.monitor!r} is not declared"
                )


#: What each imported module declared, by module name (a project is one module or a
#: package of them; :func:`declared_in` gathers a project's).
DECLARED: dict[str, Automation] = {}


def _here() -> Automation:
    """The declarations of the module calling into this one."""
    module = caller_module("headrace.core.automation", "headrace.automation")
    return DECLARED.setdefault(module, Automation())


def declared_in(module: str) -> Automation:
    """Everything a project declared: module ``module`` and its submodules."""
    out = Automation()
    for name in sorted(DECLARED):
        if name != module and not name.startswith(module + "."):
            continue
        part = DECLARED[name]
        for kind in ("pipelines", "schedules", "sensors", "freshness"):
            mine, theirs = getattr(out, kind), getattr(part, kind)
            for key, value in theirs.items():
                if key in mine and mine[key] != value:
                    raise AutomationDefinitionError(
                        f"{kind[:-1] if kind != 'freshness' else 'freshness policy'} {key!r} "
                        f"is declared twice (again in {name})"
                    )
                mine[key] = value
        if part.limits != Limits():
            out.limits = part.limits
        if part.notify is not None:
            out.notify = part.notify
    return out


def _choices(known: Mapping[str, Any]) -> str:
    return f"; declared: {', '.join(sorted(known))}" if known else "; none is declared"


def _duration(value: float) -> str:
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if value >= size and value % size == 0:
            return f"{int(value // size)}{unit}"
    return f"{value:g}s"


def _name(kind: str, name: Any) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise AutomationDefinitionError(
            f"{kind} name {name!r} must start with a letter and hold only letters, digits, "
            "'_', '.' and '-' (at most 200)"
        )
    return name


def _register(kind: str, table: dict[str, Any], key: str, value: Any) -> Any:
    """Add a declaration; the same one again (a module imported anew) replaces it, a
    different one under the same name is an error."""
    if key in table and table[key] != value:
        label = "freshness policy of" if kind == "freshness" else kind
        raise AutomationDefinitionError(f"{label} {key!r} is declared twice")
    table[key] = value
    return value


def _positive_int(where: str, value: Any, *, allow_none: bool = True) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise AutomationDefinitionError(f"{where}: expected a whole number >= 1, got {value!r}")
    return value


def _duration_of(where: str, value: Any) -> float:
    try:
        return seconds(value, where)
    except DefinitionError as exc:
        raise AutomationDefinitionError(str(exc)) from None


def _notify(where: str, value: Any) -> Notify | None:
    if value is None or isinstance(value, Notify):
        return value
    actions = [value] if isinstance(value, Action) else list(value)
    return notify(actions, where=where)


def notify(
    actions: Action | Sequence[Action],
    *,
    events: Sequence[str] = EVENTS,
    where: str = "notify()",
) -> Notify:
    """Report failures through monitor-alert channels (``m.webhook``, ``m.email``,
    ``m.log``) for ``events`` (``run_failed``, ``check_failed``, ``freshness``,
    ``retries_exhausted``). Pass it to a pipeline, or to :func:`defaults` for all."""
    chosen = [actions] if isinstance(actions, Action) else list(actions)
    if not chosen:
        raise AutomationDefinitionError(f"{where}: give at least one channel")
    for action in chosen:
        if not isinstance(action, Action) or action.kind not in ("webhook", "email", "log"):
            raise AutomationDefinitionError(
                f"{where}: channels are m.webhook(...), m.email(...) or m.log(...), got {action!r}"
            )
    wanted = tuple(events)
    unknown = sorted(set(wanted) - set(EVENTS))
    if unknown or not wanted:
        raise AutomationDefinitionError(
            f"{where}: events are {', '.join(EVENTS)}; got {', '.join(unknown) or 'none'}"
        )
    return Notify(tuple(chosen), wanted)


def pipeline(
    name: str,
    select: str | None = None,
    *,
    params: Mapping[str, Any] | None = None,
    branch: str = "main",
    exclude: str | None = None,
    tags: Sequence[str] = (),
    max_concurrent: int | None = None,
    max_attempts: int = 3,
    notify: Notify | Action | Sequence[Action] | None = None,
    monitor: str | None = None,
    description: str | None = None,
) -> Pipeline:
    """Declare a pipeline: the assets ``select`` names (dbt-like syntax; all when None)
    with ``params``, on ``branch``; or, with ``monitor``, one monitor's evaluation.

    ``tags`` count against tag limits (:func:`limits`); ``max_concurrent`` caps its own
    runs at once; ``max_attempts`` is how often a run whose worker died is tried.
    """
    _name("pipeline", name)
    where = f"pipeline {name!r}"
    if name == SERVER_PIPELINE:
        raise AutomationDefinitionError(
            f"{where}: the name is reserved for the runs started through the team server"
        )
    if params is not None and not isinstance(params, Mapping):
        raise AutomationDefinitionError(f"{where}: params must be a mapping, got {params!r}")
    if select is not None and (not isinstance(select, str) or not select.strip()):
        raise AutomationDefinitionError(f"{where}: select must be a selection, got {select!r}")
    if monitor is not None and select is not None:
        raise AutomationDefinitionError(f"{where}: give select or monitor, not both")
    for tag in tags:
        if not isinstance(tag, str) or not _NAME.fullmatch(tag):
            raise AutomationDefinitionError(f"{where}: tag {tag!r} is not a plain name")
    declared = Pipeline(
        name=name,
        select=select,
        params=dict(params or {}),
        branch=branch,
        exclude=exclude,
        tags=tuple(tags),
        max_concurrent=_positive_int(f"{where}: max_concurrent", max_concurrent),
        max_attempts=_positive_int(f"{where}: max_attempts", max_attempts, allow_none=False) or 1,
        notify=_notify(f"{where}: notify", notify),
        monitor=monitor,
        description=description,
    )
    return _register("pipeline", _here().pipelines, name, declared)  # type: ignore[no-any-return]


def schedule(
    name: str,
    pipeline: str | Pipeline,
    *,
    cron: str | None = None,
    timezone: str = "UTC",
    every: str | float | None = None,
    catch_up: CatchUp = "latest",
    partition_offset: int = -1,
    enabled: bool = True,
) -> Schedule:
    """Start ``pipeline`` on a ``cron`` expression in ``timezone`` (an IANA name such as
    ``"Europe/Paris"``) or ``every`` fixed interval (``"15m"``, ``"1h"``, seconds).

    ``catch_up`` says what happens to ticks missed while no daemon ran: ``"all"`` runs
    each of them, ``"latest"`` only the newest, ``"none"`` none. For a time-partitioned
    selection, a tick runs the partition ``partition_offset`` steps from the one that
    holds the tick (-1: the last complete day or month).
    """
    _name("schedule", name)
    where = f"schedule {name!r}"
    target = pipeline.name if isinstance(pipeline, Pipeline) else pipeline
    if not isinstance(target, str):
        raise AutomationDefinitionError(f"{where}: pipeline must be a name, got {pipeline!r}")
    if (cron is None) == (every is None):
        raise AutomationDefinitionError(f"{where}: give exactly one of cron= or every=")
    if catch_up not in CATCH_UP:
        raise AutomationDefinitionError(
            f"{where}: catch_up is 'all', 'latest' or 'none', got {catch_up!r}"
        )
    if isinstance(partition_offset, bool) or not isinstance(partition_offset, int):
        raise AutomationDefinitionError(
            f"{where}: partition_offset must be a whole number, got {partition_offset!r}"
        )
    interval = None if every is None else _duration_of(f"{where}: every", every)
    if cron is not None:
        _check_cron(where, cron)
        _check_zone(where, timezone)
    declared = Schedule(
        name=name,
        pipeline=target,
        cron=cron,
        timezone=timezone,
        every=interval,
        catch_up=catch_up,
        partition_offset=partition_offset,
        enabled=bool(enabled),
    )
    return _register("schedule", _here().schedules, name, declared)  # type: ignore[no-any-return]


def _check_cron(where: str, cron: Any) -> None:
    from croniter import croniter

    if not isinstance(cron, str) or not croniter.is_valid(cron):
        raise AutomationDefinitionError(
            f"{where}: {cron!r} is not a valid cron expression; expected five fields "
            "(minute hour day-of-month month day-of-week) such as '0 6 * * *'"
        )


def _check_zone(where: str, zone: Any) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        if not isinstance(zone, str) or not zone:
            raise ValueError(zone)
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise AutomationDefinitionError(
            f"{where}: unknown time zone {zone!r}; expected an IANA name such as "
            "'UTC' or 'Europe/Paris'"
        ) from None


def _sensor(name: str, pipeline: str | Pipeline, kind: str, interval: Any, **given: Any) -> Sensor:
    _name("sensor", name)
    target = pipeline.name if isinstance(pipeline, Pipeline) else pipeline
    if not isinstance(target, str):
        raise AutomationDefinitionError(
            f"sensor {name!r}: pipeline must be a name, got {pipeline!r}"
        )
    declared = Sensor(
        name=name,
        pipeline=target,
        kind=kind,  # type: ignore[arg-type]
        interval=_duration_of(f"sensor {name!r}: interval", interval),
        **given,
    )
    return _register("sensor", _here().sensors, name, declared)  # type: ignore[no-any-return]


def file_sensor(
    name: str,
    pipeline: str | Pipeline,
    *,
    path: str,
    pattern: str = "*",
    partition_from: str | None = None,
    param: str | None = None,
    interval: str | float = "30s",
    enabled: bool = True,
) -> Sensor:
    """Start ``pipeline`` once for each new or changed file matching ``pattern`` under
    ``path`` (a folder, relative to the workspace root, or an fsspec URL such as
    ``s3://bucket/landing``). A file is handled once, across restarts; a file that
    changes (size, time or checksum) is handled again.

    ``partition_from`` is a regular expression over the file's name whose first group
    (or group named ``partition``) is the partition to run; ``param`` names a run
    param that gets the file's URL.
    """
    where = f"sensor {name!r}"
    if not isinstance(path, str) or not path:
        raise AutomationDefinitionError(f"{where}: path must be a folder or URL, got {path!r}")
    if partition_from is not None:
        try:
            re.compile(partition_from)
        except re.error as exc:
            raise AutomationDefinitionError(
                f"{where}: partition_from {partition_from!r} is not a regular expression: {exc}"
            ) from None
    return _sensor(
        name,
        pipeline,
        "files",
        interval,
        path=path,
        pattern=pattern,
        partition_from=partition_from,
        param=param,
        enabled=bool(enabled),
    )


def asset_sensor(
    name: str,
    pipeline: str | Pipeline,
    *,
    asset: str,
    branch: str = "main",
    interval: str | float = "30s",
    enabled: bool = True,
) -> Sensor:
    """Start ``pipeline`` when ``asset`` gets a new version on ``branch`` (once for all
    the versions that appeared between two looks, such as a backfill's partitions)."""
    if not isinstance(asset, str) or not asset:
        raise AutomationDefinitionError(f"sensor {name!r}: asset must be a name, got {asset!r}")
    return _sensor(
        name, pipeline, "asset", interval, asset=asset, branch=branch, enabled=bool(enabled)
    )


def alert_sensor(
    name: str,
    pipeline: str | Pipeline,
    *,
    monitor: str,
    interval: str | float = "30s",
    enabled: bool = True,
) -> Sensor:
    """Start ``pipeline`` when ``monitor`` raises an alert (how drift triggers
    retraining); suppressed (de-duplicated) alerts start nothing. A freshness policy's
    breaches are alerts of ``"freshness:ASSET"``."""
    if not isinstance(monitor, str) or not monitor:
        raise AutomationDefinitionError(f"sensor {name!r}: monitor must be a name, got {monitor!r}")
    return _sensor(name, pipeline, "alert", interval, monitor=monitor, enabled=bool(enabled))


def freshness(
    asset: str,
    max_age: str | float,
    *,
    branch: str = "main",
    pipeline: str | Pipeline | None = None,
) -> Freshness:
    """``asset``'s newest version on ``branch`` is never older than ``max_age``
    (``"26h"``). A breach is an alert (monitor ``"freshness:ASSET"``, once per stale
    version), notified (event ``freshness``) and, with ``pipeline``, starts it."""
    if not isinstance(asset, str) or not asset:
        raise AutomationDefinitionError(f"freshness(): asset must be a name, got {asset!r}")
    target = pipeline.name if isinstance(pipeline, Pipeline) else pipeline
    declared = Freshness(
        asset=asset,
        max_age=_duration_of(f"freshness policy of {asset!r}: max_age", max_age),
        branch=branch,
        pipeline=target,
    )
    return _register("freshness", _here().freshness, asset, declared)  # type: ignore[no-any-return]


def limits(total: int | None = None, *, tags: Mapping[str, int] | None = None) -> Limits:
    """Concurrency limits of the run queue: at most ``total`` runs at once, and at most
    ``tags[tag]`` runs of pipelines carrying ``tag`` (``{"warehouse": 2}``)."""
    checked: dict[str, int] = {}
    for tag, value in (tags or {}).items():
        checked[tag] = _positive_int(f"limits(): tag {tag!r}", value, allow_none=False) or 1
    here = _here()
    here.limits = Limits(_positive_int("limits(): total", total), checked)
    return here.limits


def defaults(*, notify: Notify | Action | Sequence[Action] | None = None) -> None:
    """Project-wide settings: ``notify`` applies to pipelines without their own."""
    _here().notify = _notify("defaults(): notify", notify)

"""CLI commands for automation: ``daemon``, ``worker``, ``schedules``, ``sensors``,
``queue`` and ``notifications``. Thin: each delegates to ``headrace.scheduling``."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

schedules_app = typer.Typer(help="List schedules and switch them on or off.", no_args_is_help=True)
sensors_app = typer.Typer(help="List sensors and switch them on or off.", no_args_is_help=True)
queue_app = typer.Typer(
    help="The run queue: what waits (and why), what runs and where, what ended.",
    invoke_without_command=True,
)


def _console() -> Any:
    from headrace.cli.app import console

    return console


def _workspace(remote: bool = False) -> Any:
    from headrace.cli.app import _workspace as open_it

    return open_it(remote)


def _when(ts: float | None) -> str:
    from headrace.cli.render import when

    return when(ts)


def _automation(ws: Any) -> Any:
    from headrace.scheduling.definitions import load_automation

    return load_automation(ws)


def _parse_time(text: str | None) -> float | None:
    if text is None:
        return None
    import datetime as dt

    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not an ISO time such as 2026-01-05T06:00 or 2026-01-05T06:00+01:00"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp()


def daemon(
    once: Annotated[
        bool, typer.Option("--once", help="Evaluate everything once, run what it queued, exit.")
    ] = False,
    at: Annotated[
        str | None,
        typer.Option(help="With --once: evaluate as of this ISO time (default: now; UTC)."),
    ] = None,
    run: Annotated[
        bool, typer.Option("--run/--no-run", help="With --once: also run what was queued.")
    ] = True,
    workers: Annotated[
        int, typer.Option(min=0, help="Worker processes to run the queue (0: none here).")
    ] = 1,
    lease: Annotated[
        float, typer.Option(min=1.0, help="Seconds a run is held without a heartbeat.")
    ] = 30.0,
    tick: Annotated[float, typer.Option(min=0.05, help="Seconds between evaluations.")] = 1.0,
    reload: Annotated[
        bool,
        typer.Option(
            "--reload/--no-reload",
            help="Load the definitions again when the project's files change.",
        ),
    ] = True,
) -> None:
    """Evaluate schedules, sensors and freshness policies and run the queue. Changed
    definitions are picked up as they are saved (the last good ones stay in use if the
    new ones do not load)."""
    from headrace.scheduling.daemon import Daemon, run_once

    ws = _workspace()
    console = _console()
    if at is not None and not once:
        raise typer.BadParameter("--at only goes with --once")
    if once:
        with console.status("evaluating schedules and sensors") as status:

            def started(item: Any) -> None:
                status.update(f"running {item.pipeline} ({item.trigger})")

            report = run_once(ws, now=_parse_time(at), run=run, on_run=started)
        evaluation = report.evaluation
        for line in report.lost:
            console.print(f"[yellow]{escape(line)}[/]")
        for line in evaluation.breaches:
            console.print(f"[red]freshness breach[/]: {escape(line)}")
        for line in evaluation.skipped:
            console.print(f"[dim]{escape(line)}[/]")
        for item_id, pipeline, status_ in report.ran:
            style = {"success": "green", "requeued": "yellow"}.get(status_, "red")
            done = ws.store.queue.get(item_id)
            part = f"[{','.join(done.partitions)}]" if done.partitions else ""
            console.print(
                f"[{style}]{status_}[/] {escape(pipeline + part)} ({escape(done.trigger)})"
                + (f" run {done.run_id}" if done.run_id else f" [dim]queued {item_id[:12]}[/]"),
                soft_wrap=True,
            )
        console.print(
            f"queued {len(evaluation.enqueued)}, ran {len(report.ran)}"
            + (
                f", {report.sent} notification{'s' * (report.sent != 1)} sent"
                if report.sent
                else ""
            )
            + (
                f", [red]{report.failing} not delivered (retried later)[/]"
                if report.failing
                else ""
            )
        )
        final = {item_id: status_ for item_id, _, status_ in report.ran}  # the last word
        if any(s not in ("success", "requeued") for s in final.values()):
            raise typer.Exit(1)
        return
    import signal
    import threading

    from headrace.runtime.logs import log_to_stderr

    log_to_stderr()
    automation = _automation(ws)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    console.print(
        f"headrace daemon: {len(automation.schedules)} schedules, {len(automation.sensors)} "
        f"sensors, {len(automation.freshness)} freshness policies, {workers} worker"
        f"{'s' * (workers != 1)}; Ctrl-C stops"
    )
    import os

    parent = os.environ.get("HEADRACE_DAEMON_PARENT")  # set by headrace server
    Daemon(ws, workers=workers, lease=lease, tick=tick, automation=automation, reload=reload).serve(
        stop, parent=int(parent) if parent and parent.isdigit() else None
    )


def worker(
    lease: Annotated[
        float, typer.Option(min=1.0, help="Seconds a run is held without a heartbeat.")
    ] = 30.0,
    poll: Annotated[
        float, typer.Option(min=0.01, help="Seconds between looks at the queue.")
    ] = 0.2,
    drain: Annotated[
        bool, typer.Option("--drain", help="Exit once nothing in the queue can start.")
    ] = False,
    reload: Annotated[
        bool,
        typer.Option(
            "--reload/--no-reload",
            help="Start afresh (between runs) when the project's files change.",
        ),
    ] = True,
) -> None:
    """Take runs from the queue and execute them (one at a time) until stopped."""
    import os
    import signal
    import sys
    import threading

    from headrace.runtime.logs import log_to_stderr
    from headrace.scheduling.health import HealthFile
    from headrace.scheduling.reload import ProjectWatch
    from headrace.scheduling.worker import Worker

    log_to_stderr()
    ws = _workspace()
    one = Worker(ws, _automation(ws), lease=lease)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if drain:
        _console().print(f"ran {one.drain(stop=stop)} queued runs")
        return
    _console().print(f"worker {one.name} taking runs; Ctrl-C stops")
    watch = ProjectWatch(ws) if reload else None
    health = HealthFile(ws.settings.state_dir, "worker", one.availability)
    try:
        one.serve(stop, poll=poll, until=None if watch is None else watch.changed, health=health)
    finally:
        health.remove()
    if not stop.is_set():  # the project changed: this process starts over with it
        _console().print("the project's files changed: starting afresh")
        ws.close()
        os.execv(sys.executable, [sys.executable, "-m", "headrace", *sys.argv[1:]])


def _rows(kind: str) -> list[dict[str, Any]]:
    """``schedules`` or ``sensors`` rows, from the team server when HEADRACE_URL is set."""
    from headrace.scheduling import overview

    ws = _workspace(remote=True)
    if hasattr(ws, "remote"):
        return list(ws.remote.call("GET", f"/{kind}")[kind])
    rows: list[dict[str, Any]] = getattr(overview, kind)(ws, _automation(ws))
    return rows


def _state(on: bool) -> str:
    return "[green]on[/]" if on else "[yellow]off[/]"


@schedules_app.command("list")
def schedules_list() -> None:
    """Every schedule: its pipeline, when it ticks, whether it is on, the last tick."""
    rows = _rows("schedules")
    if not rows:
        _console().print("no schedules: declare one with headrace.automation.schedule()")
        return
    table = Table(box=None, header_style="bold")
    for column in ("schedule", "pipeline", "when", "catch-up", "state", "ticked to", "next tick"):
        table.add_column(column)
    for r in rows:
        table.add_row(
            escape(r["name"]),
            escape(r["pipeline"]),
            escape(r["when"]),
            r["catch_up"],
            _state(r["enabled"]),
            _when(r["cursor"]) if r["cursor"] is not None else "[dim]not yet evaluated[/]",
            _when(r["next_tick"]) if r["next_tick"] is not None else "-",
        )
    _console().print(table)


def _switch(kind: str, name: str, on: bool) -> None:
    from headrace.scheduling.overview import switch

    ws = _workspace(remote=True)
    if hasattr(ws, "remote"):
        ws.remote.call("POST", f"/{kind}s/{name}/{'on' if on else 'off'}")
    else:
        switch(ws, _automation(ws), kind, name, on)
    _console().print(f"{kind} {escape(name)} is {'on' if on else 'off'}")


@schedules_app.command("on")
def schedules_on(name: Annotated[str, typer.Argument(help="A schedule.")]) -> None:
    """Switch a schedule on (it ticks from its last tick, under its catch-up policy)."""
    _switch("schedule", name, True)


@schedules_app.command("off")
def schedules_off(name: Annotated[str, typer.Argument(help="A schedule.")]) -> None:
    """Switch a schedule off."""
    _switch("schedule", name, False)


@sensors_app.command("list")
def sensors_list() -> None:
    """Every sensor: what it watches, its pipeline, whether it is on, when it looked."""
    rows = _rows("sensors")
    if not rows:
        _console().print("no sensors: declare one with headrace.automation.file_sensor() etc.")
        return
    table = Table(box=None, header_style="bold")
    for column in ("sensor", "kind", "watches", "pipeline", "every", "state", "last looked"):
        table.add_column(column)
    for r in rows:
        table.add_row(
            escape(r["name"]),
            r["kind"],
            escape(r["watches"]),
            escape(r["pipeline"] or "-"),
            f"{r['interval']:g} s",
            _state(r["enabled"]),
            _when(r["evaluated_at"]) if r["evaluated_at"] is not None else "-",
        )
    _console().print(table)


@sensors_app.command("on")
def sensors_on(name: Annotated[str, typer.Argument(help="A sensor.")]) -> None:
    """Switch a sensor on."""
    _switch("sensor", name, True)


@sensors_app.command("off")
def sensors_off(name: Annotated[str, typer.Argument(help="A sensor.")]) -> None:
    """Switch a sensor off."""
    _switch("sensor", name, False)


@queue_app.callback()
def queue(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(min=1, help="How many rows.")] = 30,
    pipeline: Annotated[str | None, typer.Option(help="Only this pipeline.")] = None,
) -> None:
    """What waits (and why), what runs (on which worker, with which run), what ended."""
    if ctx.invoked_subcommand is not None:
        return
    ws = _workspace(remote=True)
    rows = ws.store.queue.list(pipeline=pipeline, limit=limit)
    counts = ws.store.queue.counts()
    console = _console()
    if not rows:
        console.print("the queue is empty")
        return
    table = Table(box=None, header_style="bold")
    for column in ("id", "pipeline", "trigger", "status", "queued", "attempt", "where / why"):
        table.add_column(column, overflow="fold")
    now = time.time()
    for r in rows:
        if r.status == "queued":
            where = r.waiting or ("waiting for a worker" if r.not_before <= now else "retry later")
        elif r.status == "running":
            where = f"{r.worker}; run {r.run_id[:12] if r.run_id else '-'}"
        else:
            where = f"run {r.run_id[:12]}" if r.run_id else "-"
            if r.error:
                where += f": {r.error.splitlines()[0][:200]}"
        style = {"success": "green", "failed": "red", "running": "blue"}.get(r.status, "")
        table.add_row(
            r.id[:12],
            escape(r.pipeline),
            escape(r.trigger),
            f"[{style}]{r.status}[/]" if style else r.status,
            _when(r.enqueued_at),
            f"{r.attempts}/{r.max_attempts}",
            escape(where),
        )
    console.print(table)
    console.print("[dim]" + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) + "[/]")


@queue_app.command("add")
def queue_add(
    name: Annotated[str, typer.Argument(help="A declared pipeline.")],
    partition: Annotated[
        list[str] | None, typer.Option("--partition", help="A partition (repeatable).")
    ] = None,
    priority: Annotated[int, typer.Option(help="Higher runs first.")] = 0,
) -> None:
    """Queue a run of a pipeline now (a worker or the daemon takes it)."""
    from headrace.scheduling.evaluate import enqueue_pipeline

    ws = _workspace(remote=True)
    if hasattr(ws, "remote"):  # the team server's project and queue
        made = ws.store.queue.add(name, partitions=partition or None, priority=priority)
        _console().print(f"queued {escape(name)} as {made}")
        return
    made = enqueue_pipeline(
        ws, _automation(ws), name, partitions=partition or None, priority=priority
    )
    _console().print(f"queued {escape(name)} as {made}")


def notifications(
    limit: Annotated[int, typer.Option(min=1, help="How many.")] = 20,
) -> None:
    """Failure notifications: what was sent, what is being retried, what failed."""
    ws = _workspace(remote=True)
    rows = ws.store.notifications.list(limit=limit)
    if not rows:
        _console().print("no notifications yet")
        return
    table = Table(box=None, header_style="bold")
    for column in ("when", "event", "subject", "status", "attempts", "last outcome"):
        table.add_column(column, overflow="fold")
    for n in rows:
        last = n.outcomes[-1] if n.outcomes else None
        style = {"sent": "green", "failed": "red", "pending": "yellow"}[n.status]
        table.add_row(
            _when(n.created_at),
            n.event,
            escape(n.subject),
            f"[{style}]{n.status}[/]",
            str(n.attempts),
            escape(last["detail"]) if last else "-",
        )
    _console().print(table)


def register(app: typer.Typer) -> None:
    app.command()(daemon)
    app.command()(worker)
    app.command()(notifications)
    app.add_typer(schedules_app, name="schedules")
    app.add_typer(sensors_app, name="sensors")
    app.add_typer(queue_app, name="queue")

"""``headrace monitor``: list, run, show and report monitors. Thin: each delegates to
``headrace.monitoring``."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

monitor_app = typer.Typer(help="Drift and performance monitors.", no_args_is_help=True)


def _console() -> Any:
    from headrace.cli.app import console

    return console


def _workspace(remote: bool = False) -> Any:
    from headrace.cli.app import _workspace as open_it

    return open_it(remote)


def _when(epoch: float | None) -> str:
    import time

    return "-" if epoch is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))


@monitor_app.command("list")
def list_monitors() -> None:
    """The project's monitors: what each watches, its window and when it last ran."""
    from headrace.monitoring.runner import overview

    ws = _workspace(remote=True)
    rows = ws.store.monitoring.declared() if hasattr(ws, "remote") else overview(ws)
    if not rows:
        _console().print(
            "no monitors: declare one with headrace.monitors.monitor() or monitors.yaml"
        )
        return
    table = Table(box=None, header_style="bold")
    for name in ("monitor", "watches", "window", "limits", "actions", "windows", "last window"):
        table.add_column(name)
    for row in rows:
        window = "-"
        if row["declared"]:
            window = (
                f"{row['window_rows']:,} predictions"
                if row["window_rows"]
                else f"{row['window_seconds']:g} s"
            )
        table.add_row(
            escape(row["name"]),
            escape(row["watches"]) if row["declared"] else "[dim](no longer declared)[/]",
            window,
            ", ".join(escape(metric) for metric in row["limits"]) or "-",
            ", ".join(row["actions"]) or "-",
            f"{row['windows']:,}",
            _when(row["last_evaluated"]),
        )
    _console().print(table)


@monitor_app.command("run")
def run(
    names: Annotated[list[str] | None, typer.Argument(help="Monitors (all when none).")] = None,
    partial: Annotated[
        bool, typer.Option(help="Also judge the window still open (e.g. in a demo).")
    ] = False,
    no_actions: Annotated[
        bool, typer.Option("--no-actions", help="Judge and store, send nothing.")
    ] = False,
) -> None:
    """Evaluate monitors once: every window not yet judged, then alerts and actions."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from headrace.monitoring.runner import run_monitors

    ws = _workspace()
    console = _console()
    with Progress(
        TextColumn("judging windows"),
        BarColumn(),
        MofNCompleteColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("windows", total=None)

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        runs = run_monitors(
            ws, names or None, partial=partial, act=not no_actions, progress=advance
        )
    breached = False
    for result in runs:
        console.print(f"[bold]{escape(result.monitor)}[/]: {len(result.windows)} window(s)")
        if result.note:
            console.print(f"  {escape(result.note)}")
        for outcome in result.windows:
            w = outcome.window
            style = {"ok": "green", "drift": "yellow", "breach": "red"}.get(w.status, "dim")
            share = f", drift share {w.drift_share:.0%}" if w.drift_share is not None else ""
            console.print(
                f"  [{style}]{w.status}[/] version {w.version} {_when(w.start)} .. {_when(w.end)}: "
                f"{w.rows:,} predictions, {w.labeled:,} labeled{share}"
            )
            drifted = (
                [c.column for c in outcome.drift.columns if c.drifted] if outcome.drift else []
            )
            if drifted:
                console.print(f"    drifted: {escape(', '.join(drifted))}")
            for r in outcome.results:
                if r.kind in ("prediction_drift", "target_drift"):
                    flag = " [yellow]drifted[/]" if r.breached else ""
                    console.print(
                        f"    {r.kind.replace('_', ' ')} ({escape(r.name)}): "
                        f"{r.method} {r.value:.4f}{flag}"
                    )
            for label, perf in (
                ("measured", outcome.performance),
                ("estimated", outcome.estimated),
            ):
                if perf is not None and perf.metrics:
                    shown = ", ".join(f"{k} {v:.4f}" for k, v in sorted(perf.metrics.items()))
                    console.print(f"    {label} on {perf.rows:,} rows: {shown}")
            breached = breached or bool(outcome.breaches)
        for alert in result.alerts:
            state = "suppressed (cooldown)" if alert.suppressed else "sent"
            console.print(f"  [yellow]alert[/] {escape(alert.key)} {state}")
            for delivery in alert.outcomes:
                mark = "[green]ok[/]" if delivery.get("ok") else "[red]failed[/]"
                console.print(
                    f"    {delivery.get('action')}: {mark} {escape(str(delivery.get('detail')))}"
                )
        if result.retrain is not None:
            retrained = result.retrain
            branch = f" on {retrained['branch']}" if retrained.get("branch") else ""
            console.print(
                f"  [cyan]retrain[/]{escape(branch)}: {escape(str(retrained.get('status')))}"
            )
            if retrained.get("refused"):
                console.print(f"    [yellow]refused[/]: {escape(str(retrained['refused']))}")


@monitor_app.command("show")
def show(
    name: Annotated[str, typer.Argument(help="A monitor.")],
    limit: Annotated[int, typer.Option(min=1, help="How many windows.")] = 20,
) -> None:
    """A monitor's recent windows and alerts."""
    ws = _workspace(remote=True)
    windows = ws.store.monitoring.windows(name, limit=limit)
    if not windows:
        _console().print(f"monitor {escape(name)} has no windows yet: run headrace monitor run")
        _print_alerts(ws.store.monitoring.alerts(name, limit=10))
        return
    table = Table(box=None, header_style="bold")
    for column in ("window", "version", "rows", "labeled", "status", "drift share"):
        table.add_column(column)
    for w in windows:
        table.add_row(
            f"{_when(w.start)} .. {_when(w.end)}",
            str(w.version),
            f"{w.rows:,}",
            f"{w.labeled:,}",
            w.status,
            "-" if w.drift_share is None else f"{w.drift_share:.0%}",
        )
    _console().print(table)
    _print_alerts(ws.store.monitoring.alerts(name, limit=10))


def _print_alerts(alerts: list[Any], *, named: bool = False) -> None:
    for alert in alerts:
        state = " (suppressed)" if alert.suppressed else ""
        who = f"{escape(alert.monitor)} " if named else ""
        _console().print(
            f"{_when(alert.created_at)} {who}{escape(alert.key)}{state}: "
            f"{escape(alert.message.splitlines()[0])}",
            soft_wrap=True,
        )


def alerts(
    monitor: Annotated[
        str | None,
        typer.Option(help="Only this monitor's (freshness breaches: freshness:ASSET)."),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="How many, newest first.")] = 20,
) -> None:
    """Alerts, newest first: monitors' drift and performance alerts, and freshness
    breaches (``freshness:ASSET``)."""
    ws = _workspace(remote=True)
    found = ws.store.monitoring.alerts(monitor, limit=limit)
    if not found:
        _console().print("no alerts" + (f" of {escape(monitor)}" if monitor else ""))
        return
    _print_alerts(found, named=True)


@monitor_app.command("report")
def report(
    name: Annotated[str, typer.Argument(help="A monitor.")],
    output: Annotated[
        str | None,
        typer.Option("--output", "-o", help="The HTML file (default reports/NAME-monitor.html)."),
    ] = None,
) -> None:
    """Write a self-contained HTML report: drift per column with both distributions,
    drift share and performance over time."""
    from pathlib import Path

    from headrace.monitoring.report import write_report

    ws = _workspace()
    path = Path(output) if output else ws.settings.root / "reports" / f"{name}-monitor.html"
    written = write_report(ws, name, path)
    _console().print(f"wrote {escape(str(written))}")


def register(app: typer.Typer) -> None:
    app.add_typer(monitor_app, name="monitor")
    app.command()(alerts)

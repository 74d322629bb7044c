"""Rich rendering of runs, steps, logs and live progress."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

STATUS_STYLE = {
    "success": "green",
    "skipped": "cyan",
    "failed": "red",
    "upstream_failed": "yellow",
    "retrying": "magenta",
    "running": "blue",
    "pending": "dim",
    "canceled": "yellow",
}
STATUS_MARK = {
    "success": "✓",
    "skipped": "↷",
    "failed": "✗",
    "upstream_failed": "⊘",
    "retrying": "↻",
}
#: Above this many steps, only problems get a line of their own.
VERBOSE_LIMIT = 300


def when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def styled(status: str) -> str:
    return f"[{STATUS_STYLE.get(status, 'white')}]{status}[/]"


class LiveReporter:
    """A progress bar for the run and a line per finished step."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[current]}"),
            console=console,
            transient=True,
        )
        self.task: Any = None
        self.total = 0
        self.done = 0

    def run_started(self, run_id: str, total: int) -> None:
        self.total = total
        self.console.print(f"run [bold]{run_id}[/] · {total} step{'s' * (total != 1)}")
        self.progress.start()
        self.task = self.progress.add_task("materializing", total=total, current="")

    def step_started(self, key: str, attempt: int) -> None:
        suffix = f" (attempt {attempt})" if attempt > 1 else ""
        self.progress.update(self.task, current=escape(key) + suffix)

    def step_finished(
        self, key: str, status: str, duration_s: float | None, detail: str | None
    ) -> None:
        if status != "retrying":
            self.done += 1
            self.progress.update(self.task, completed=self.done)
        if self.total > VERBOSE_LIMIT and status in ("success", "skipped"):
            return
        mark = STATUS_MARK.get(status, "·")
        style = STATUS_STYLE.get(status, "white")
        text = f"[{style}]{mark} {escape(key)}[/] [dim]{seconds(duration_s)}[/]"
        if detail:
            text += f"  [dim]{escape(detail)}[/]"
        self.console.print(text, highlight=False)

    def run_finished(self, run_id: str, status: str) -> None:
        self.progress.stop()


def run_table(runs: list[Any], counts: dict[str, dict[str, int]]) -> Table:
    table = Table(box=None, header_style="bold")
    table.add_column("run", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("selection", overflow="fold")
    table.add_column("steps")
    table.add_column("trigger", no_wrap=True)
    table.add_column("started", no_wrap=True)
    table.add_column("duration", no_wrap=True, justify="right")
    for run in runs:
        c = counts.get(run.id, {})
        summary = " ".join(
            f"[{STATUS_STYLE.get(s, 'white')}]{n} {s}[/]" for s, n in sorted(c.items())
        )
        table.add_row(
            run.id[:16],
            styled(run.status),
            escape(run.selection),
            summary,
            run.trigger,
            when(run.started_at),
            seconds(run.duration_s),
        )
    return table


def show_run(console: Console, run: Any, steps: list[Any]) -> None:
    console.print(f"[bold]run {run.id}[/]  {styled(run.status)}")
    fields = [
        ("selection", run.selection),
        ("params", json.dumps(run.params) if run.params else "-"),
        ("partitions", ", ".join(run.partitions) if run.partitions else "-"),
        ("branch", run.branch),
        ("trigger", run.trigger),
        ("executor", f"{run.executor} (max concurrency {run.max_concurrency})"),
        ("started", when(run.started_at)),
        ("ended", when(run.ended_at)),
        ("duration", seconds(run.duration_s)),
    ]
    if run.error:
        fields.append(("error", run.error))
    for name, value in fields:
        console.print(f"  [dim]{name:<11}[/]{escape(str(value))}", highlight=False)
    table = Table(box=None, header_style="bold")
    table.add_column("step", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("attempts", justify="right")
    table.add_column("duration", no_wrap=True, justify="right")
    table.add_column("version", no_wrap=True)
    table.add_column("why", overflow="fold")
    for step in steps:
        table.add_row(
            escape(step.key),
            styled(step.status),
            str(step.attempts),
            seconds(step.duration_s),
            (step.version_id or "-")[:16],
            escape(step.reason or ""),
        )
    if steps:  # a tracked run outside pipelines has none
        console.print(table)
    for step in steps:
        if step.status == "failed":
            console.print(f"\n[red bold]✗ {escape(step.key)}[/]: {escape(step.error or '')}")
            if step.traceback:
                console.print(escape(step.traceback.rstrip()), style="dim", highlight=False)

"""CLI commands for data quality: the quarantine. Thin: each delegates to the services."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

quarantine_app = typer.Typer(
    help="Versions kept off their branch because a check failed.", no_args_is_help=True
)


def _console() -> Any:
    from headrace.cli.app import console

    return console


def _workspace() -> Any:
    from headrace.cli.app import _workspace as open_it

    return open_it()


@quarantine_app.command("list")
def quarantine_list(
    branch: Annotated[str | None, typer.Option(help="Only this branch.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Released and discarded too.")] = False,
) -> None:
    """List quarantined versions (held ones by default)."""
    from headrace.cli.render import when

    ws = _workspace()
    records = ws.store.quality.quarantined(branch=branch, status=None if all_ else "held")
    if not records:
        _console().print("nothing in quarantine")
        return
    table = Table(box=None, header_style="bold")
    for column in ("version", "asset", "branch", "status", "since", "why"):
        table.add_column(column, overflow="fold")
    for r in records:
        name = r.asset + (f"[{r.partition}]" if r.partition else "")
        table.add_row(
            r.version_id[:16],
            escape(name),
            escape(r.branch),
            r.status,
            when(r.created_at),
            escape(r.reason),
        )
    _console().print(table)


@quarantine_app.command("show")
def quarantine_show(
    version: Annotated[str, typer.Argument(help="A version id or prefix.")],
) -> None:
    """Show why a version is quarantined: each check, its observed value and failing rows."""
    ws = _workspace()
    full = ws.store.versions.get(version).id
    record = ws.store.quality.get_quarantined(full)
    console = _console()
    console.print(
        f"[bold]{escape(record.asset)}[/] version {full} on {escape(record.branch)}: "
        f"{record.status}"
    )
    for result in ws.store.quality.results(full):
        mark = (
            "[green]✓[/]"
            if result.passed
            else ("[red]✗[/]" if result.severity == "error" else "[yellow]![/]")
        )
        console.print(
            f"{mark} {escape(result.name)} [dim]({escape(result.threshold)})[/] "
            f"{escape(result.message or '')}"
        )
        key = ws.store.versions.get(full).primary_key
        shown = [c for c in (*key, *result.columns) if result.sample and c in result.sample[0]]
        for row in result.sample[:3]:
            trimmed = {c: row[c] for c in shown} if shown else row
            console.print(f"    [dim]{escape(json.dumps(trimmed, default=str)[:300])}[/]")


@quarantine_app.command("release")
def quarantine_release(version: Annotated[str, typer.Argument(help="A version id.")]) -> None:
    """Put a quarantined version on its branch after all (a person's decision, logged)."""
    from headrace.data.quarantine import release

    record = release(_workspace(), version)
    _console().print(
        f"released {record.version_id[:16]}: {escape(record.asset)} on "
        f"{escape(record.branch)} now points at it"
    )


@quarantine_app.command("discard")
def quarantine_discard(version: Annotated[str, typer.Argument(help="A version id.")]) -> None:
    """Keep a quarantined version off its branch for good."""
    from headrace.data.quarantine import discard

    record = discard(_workspace(), version)
    _console().print(f"discarded {record.version_id[:16]} ({escape(record.asset)})")


def register(app: typer.Typer) -> None:
    app.add_typer(quarantine_app, name="quarantine")

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


def _workspace(remote: bool = False) -> Any:
    from headrace.cli.app import _workspace as open_it

    return open_it(remote)


def _remote() -> Any:
    from headrace.cli.app import _remote as remote

    return remote()


@quarantine_app.command("list")
def quarantine_list(
    branch: Annotated[str | None, typer.Option(help="Only this branch.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Released and discarded too.")] = False,
) -> None:
    """List quarantined versions (held ones by default)."""
    from headrace.cli.render import when

    ws = _workspace(remote=True)
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

    remote = _remote()
    if remote is not None:
        from headrace.store.quality import QuarantineRecord

        record = QuarantineRecord(**remote.call("POST", f"/quarantine/{version}/release"))
    else:
        record = release(_workspace(), version)
    _console().print(
        f"released {record.version_id[:16]}: {escape(record.asset)} on "
        f"{escape(record.branch)} now points at it"
    )


@quarantine_app.command("discard")
def quarantine_discard(version: Annotated[str, typer.Argument(help="A version id.")]) -> None:
    """Keep a quarantined version off its branch for good."""
    from headrace.data.quarantine import discard

    remote = _remote()
    if remote is not None:
        from headrace.store.quality import QuarantineRecord

        record = QuarantineRecord(**remote.call("POST", f"/quarantine/{version}/discard"))
    else:
        record = discard(_workspace(), version)
    _console().print(f"discarded {record.version_id[:16]} ({escape(record.asset)})")


def _print_outcomes(outcomes: list[Any]) -> None:
    console = _console()
    for outcome in outcomes:
        version = outcome.version
        label = version.asset + (f"[{version.partition}]" if version.partition else "")
        report = outcome.report
        status = "[green]passed[/]" if report.success else "[red]failed[/]"
        console.print(
            f"[bold]{escape(label)}[/] {version.id[:16]} {status} "
            f"[dim]({len(report.results)} checks, {report.rows:,} rows, "
            f"{report.seconds * 1000:.0f} ms)[/]"
        )
        for result in report.failed:
            mark = "[red]✗[/]" if result.severity == "error" else "[yellow]![/]"
            console.print(
                f"  {mark} {escape(result.name)} [dim]({escape(result.threshold)})[/] "
                f"{escape(result.message)}"
            )


def check(
    asset: Annotated[str, typer.Argument(help="The asset whose checks run.")],
    version: Annotated[str | None, typer.Option(help="A version id (default: the heads).")] = None,
    branch: Annotated[str, typer.Option(help="Branch whose heads are checked.")] = "main",
) -> None:
    """Re-run an asset's checks on stored versions, without re-materializing them."""
    from headrace.orchestration.testing import check_asset

    outcomes = check_asset(_workspace(), asset, version=version, branch=branch)
    _print_outcomes(outcomes)
    if not all(o.report.success for o in outcomes):
        raise typer.Exit(1)


def test(
    selection: Annotated[str | None, typer.Argument(help="Assets to test (dbt-like).")] = None,
    branch: Annotated[str, typer.Option(help="Branch whose current versions are tested.")] = "main",
    junit_xml: Annotated[
        str | None, typer.Option("--junit-xml", help="Write a JUnit XML report here.")
    ] = None,
) -> None:
    """Test data like code: run the checks of SELECTION on a branch; exit 1 on any error."""
    from headrace.orchestration.testing import check_selection, write_junit

    run = check_selection(_workspace(), selection, branch=branch)
    _print_outcomes(run.outcomes)
    for name in run.untested:
        _console().print(f"[yellow]-[/] {escape(name)}: no version on {escape(branch)}")
    if junit_xml:
        write_junit(run, junit_xml)
    verdict = "passed" if run.success else "failed"
    _console().print(
        f"{run.checks} checks on {len(run.outcomes)} versions: {verdict}"
        f"{f', {run.errors} error failures' if run.errors else ''}"
    )
    if not run.success:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.add_typer(quarantine_app, name="quarantine")
    app.command()(check)
    app.command()(test)

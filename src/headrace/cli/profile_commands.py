"""CLI commands for profiles and quality reports. Thin: each delegates to
``headrace.quality.profiling`` and ``headrace.quality.report``."""

from __future__ import annotations

import math
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table


def _console() -> Any:
    from headrace.cli.app import console

    return console


def _workspace() -> Any:
    from headrace.cli.app import _workspace as open_it

    return open_it()


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.6g}" if math.isfinite(value) else str(value)
    text = str(value)
    return escape(text if len(text) <= 40 else text[:37] + "...")


def _profile_table(profile: Any) -> Table:
    table = Table(box=None, header_style="bold")
    table.add_column("column", overflow="fold", min_width=6)
    table.add_column("type", overflow="fold", min_width=6)
    for name in ("nulls", "distinct", "min", "max", "mean", "median"):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("top values", overflow="fold", min_width=10)
    for column in profile.columns:
        nulls = f"{column.nulls:,}"
        if profile.rows and column.nulls:
            nulls += f" ({column.null_fraction:.1%})"
        top = ", ".join(f"{_cell(v)} ({n:,})" for v, n in column.top_values[:5])
        table.add_row(
            escape(column.name),
            escape(column.dtype),
            nulls,
            _cell(column.distinct),
            _cell(column.min),
            _cell(column.max),
            _cell(column.mean),
            _cell(column.quantiles.get("0.5")),
            top or "-",
        )
    return table


def _label(record: Any) -> str:
    return str(record.asset) + (f"[{record.partition}]" if record.partition else "")


def profile(
    asset: Annotated[str, typer.Argument(help="The asset to profile.")],
    version: Annotated[
        str | None, typer.Option(help="A version id or prefix (default: the head).")
    ] = None,
    branch: Annotated[str, typer.Option(help="Branch whose head is profiled.")] = "main",
    partition: Annotated[
        str | None, typer.Option(help="Only this partition (default: every partition's head).")
    ] = None,
    suggest: Annotated[
        bool, typer.Option("--suggest", help="Write a starting YAML check suite from it.")
    ] = False,
    output: Annotated[
        str | None,
        typer.Option(help="Where --suggest writes (default: ASSET.checks.yaml in the project)."),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Let --suggest overwrite an existing file.")
    ] = False,
) -> None:
    """Profile a table version (type, nulls, distinct values, range, quantiles, top values,
    histogram per column) and store the profile with it.

    A partitioned asset is profiled partition by partition (each head is its own version);
    --suggest then writes checks that hold for every partition.
    """
    from headrace.quality.profile import ProfileError
    from headrace.quality.profiling import profile_asset, suite_path, write_suggestion

    if output is not None and not suggest:
        raise typer.BadParameter("--output names the suggested suite; add --suggest")
    ws = _workspace()
    if suggest and not force and suite_path(ws, asset, output).exists():  # before the work
        raise ProfileError(f"{suite_path(ws, asset, output)} already exists; pass --force")
    profiled = profile_asset(ws, asset, version=version, branch=branch, partition=partition)
    console = _console()
    if len(profiled) > 1:
        summary = Table(box=None, header_style="bold")
        for column in ("partition", "version", "rows", "columns", "ms"):
            summary.add_column(column, justify="right" if column in ("rows", "ms") else "left")
        for item in profiled:
            summary.add_row(
                escape(item.version.partition or "-"),
                item.version.id[:16],
                f"{item.profile.rows:,}",
                str(len(item.profile.columns)),
                f"{item.profile.seconds * 1000:,.0f}",
            )
        console.print(summary)
    last = profiled[-1]
    console.print(
        f"[bold]{escape(_label(last.version))}[/] {last.version.id[:16]}: "
        f"{last.profile.rows:,} rows, {len(last.profile.columns)} columns "
        f"[dim](profiled in {last.profile.seconds * 1000:,.0f} ms, stored)[/]"
    )
    console.print(_profile_table(last.profile))
    if len(profiled) > 1:
        console.print(
            f"[dim]{len(profiled)} partitions profiled and stored; shown: the last. "
            "--partition KEY shows another.[/]"
        )
    if suggest:
        path = write_suggestion(ws, asset, profiled, output=output, force=force, branch=branch)
        console.print(f"wrote {escape(str(path))}: a starting point, edit it before relying on it")
        if not path.name.endswith((".checks.yaml", ".checks.yml")):
            console.print(
                "[yellow]note:[/] only *.checks.yaml files in the project's folder are loaded"
            )


def report(
    asset: Annotated[str, typer.Argument(help="The asset to report on.")],
    branch: Annotated[str, typer.Option(help="Branch whose head is reported.")] = "main",
    partition: Annotated[
        str | None, typer.Option(help="The partition (default: the last one).")
    ] = None,
    version: Annotated[
        str | None, typer.Option(help="A version id or prefix (default: the head).")
    ] = None,
    output: Annotated[
        str | None, typer.Option(help="The HTML file (default: ASSET-report.html here).")
    ] = None,
) -> None:
    """Write a self-contained HTML quality report: the profile, the latest check results
    and a control chart of each check over the asset's versions."""
    from headrace.quality.report import write_report

    path = write_report(
        _workspace(), asset, output, branch=branch, partition=partition, version=version
    )
    _console().print(escape(str(path)), soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("profile")(profile)
    app.command("report")(report)

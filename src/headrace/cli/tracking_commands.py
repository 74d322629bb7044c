"""CLI commands for experiment tracking: search, compare and plot runs; experiments."""

from __future__ import annotations

import json
import math
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

experiments_app = typer.Typer(help="Experiments: groups of tracked runs.", no_args_is_help=True)


def _console() -> Any:
    from headrace.cli.app import console

    return console


def _workspace(remote: bool = False) -> Any:
    from headrace.cli.app import _workspace as open_it

    return open_it(remote)


def _number(value: Any) -> str:
    if isinstance(value, float):
        return "NaN" if math.isnan(value) else f"{value:.6g}"
    return escape(str(value))


def search(
    filter: Annotated[
        str | None,
        typer.Argument(help="e.g. \"metrics.auc > 0.8 AND params.model = 'gbm'\""),
    ] = None,
    experiment: Annotated[
        list[str] | None, typer.Option("--experiment", "-e", help="Only these experiments.")
    ] = None,
    order_by: Annotated[
        str | None, typer.Option("--order-by", help="e.g. 'metrics.auc DESC'.")
    ] = None,
    max_results: Annotated[int, typer.Option("--max", min=1, help="Runs per page.")] = 50,
    page_token: Annotated[str | None, typer.Option(help="Continue from a previous page.")] = None,
    columns: Annotated[
        str | None,
        typer.Option(help="Only load these, comma-separated: metrics.auc,params.lr,params.*"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False,
) -> None:
    """Search tracked runs with the filter language (see the README)."""
    ws = _workspace(remote=True)
    wanted = [c.strip() for c in columns.split(",") if c.strip()] if columns else None
    page = ws.store.tracking.search(
        experiments_=experiment or None,
        filter=filter,
        order_by=order_by,
        max_results=max_results,
        page_token=page_token,
        columns=wanted,
    )
    console = _console()
    if as_json:
        for run in page.runs:
            typer.echo(json.dumps(run.__dict__, default=str))
        if page.next_page_token:
            typer.echo(json.dumps({"next_page_token": page.next_page_token}))
        return
    if not page.runs:
        console.print("no runs match")
        return
    metric_keys = sorted({k for r in page.runs for k in r.metrics})
    param_keys = sorted({k for r in page.runs for k in r.params})
    table = Table(box=None, header_style="bold")
    table.add_column("run", no_wrap=True)
    for column in ("name", "experiment", "status"):
        table.add_column(column)
    for key in param_keys:
        table.add_column(escape(f"p.{key}"))
    for key in metric_keys:
        table.add_column(escape(f"m.{key}"), justify="right")
    for run in page.runs:
        table.add_row(
            run.id[:16],
            escape(run.name or "-"),
            escape(run.experiment or "-"),
            run.status,
            *(escape(run.params.get(k, "")) for k in param_keys),
            *(_number(run.metrics[k]) if k in run.metrics else "" for k in metric_keys),
        )
    console.print(table)
    if page.next_page_token:
        console.print(f"[dim]more: --page-token {page.next_page_token}[/]")


def compare(
    run_ids: Annotated[list[str], typer.Argument(help="Two or more run ids (or prefixes).")],
    plot: Annotated[
        str | None,
        typer.Option(help="Also plot the metric histories to this .png, .svg or .html file."),
    ] = None,
    metric: Annotated[
        list[str] | None, typer.Option("--metric", "-m", help="Only these metrics.")
    ] = None,
    csv: Annotated[
        str | None, typer.Option(help="Export the metric histories to this CSV file.")
    ] = None,
) -> None:
    """Params and metrics of runs side by side; metric histories as a plot or CSV."""
    from headrace.tracking.compare import compare_runs

    ws = _workspace()
    comparison = compare_runs(ws, run_ids, metrics=metric)
    table = Table(box=None, header_style="bold")
    table.add_column("")
    for run in comparison.runs:
        table.add_column(f"{run.id[:16]}\n{escape(run.name or '')}", no_wrap=True)
    for key in comparison.param_keys:
        values = [run.params.get(key) for run in comparison.runs]
        style = "" if len(set(values)) == 1 else "[yellow]"
        table.add_row(
            escape(f"params.{key}"),
            *(f"{style}{escape(v)}" if v is not None else "[dim]-[/]" for v in values),
        )
    for key in comparison.metric_keys:
        table.add_row(
            escape(f"metrics.{key}"),
            *(
                _number(run.metrics[key]) if key in run.metrics else "[dim]-[/]"
                for run in comparison.runs
            ),
        )
    console = _console()
    console.print(table)
    if csv:
        console.print(f"wrote {comparison.write_csv(csv)}")
    if plot:
        console.print(f"wrote {comparison.plot(plot)}")


@experiments_app.command("list")
def experiments_list() -> None:
    """List experiments with their number of runs."""
    from headrace.cli.render import when

    ws = _workspace(remote=True)
    found = ws.store.tracking.experiments()
    if not found:
        _console().print("no experiments yet")
        return
    counts = ws.store.tracking.run_counts()
    table = Table(box=None, header_style="bold")
    for column in ("experiment", "runs", "created"):
        table.add_column(column)
    for e in found:
        table.add_row(escape(e.name), str(counts.get(e.id, 0)), when(e.created_at))
    _console().print(table)


def register(app: typer.Typer, runs_app: typer.Typer) -> None:
    app.add_typer(experiments_app, name="experiments")
    runs_app.command("search")(search)
    runs_app.command("compare")(compare)

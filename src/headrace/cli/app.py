"""``headrace``: the command line. Commands stay thin and delegate to the services."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from headrace.cli import (
    automation_commands,
    data_commands,
    deadletter_commands,
    governance_commands,
    keys_commands,
    model_commands,
    monitor_commands,
    profile_commands,
    quality_commands,
    serve_commands,
    tracking_commands,
)

app = typer.Typer(
    name="headrace",
    help="Pipelines, data quality, data versions, tracking, registry, serving, monitoring.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
assets_app = typer.Typer(help="Inspect asset definitions.", no_args_is_help=True)
runs_app = typer.Typer(help="Inspect, follow and resume runs.", no_args_is_help=True)
app.add_typer(assets_app, name="assets")
app.add_typer(runs_app, name="runs")
data_commands.register(app)
quality_commands.register(app)
profile_commands.register(app)
tracking_commands.register(app, runs_app)
model_commands.register(app)
serve_commands.register(app)
monitor_commands.register(app)
governance_commands.register(app)
automation_commands.register(app)
deadletter_commands.register(app)
keys_commands.register(app)

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)
_state: dict[str, Any] = {"debug": False}


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks.")] = False,
) -> None:
    _state["debug"] = debug


def _remote() -> Any:
    """The team server ``HEADRACE_URL`` names (with ``HEADRACE_TOKEN``), or None."""
    from headrace.client import Remote

    return Remote.from_environment()


def _workspace(remote: bool = False) -> Any:
    """The local workspace; with ``remote``, the team server's view of it when
    ``HEADRACE_URL`` is set (the commands that support it say so)."""
    import os

    from headrace.runtime.workspace import open_workspace

    if os.environ.get("HEADRACE_URL"):
        if remote:
            from headrace.client import RemoteWorkspace

            return RemoteWorkspace(_remote())
        if not _state.get("warned"):
            _state["warned"] = True
            err_console.print(
                "[dim]HEADRACE_URL is set, but this command works on the local workspace[/]"
            )
    return open_workspace()


def _parse_params(values: list[str]) -> dict[str, str]:
    from headrace.core.errors import ParamValidationError

    params: dict[str, str] = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ParamValidationError(
                f"--param {item!r} must look like NAME=VALUE", param=name or item
            )
        params[name.strip()] = value
    return params


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(help="Folder of the new workspace.")] = Path("."),
    module: Annotated[str, typer.Option(help="Module holding the assets.")] = "pipeline",
    path: Annotated[
        str, typer.Option(help="Folder the module is imported from, relative to DIRECTORY.")
    ] = ".",
) -> None:
    """Create headrace.toml and .headrace/ in DIRECTORY."""
    from headrace.workspace.settings import init_workspace

    root, created = init_workspace(directory, module=module, path=path)
    from headrace.runtime.workspace import open_workspace

    with open_workspace(root) as ws:  # create the metadata store and the object folders now
        ws.store  # noqa: B018
        # The folders only: encryption, if wanted, is turned on next by 'headrace keys init'.
        ws.objects_config.plain().prepare()
    if created:
        console.print(f"created workspace in {root} (headrace.toml, .headrace/)")
    else:
        console.print(f"{root} already has headrace.toml; kept it and ensured .headrace/")


@assets_app.command("list")
def assets_list(
    selection: Annotated[str | None, typer.Argument(help="Selection, e.g. +features.")] = None,
) -> None:
    """List the project's assets."""

    from headrace.core.selection import select

    remote = _remote()
    if remote is not None:
        try:
            rows = remote.pages("/assets", "assets", {"select": selection})
        finally:
            remote.close()
        _assets_table(
            [
                (
                    a["name"],
                    a["group"],
                    a["partitions"] or "-",
                    a["upstream"],
                    a["tags"],
                    a["owner"],
                    a["description"],
                )
                for a in rows
            ]
        )
        return
    ws = _workspace()
    names = select(ws.graph, selection)
    shown = []
    for name in names:
        spec = ws.graph[name]
        parts = spec.partitions
        partitions = (
            "-" if parts is None else type(parts).__name__.replace("Partitions", "").lower()
        )
        shown.append(
            (
                name,
                spec.group,
                partitions,
                list(spec.upstream_names),
                list(spec.tags),
                spec.owner,
                spec.description,
            )
        )
    _assets_table(shown)


def _assets_table(rows: list[tuple[Any, ...]]) -> None:
    from rich.table import Table

    table = Table(box=None, header_style="bold")
    table.add_column("asset", no_wrap=True)
    for column in ("group", "partitions", "upstream", "tags", "owner"):
        table.add_column(column, ratio=1, overflow="fold")
    table.add_column("description", ratio=3, overflow="fold")
    for name, group, partitions, upstream, tags, owner, description in rows:
        table.add_row(
            name,
            group,
            partitions,
            ", ".join(upstream) or "-",
            " ".join(tags) or "-",
            owner or "-",
            description,
        )
    console.print(table)
    console.print(f"[dim]{len(rows)} asset{'s' * (len(rows) != 1)}[/]")


def _run(
    backfill: bool,
    selection: str | None,
    params: list[str],
    partition: list[str],
    branch: str,
    executor: str | None,
    max_concurrency: int | None,
    force: bool,
    exclude: str | None = None,
) -> None:
    from headrace.cli.render import LiveReporter
    from headrace.orchestration import service

    remote = _remote()
    if remote is not None:
        if executor is not None or max_concurrency is not None:
            raise typer.BadParameter(
                "the team server (HEADRACE_URL) runs with its own executor settings",
                param_hint="--executor / --max-concurrency",
            )
        result = _run_remotely(
            remote, backfill, selection, params, partition, branch, force, exclude
        )
        _summarise(result)
        return
    ws = _workspace()
    result = service.materialize(
        ws,
        selection,
        exclude=exclude,
        params=_parse_params(params),
        partitions=partition or None,
        branch=branch,
        executor=executor,
        max_concurrency=max_concurrency,
        force=force,
        missing_only=backfill,
        trigger="backfill" if backfill else "cli",
        reporter=LiveReporter(console),
    )
    _summarise(result)


def _run_remotely(
    remote: Any,
    backfill: bool,
    selection: str | None,
    params: list[str],
    partition: list[str],
    branch: str,
    force: bool,
    exclude: str | None,
) -> Any:
    """Start the run in the team server and follow it with a progress bar."""
    return _follow_remotely(
        remote,
        lambda show: remote.materialize(
            selection,
            params=_parse_params(params),
            partitions=partition or None,
            branch=branch,
            force=force,
            missing_only=backfill,
            exclude=exclude,
            on_progress=show,
        ),
    )


def _follow_remotely(remote: Any, start: Any) -> Any:
    """``start(on_progress)`` a run in the team server, following it with a progress bar."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    done_states = {"success", "failed", "skipped", "upstream_failed", "cached", "canceled"}
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task(f"run in {remote.url}", total=None)

        def show(run: dict[str, Any]) -> None:
            steps = run["step_records"]
            finished = sum(1 for s in steps if s["status"] in done_states)
            progress.update(
                task, total=len(steps), completed=finished, description=f"run {run['id'][:12]}"
            )

        try:
            result = start(show)
        finally:
            remote.close()
    from rich.markup import escape

    for key, state in result.steps.items():  # what the live reporter shows locally
        if state.status == "failed":
            console.print(f"[red]✗ {escape(key)}[/]: {escape(state.error or 'failed')}")
    return result


def _summarise(result: Any) -> None:
    counts: dict[str, int] = {}
    for state in result.steps.values():
        counts[state.status] = counts.get(state.status, 0) + 1
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "nothing to do"
    style = "green" if result.success else "red"
    console.print(f"[{style}]run {result.run_id} {result.status}[/]: {summary}")
    if not result.success:
        console.print(f"[dim]see: headrace runs show {result.run_id}[/]")
        raise typer.Exit(1)


ParamOpt = Annotated[
    list[str], typer.Option("--param", "-p", help="A run param NAME=VALUE (repeatable).")
]
PartitionOpt = Annotated[
    list[str], typer.Option("--partition", help="A partition KEY or a range A..B (repeatable).")
]
BranchOpt = Annotated[str, typer.Option(help="Branch to read and write.")]
ExecutorOpt = Annotated[
    str | None, typer.Option(help="in_process, threads or processes (default: settings).")
]
ConcurrencyOpt = Annotated[
    int | None, typer.Option("--max-concurrency", "-j", min=1, help="Steps run at once.")
]
ExcludeOpt = Annotated[
    str | None, typer.Option(help="Leave these assets out (same syntax as the selection).")
]


@app.command()
def materialize(
    selection: Annotated[str | None, typer.Argument(help="Assets to run (dbt-like).")] = None,
    param: ParamOpt = [],  # noqa: B006 - typer reads the default
    partition: PartitionOpt = [],  # noqa: B006
    branch: BranchOpt = "main",
    executor: ExecutorOpt = None,
    max_concurrency: ConcurrencyOpt = None,
    force: Annotated[bool, typer.Option(help="Ignore cached versions.")] = False,
    exclude: ExcludeOpt = None,
) -> None:
    """Materialize SELECTION, showing each step live."""
    _run(False, selection, param, partition, branch, executor, max_concurrency, force, exclude)


@app.command()
def backfill(
    selection: Annotated[str | None, typer.Argument(help="Assets to run (dbt-like).")] = None,
    partition: PartitionOpt = [],  # noqa: B006
    param: ParamOpt = [],  # noqa: B006
    branch: BranchOpt = "main",
    executor: ExecutorOpt = None,
    max_concurrency: ConcurrencyOpt = None,
    exclude: ExcludeOpt = None,
) -> None:
    """Materialize each partition in the range that has no version yet."""
    if not partition:
        raise typer.BadParameter("give the range with --partition A..B", param_hint="--partition")
    _run(True, selection, param, partition, branch, executor, max_concurrency, False, exclude)


@runs_app.command("list")
def runs_list(
    limit: Annotated[int, typer.Option(min=1, help="How many runs.")] = 20,
    offset: Annotated[int, typer.Option(min=0, help="Skip this many.")] = 0,
    status: Annotated[str | None, typer.Option(help="Only runs with this status.")] = None,
) -> None:
    """List recent runs, newest first."""
    from headrace.cli.render import run_table

    ws = _workspace(remote=True)
    runs = ws.store.runs.list(limit=limit, offset=offset, status=status)
    if not runs:
        console.print("no runs yet")
        return
    console.print(run_table(runs, ws.store.runs.step_counts(r.id for r in runs)))


@runs_app.command("show")
def runs_show(run_id: Annotated[str, typer.Argument(help="Run id (or a unique prefix).")]) -> None:
    """Show a run: params, each step's status, timing, version, and errors."""
    from headrace.cli.render import show_run

    ws = _workspace(remote=True)
    run = ws.store.runs.get(run_id)
    show_run(console, run, ws.store.runs.steps(run.id))
    from rich.markup import escape

    tracking = ws.store.tracking
    for title, values in (
        ("params", tracking.params(run.id)),
        ("metrics", {k: f"{v:.6g}" for k, v in tracking.metrics(run.id).items()}),
        ("tags", tracking.tags(run.id)),
    ):
        if values:
            shown = ", ".join(f"{k}={v}" for k, v in sorted(values.items()))
            console.print(f"[bold]{title}[/] {escape(shown)}")
    for version in ws.store.registry.for_run(run.id):
        console.print(f"[bold]model[/] {escape(version.name)} version {version.version}")


@runs_app.command("logs")
def runs_logs(
    run_id: Annotated[str, typer.Argument(help="Run id (or a unique prefix).")],
    step: Annotated[str | None, typer.Argument(help="An asset or a step key.")] = None,
) -> None:
    """Print the captured stdout, stderr and log records of a run's steps."""
    from rich.markup import escape

    ws = _workspace(remote=True)
    run = ws.store.runs.get(run_id)
    logs = ws.store.runs.logs(run.id)
    if step is not None:
        keys = {s.key for s in ws.store.runs.steps(run.id) if s.key == step or s.asset == step}
        if not keys:
            from headrace.core.errors import SelectionError

            raise SelectionError(f"run {run.id} has no step or asset named {step!r}")
        logs = [entry for entry in logs if entry.step_key in keys]
    if not logs:
        console.print("no output was captured")
        return
    last: tuple[str, int] | None = None
    for entry in logs:
        if (entry.step_key, entry.attempt) != last:
            last = (entry.step_key, entry.attempt)
            console.print(f"[bold]── {escape(entry.step_key)} · attempt {entry.attempt}[/]")
        style = {"stderr": "red", "log": "cyan"}.get(entry.stream, "")
        for line in entry.text.rstrip("\n").split("\n"):
            console.print(
                f"[dim]{entry.stream:>6}[/] [{style}]{escape(line)}[/]"
                if style
                else f"[dim]{entry.stream:>6}[/] {escape(line)}"
            )


@runs_app.command("resume")
def runs_resume(
    run_id: Annotated[str, typer.Argument(help="Run id (or a unique prefix).")],
) -> None:
    """Finish an interrupted or failed run without redoing completed steps."""
    from headrace.cli.render import LiveReporter
    from headrace.orchestration import service

    remote = _remote()
    if remote is not None:
        result = _follow_remotely(remote, lambda show: remote.resume(run_id, on_progress=show))
    else:
        result = service.resume(_workspace(), run_id, reporter=LiveReporter(console))
    style = "green" if result.success else "red"
    console.print(f"[{style}]run {result.run_id} {result.status}[/]")
    if not result.success:
        raise typer.Exit(1)


def main() -> None:
    """Entry point: one clear line for headrace errors, a traceback only with --debug."""
    from headrace.errors import HeadraceError

    try:
        app()
    except HeadraceError as exc:
        if _state["debug"]:
            raise
        from rich.markup import escape

        err_console.print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True)
        sys.exit(1)
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/]")
        sys.exit(130)

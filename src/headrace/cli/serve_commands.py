"""``headrace serve``: the scoring server; ``headrace predictions``: its log."""

from __future__ import annotations

import json
import os
from typing import Annotated, Any

import typer
from rich.markup import escape

predictions_app = typer.Typer(help="The prediction log of served models.", no_args_is_help=True)


def _console() -> Any:
    from headrace.cli.app import console

    return console


def serve(
    uri: Annotated[str, typer.Argument(help="NAME@ALIAS, NAME/VERSION or NAME.")],
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 5000,
    workers: Annotated[int, typer.Option(min=1, help="Server processes.")] = 1,
    max_body_mb: Annotated[float, typer.Option(help="Largest request body, in MiB.")] = 10.0,
    no_log: Annotated[bool, typer.Option("--no-log", help="Do not log predictions.")] = False,
    allow_pickle: Annotated[
        bool, typer.Option(help="Serve a pickled model (loading it runs its code).")
    ] = False,
    canary: Annotated[
        str | None,
        typer.Option(help="ALIAS:PERCENT of requests to another version, e.g. challenger:10."),
    ] = None,
    shadow: Annotated[
        str | None, typer.Option(help="ALIAS scored on every request, logged, not returned.")
    ] = None,
    batch_max_size: Annotated[
        int, typer.Option(min=1, help="Micro-batching: rows scored together (1: off).")
    ] = 1,
    batch_max_wait_ms: Annotated[
        float, typer.Option(min=0, help="Micro-batching: longest wait for a batch to fill.")
    ] = 2.0,
    trusted: Annotated[
        list[str], typer.Option(help="A type the model's skops file may hold (repeatable).")
    ] = [],  # noqa: B006 - typer reads the default
    tls_cert: Annotated[
        str | None, typer.Option(help="Listen over HTTPS: the PEM certificate chain.")
    ] = None,
    tls_key: Annotated[str | None, typer.Option(help="The PEM private key of --tls-cert.")] = None,
) -> None:
    """Serve a registered model over HTTP (the MLflow scoring protocol and more).

    SIGTERM drains it: requests in flight finish, new ones get 503, then it exits."""
    from headrace.registry.service import load_model, resolve
    from headrace.runtime.listening import listen, tls_files
    from headrace.runtime.workspace import open_workspace

    ws = open_workspace()
    tls = tls_files(tls_cert, tls_key, ws.settings)
    record = resolve(ws, uri)  # an unknown model or alias fails here, before listening
    load_model(ws, uri, allow_pickle=allow_pickle, trusted=trusted)  # and one unsafe to load
    split = None
    if canary is not None:
        alias, _, share = canary.partition(":")
        try:
            percent = float(share)
        except ValueError:
            percent = -1.0
        if not alias or not 0 < percent < 100:
            raise typer.BadParameter(
                f"{canary!r}: expected ALIAS:PERCENT with a percent between 0 and 100, "
                "e.g. challenger:10",
                param_hint="--canary",
            )
        resolve(ws, f"{record.name}@{alias}")
        split = [alias, percent]
    if shadow is not None:
        resolve(ws, f"{record.name}@{shadow}")
    root = str(ws.settings.root)
    ws.close()
    os.environ["HEADRACE_SERVE_CONFIG"] = json.dumps(
        {
            "root": root,
            "uri": uri,
            "max_body": int(max_body_mb * 1024 * 1024),
            "log": not no_log,
            "allow_pickle": allow_pickle,
            "canary": split,
            "shadow": shadow,
            "batch_max_rows": batch_max_size,
            "batch_max_wait_ms": batch_max_wait_ms,
            "trusted": list(trusted),
        }
    )
    _console().print(
        f"serving {escape(record.name)} version {record.version} ({escape(uri)}) on "
        f"{'https' if tls else 'http'}://{host}:{port} with {workers} worker(s)"
    )
    listen("headrace.serving.app:from_environment", host=host, port=port, workers=workers, tls=tls)


@predictions_app.command("list")
def predictions_list(
    model: Annotated[str, typer.Argument(help="A registered model.")],
    limit: Annotated[int, typer.Option(min=1, help="How many.")] = 20,
) -> None:
    """The latest logged predictions of a model."""
    from headrace.cli.app import _workspace
    from headrace.cli.render import when

    ws = _workspace(remote=True)
    rows = ws.store.predictions.list(model, limit=limit, latest=True)
    for r in rows:
        _console().print(
            f"{when(r.created_at)} {r.request_id[:16]}:{r.row} v{r.version} {r.role} "
            f"{escape(json.dumps(r.output))} label={escape(json.dumps(r.label))}"
        )
    _console().print(f"[dim]{ws.store.predictions.count(model):,} logged in all[/]")


@predictions_app.command("label")
def predictions_label(
    model: Annotated[str, typer.Argument(help="A registered model.")],
    file: Annotated[
        str, typer.Argument(help="A CSV with an id column (request id or key) and a label column.")
    ],
    by: Annotated[
        str, typer.Option(help="What the id column holds: request_id or key.")
    ] = "request_id",
    id_column: Annotated[str, typer.Option(help="The id column.")] = "id",
    label_column: Annotated[str, typer.Option(help="The label column.")] = "label",
) -> None:
    """Attach ground-truth labels to logged predictions."""
    import polars as pl

    from headrace.cli.app import _workspace
    from headrace.serving.formats import ScoringInputError

    table = pl.read_csv(file, infer_schema_length=None)
    for column in (id_column, label_column):
        if column not in table.columns:
            raise ScoringInputError(
                f"{file} has no column {column!r}; it has {', '.join(table.columns)}",
                field=column,
            )
    pairs = [(str(i), v) for i, v in zip(table[id_column], table[label_column], strict=True)]
    store = _workspace().store
    before = store.deadletters.count("labels")
    done = store.predictions.label(model, pairs, by=by)
    _console().print(f"labeled {done:,} predictions of {escape(model)} ({len(pairs):,} labels)")
    refused = store.deadletters.count("labels") - before
    if refused:
        _console().print(
            f"[red]{refused:,} labels were refused by the database[/]; see them with: "
            "headrace deadletters list --writer labels"
        )


@predictions_app.command("load")
def predictions_load(
    file: Annotated[
        str, typer.Argument(help="A file of rows a server could not log (.headrace/unlogged/).")
    ],
) -> None:
    """Write rows a scoring server kept in a file because the store was unreachable."""
    from headrace.cli.app import _workspace
    from headrace.serving.unlogged import load_unlogged

    loaded = load_unlogged(_workspace().store, file)
    _console().print(
        f"loaded {loaded.written:,} prediction rows from {escape(file)}; "
        f"{loaded.present:,} were already logged, {loaded.dead_lettered:,} dead-lettered"
    )


def predict(
    uri: Annotated[str, typer.Argument(help="NAME@ALIAS, NAME/VERSION or NAME.")],
    input: Annotated[str, typer.Option("--input", "-i", help="An asset, or a .parquet/.csv file.")],
    output: Annotated[
        str, typer.Option("--output", "-o", help="The asset the result becomes a version of.")
    ],
    branch: Annotated[
        str, typer.Option(help="Branch to read the input from and write to.")
    ] = "main",
    chunk_rows: Annotated[int, typer.Option(min=1, help="Rows scored at once.")] = 100_000,
    keep: Annotated[
        str | None,
        typer.Option(help="Input columns kept beside the predictions (comma-separated)."),
    ] = None,
    allow_pickle: Annotated[bool, typer.Option(help="Allow a pickled model.")] = False,
) -> None:
    """Score a whole table with a registered model; the result is a versioned table."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from headrace.cli.app import _workspace
    from headrace.serving.batch import score_table

    ws = _workspace()
    console = _console()
    with Progress(
        TextColumn("[bold]scoring"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("rows", total=None)

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        result = score_table(
            ws,
            uri,
            input,
            output,
            branch=branch,
            chunk_rows=chunk_rows,
            keep=[c.strip() for c in keep.split(",")] if keep else None,
            progress=advance,
            allow_pickle=allow_pickle,
        )
    console.print(
        f"scored {result.rows:,} rows with {escape(result.model)} version {result.version} "
        f"in {result.seconds:.2f} s: {escape(output)} version {result.output.id[:16]} on "
        f"{escape(branch)}"
    )


def register(app: typer.Typer) -> None:
    app.command()(serve)
    app.command()(predict)
    app.add_typer(predictions_app, name="predictions")

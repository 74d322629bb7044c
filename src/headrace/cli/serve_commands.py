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
) -> None:
    """Serve a registered model over HTTP (the MLflow scoring protocol and more)."""
    import uvicorn

    from headrace.registry.service import resolve
    from headrace.runtime.workspace import open_workspace

    ws = open_workspace()
    record = resolve(ws, uri)  # an unknown model or alias fails here, before listening
    root = str(ws.settings.root)
    ws.close()
    os.environ["HEADRACE_SERVE_CONFIG"] = json.dumps(
        {
            "root": root,
            "uri": uri,
            "max_body": int(max_body_mb * 1024 * 1024),
            "log": not no_log,
            "allow_pickle": allow_pickle,
        }
    )
    _console().print(
        f"serving {escape(record.name)} version {record.version} ({escape(uri)}) on "
        f"http://{host}:{port} with {workers} worker(s)"
    )
    uvicorn.run(
        "headrace.serving.app:from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=30,
    )


@predictions_app.command("list")
def predictions_list(
    model: Annotated[str, typer.Argument(help="A registered model.")],
    limit: Annotated[int, typer.Option(min=1, help="How many.")] = 20,
) -> None:
    """The latest logged predictions of a model."""
    from headrace.cli.app import _workspace
    from headrace.cli.render import when

    ws = _workspace()
    rows = ws.store.predictions.list(model, limit=limit)
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
    done = _workspace().store.predictions.label(model, pairs, by=by)
    _console().print(f"labeled {done:,} predictions of {escape(model)} ({len(pairs):,} labels)")


def register(app: typer.Typer) -> None:
    app.command()(serve)
    app.add_typer(predictions_app, name="predictions")

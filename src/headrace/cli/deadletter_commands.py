"""``headrace deadletters``: rows the database refused from a buffered writer (the
prediction log, tracked runs), kept with the reason instead of lost."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.markup import escape

deadletters_app = typer.Typer(
    help="Rows the database refused (prediction log, tracked runs), with why.",
    no_args_is_help=True,
)


def _console() -> Any:
    from headrace.cli.app import console

    return console


@deadletters_app.command("list")
def deadletters_list(
    writer: Annotated[
        str | None, typer.Option(help="Only this writer's: predictions or tracking.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="How many.")] = 20,
    after: Annotated[int, typer.Option(min=0, help="Only letters with a larger id.")] = 0,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per line, with the whole row.")
    ] = False,
) -> None:
    """Dead letters, oldest first: the writer, the reason, and the refused row."""
    from headrace.cli.app import _workspace
    from headrace.cli.render import when

    store = _workspace().store
    letters = store.deadletters.list(writer=writer, limit=limit, after=after)
    if as_json:
        for letter in letters:
            line = {
                "id": letter.id,
                "writer": letter.writer,
                "reason": letter.reason,
                "created_at": letter.created_at,
                "payload": letter.payload,
            }
            typer.echo(json.dumps(line, ensure_ascii=True, sort_keys=True))
        return
    for letter in letters:
        row = json.dumps(letter.payload, ensure_ascii=True, sort_keys=True)
        _console().print(
            f"{letter.id} {when(letter.created_at)} {letter.writer}: {escape(letter.reason)}\n"
            f"    [dim]{escape(row)}[/]",
            soft_wrap=True,
        )
    total = store.deadletters.count(writer)
    _console().print(f"[dim]{total:,} dead letters in all[/]")


def register(app: typer.Typer) -> None:
    app.add_typer(deadletters_app, name="deadletters")

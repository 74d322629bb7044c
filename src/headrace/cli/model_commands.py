"""CLI commands for the model registry. Thin: each delegates to the registry services."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

models_app = typer.Typer(
    help="Registered models, versions, aliases, promotion.", no_args_is_help=True
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


@models_app.command("list")
def models_list() -> None:
    """List registered models with their newest version and aliases."""
    ws = _workspace(remote=True)
    names = ws.store.registry.names()
    if not names:
        _console().print("no registered models yet")
        return
    table = Table(box=None, header_style="bold")
    for column in ("model", "versions", "newest", "aliases"):
        table.add_column(column)
    for name in names:
        versions = ws.store.registry.versions(name)
        aliases = ", ".join(f"{a}→{v.version}" for v in versions for a in v.aliases)
        table.add_row(
            escape(name),
            str(len(versions)),
            str(versions[-1].version if versions else "-"),
            escape(aliases or "-"),
        )
    _console().print(table)


def _versions_table(versions: list[Any]) -> Table:
    from headrace.cli.render import when

    table = Table(box=None, header_style="bold")
    for column in ("version", "status", "aliases", "flavor", "class", "run", "created", "by"):
        table.add_column(column)
    for v in versions:
        table.add_row(
            str(v.version),
            v.status,
            escape(", ".join(v.aliases) or "-"),
            v.flavor,
            escape(v.model_class.rsplit(".", 1)[-1]),
            (v.run_id or "-")[:16],
            when(v.created_at),
            escape(v.created_by or "-"),
        )
    return table


@models_app.command("versions")
def models_versions(name: Annotated[str, typer.Argument(help="A registered model.")]) -> None:
    """A model's versions: status, aliases, flavor, training run."""
    _console().print(_versions_table(_workspace(remote=True).store.registry.versions(name)))


@models_app.command("show")
def models_show(
    name: Annotated[str, typer.Argument(help="NAME, NAME@ALIAS or NAME/VERSION.")],
) -> None:
    """A model version: its signature, run and data; and the model's recent history."""
    from headrace.cli.render import when
    from headrace.registry.service import parse_uri, resolve

    ws = _workspace()
    record = resolve(ws, name)
    console = _console()
    console.print(
        f"[bold]{escape(record.name)}[/] version {record.version} · {record.status} · "
        f"{record.flavor} ({escape(record.model_class)}) · "
        f"aliases: {escape(', '.join(record.aliases) or '-')}"
    )
    if record.signature:
        inputs = ", ".join(
            f"{c['name']}: {c['type']}{'' if c['nullable'] else ' not null'}"
            for c in record.signature["inputs"]
        )
        console.print(f"  inputs: {escape(inputs)}")
        console.print(f"  output: {escape(str(record.signature.get('output') or '?'))}")
    console.print(f"  run: {record.run_id or '-'}   data versions: {len(record.data_versions)}")
    model_name = parse_uri(name)[0]
    console.print("[bold]history[/]")
    for event in ws.store.registry.events(model_name, limit=12):
        what = {
            "alias": f"{event.alias}: {event.from_value or '∅'} → {event.to_value}",
            "override": f"{event.alias}: {event.from_value or '∅'} → {event.to_value} "
            "OVERRIDING its policy",
            "refused": f"{event.alias} refused version {event.version}",
            "rollback": f"{event.alias} rolled back: {event.from_value} → {event.to_value}",
            "status": f"version {event.version}: {event.from_value} → {event.to_value}",
            "registered": f"version {event.version} registered",
        }.get(event.kind, f"{event.kind} {event.alias or ''} version {event.version}")
        why = f" [dim]({escape(event.reason)})[/]" if event.reason else ""
        console.print(
            f"  {when(event.created_at)} {escape(event.actor or '?')}: {escape(what)}{why}"
        )


@models_app.command("lineage")
def models_lineage(uri: Annotated[str, typer.Argument(help="NAME@ALIAS or NAME/VERSION.")]) -> None:
    """Where a model version came from: run, params, metrics, data versions and checks."""
    from headrace.cli.render import when
    from headrace.registry.service import lineage

    info = lineage(_workspace(), uri)
    console = _console()
    model = info.model
    console.print(f"[bold]{escape(model.name)}[/] version {model.version} ({model.status})")
    if info.run is not None:
        console.print(f"  run {info.run.id} · {info.run.status} · {when(info.run.created_at)}")
    if info.params:
        console.print(
            "  params: " + escape(", ".join(f"{k}={v}" for k, v in sorted(info.params.items())))
        )
    if info.metrics:
        console.print(
            "  metrics: "
            + escape(", ".join(f"{k}={v:.6g}" for k, v in sorted(info.metrics.items())))
        )
    if not info.data:
        console.print("  [yellow]no training data versions recorded[/]")
    for version, failed, checks in info.data:
        label = version.asset + (f"[{version.partition}]" if version.partition else "")
        state = (
            f"[red]{failed} error checks failed[/]"
            if failed
            else (f"[green]{checks} checks passed[/]" if checks else "[dim]no checks[/]")
        )
        rows = f"{version.row_count:,} rows" if version.row_count is not None else version.format
        console.print(
            f"  data {escape(label)} {version.id[:16]} · {rows} · "
            f"{when(version.created_at)} · {state}"
        )


@models_app.command("alias")
def models_alias(
    name: Annotated[str, typer.Argument(help="A registered model.")],
    alias: Annotated[str, typer.Argument(help="An alias (champion, challenger, any name).")],
    version: Annotated[int, typer.Argument(help="The version it points at.")],
    reason: Annotated[str | None, typer.Option(help="Why (kept in the history).")] = None,
    override: Annotated[
        bool,
        typer.Option(
            "--override",
            help="Move a guarded alias past its policy's refusal (needs --reason and the "
            "maintainer role; audited with the rules it overrode).",
        ),
    ] = False,
) -> None:
    """Point an alias at a version (recorded). A guarded alias (champion, or one a
    promotion policy promotes to) moves only if its policy passes, or with --override."""
    from headrace.monitoring.retraining import set_alias

    remote = _remote()
    if remote is not None:
        before = remote.set_alias(name, alias, version, reason=reason, override=override)
    else:
        before = set_alias(_workspace(), name, alias, version, reason=reason, override=override)
    note = " (override: audited)" if override else ""
    _console().print(f"{escape(name)}@{escape(alias)}: {before or '∅'} → {version}{note}")


@models_app.command("rollback")
def models_rollback(
    name: Annotated[str, typer.Argument(help="A registered model.")],
    alias: Annotated[str, typer.Option(help="The alias to move back.")] = "champion",
    reason: Annotated[str | None, typer.Option(help="Why (kept in the history).")] = None,
) -> None:
    """Move an alias back to the version it pointed at before its last move."""
    from headrace.registry.service import rollback

    current, previous = rollback(_workspace(), name, alias, reason=reason)
    _console().print(f"{escape(name)}@{escape(alias)}: {current} → {previous} (rolled back)")


@models_app.command("transition")
def models_transition(
    name: Annotated[str, typer.Argument(help="A registered model.")],
    version: Annotated[int, typer.Argument(help="The version.")],
    status: Annotated[str, typer.Argument(help="candidate, approved, production or retired.")],
    reason: Annotated[str | None, typer.Option(help="Why (kept in the history).")] = None,
) -> None:
    """Move a version along its lifecycle: candidate → approved → production → retired."""
    from headrace.registry.service import transition

    remote = _remote()
    if remote is not None:
        answer = remote.call(
            "POST",
            f"/models/{name}/versions/{version}/transition",
            json={"status": status, "reason": reason},
        )
        before = answer["previous"]
    else:
        before = transition(_workspace(), name, version, status, reason=reason)
    _console().print(f"{escape(name)} version {version}: {before} → {status}")


def _remote_outcome(answer: dict[str, Any]) -> Any:
    """A promotion outcome from the team server, shaped as the local one."""
    from types import SimpleNamespace as Shape

    evaluation = Shape(
        name=answer["name"],
        alias=answer["alias"],
        candidate=Shape(version=answer["candidate"]),
        holder=None if answer["holder"] is None else Shape(version=answer["holder"]),
        policy=answer["policy"] or None,
        verdicts=[Shape(**v) for v in answer["verdicts"]],
    )
    return Shape(status=answer["status"], evaluation=evaluation, previous=answer["previous"])


def _print_outcome(outcome: Any) -> None:
    console = _console()
    evaluation = outcome.evaluation
    holder = f"version {evaluation.holder.version}" if evaluation.holder else "nothing yet"
    console.print(
        f"[bold]{escape(evaluation.name)}[/] version {evaluation.candidate.version} → "
        f"{escape(evaluation.alias)} (now: {holder})"
    )
    if evaluation.policy is None:
        console.print(f"  [yellow]no policy is declared for {escape(evaluation.alias)}[/]")
    for verdict in evaluation.verdicts:
        mark = "[green]✓[/]" if verdict.passed else "[red]✗[/]"
        console.print(f"  {mark} {escape(verdict.rule)}: {escape(verdict.explanation)}")
    style = {"promoted": "green", "pending": "yellow", "unchanged": "cyan"}.get(
        outcome.status, "red"
    )
    message = {
        "promoted": f"promoted: {evaluation.alias} → version {evaluation.candidate.version}",
        "pending": "waiting for approval: headrace models approve "
        f"{evaluation.name} --alias {evaluation.alias}",
        "unchanged": f"version {evaluation.candidate.version} already is {evaluation.alias}",
        "refused": "refused: the policy does not pass",
    }[outcome.status]
    console.print(f"[{style}]{escape(message)}[/]")


@models_app.command("promote")
def models_promote(
    name: Annotated[str, typer.Argument(help="A registered model.")],
    to: Annotated[str, typer.Option("--to", help="The alias to promote to.")] = "champion",
    version: Annotated[
        int | None, typer.Option(help="Default: the challenger, else the newest.")
    ] = None,
    require_approval: Annotated[
        bool, typer.Option("--require-approval", help="Leave it pending until a person approves.")
    ] = False,
    reason: Annotated[str | None, typer.Option(help="Why (kept in the history).")] = None,
) -> None:
    """Evaluate the promotion policy, rule by rule; move the alias if it passes (a
    version a retrain trained on its own branch merges that branch into main first)."""
    from headrace.monitoring.retraining import promote

    remote = _remote()
    if remote is not None:
        body = {
            "to": to,
            "version": version,
            "require_approval": require_approval,
            "reason": reason,
        }
        outcome = _remote_outcome(remote.call("POST", f"/models/{name}/promote", json=body))
    else:
        outcome = promote(
            _workspace(),
            name,
            to,
            version=version,
            require_approval=True if require_approval else None,
            reason=reason,
        )
    _print_outcome(outcome)
    if outcome.status == "refused":
        raise typer.Exit(1)


def _decide(name: str, alias: str, approve: bool, reason: str | None) -> None:
    from headrace.monitoring.retraining import decide

    remote = _remote()
    if remote is not None:
        verb = "approve" if approve else "reject"
        answer = remote.call(
            "POST", f"/models/{name}/{verb}", json={"alias": alias, "reason": reason}
        )
        outcome = _remote_outcome(answer)
    else:
        outcome = decide(_workspace(), name, alias, approve=approve, reason=reason)
    _print_outcome(outcome)
    if approve and outcome.status != "promoted":
        raise typer.Exit(1)


@models_app.command("approve")
def models_approve(
    name: Annotated[str, typer.Argument(help="A registered model.")],
    alias: Annotated[str, typer.Option(help="The alias whose promotion waits.")] = "champion",
    reason: Annotated[str | None, typer.Option(help="Why (kept in the history).")] = None,
) -> None:
    """Approve a pending promotion (the policy is evaluated again first)."""
    _decide(name, alias, True, reason)


@models_app.command("reject")
def models_reject(
    name: Annotated[str, typer.Argument(help="A registered model.")],
    alias: Annotated[str, typer.Option(help="The alias whose promotion waits.")] = "champion",
    reason: Annotated[str | None, typer.Option(help="Why (kept in the history).")] = None,
) -> None:
    """Reject a pending promotion."""
    _decide(name, alias, False, reason)


def register(app: typer.Typer) -> None:
    app.add_typer(models_app, name="models")
